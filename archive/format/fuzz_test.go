package format

import (
	"bytes"
	"errors"
	"testing"

	"github.com/statepack/statepack/chunker"
)

// The decoders of manifests, index objects and pack trailers are fuzzed
// in manifest_test.go; these cover the others. Each target checks that
// hostile bytes fail with ErrCorrupt (or ErrNotRepository) instead of
// panicking, and that what decodes re-encodes to the same bytes.

func FuzzDecodeConfig(f *testing.F) {
	cfg, err := NewConfig(chunker.DefaultParams(), DefaultPackSize)
	if err != nil {
		f.Fatal(err)
	}
	good, err := EncodeConfig(cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"version": 2}`))
	f.Add([]byte(`{"version": 1, "chunker": {"min": 0, "avg": 0, "max": 0}}`))
	f.Add([]byte("not json"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeConfig(data)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("decoded an invalid config: %v", err)
		}
		again, err := EncodeConfig(c)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := DecodeConfig(again); err != nil || back != c {
			t.Fatalf("config does not round-trip: %+v, %v", back, err)
		}
	})
}

func FuzzDecodeList(f *testing.F) {
	f.Add(EncodeList(nil, []BlockRef{{ID: Hash([]byte("a")), Size: 10}, {ID: Hash([]byte("b")), Size: 1}}))
	f.Add(EncodeList(nil, []BlockRef{{ID: Hash([]byte("z")), Size: 0}}))
	f.Add(make([]byte, ListEntrySize-1))
	f.Fuzz(func(t *testing.T, data []byte) {
		refs, err := DecodeList(nil, data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("refused without ErrCorrupt: %v", err)
			}
			return
		}
		if len(refs) == 0 || len(refs) > MaxListEntries {
			t.Fatalf("%d entries decoded", len(refs))
		}
		for _, r := range refs {
			if r.Size == 0 || r.Size > MaxBlockSize {
				t.Fatalf("entry of %d bytes accepted", r.Size)
			}
		}
		if !bytes.Equal(EncodeList(nil, refs), data) {
			t.Fatal("list does not re-encode to its bytes")
		}
	})
}

func FuzzDecodeBlock(f *testing.F) {
	raw := bytes.Repeat([]byte("block "), 200)
	f.Add(raw, uint8(EncodingRaw), uint32(len(raw)))
	f.Add(zstdEncoderForTest(raw), uint8(EncodingZstd), uint32(len(raw)))
	f.Add(zstdEncoderForTest(raw), uint8(EncodingZstd), uint32(1<<31))
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd}, uint8(EncodingZstd), uint32(100))
	id := Hash(raw)
	f.Fuzz(func(t *testing.T, stored []byte, enc uint8, rawLen uint32) {
		if rawLen > MaxBlockSize {
			rawLen = MaxBlockSize // the index never records more
		}
		loc := Location{Stored: uint32(len(stored)), Raw: rawLen, Encoding: enc}
		got, err := DecodeBlock(id, loc, stored, nil)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("refused without ErrCorrupt: %v", err)
			}
			return
		}
		if Hash(got) != id || len(got) != int(rawLen) {
			t.Fatalf("decoded %d bytes that are not the block", len(got))
		}
	})
}

func FuzzParseID(f *testing.F) {
	f.Add(Hash([]byte("x")).String())
	f.Add("ABCDEF" + Hash(nil).String()[6:])
	f.Add("short")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseID(s)
		if err != nil {
			return
		}
		if id.String() != s {
			t.Fatalf("ParseID(%q) = %s", s, id)
		}
	})
}

// TestConfigZstdLevel: the zstd level that older configs carry still
// decodes (and is ignored: blocks are always compressed at zstd's fastest
// level), and new configs no longer record a setting nothing reads.
func TestConfigZstdLevel(t *testing.T) {
	old := []byte(`{"version":1,"id":"0f","chunker":{"min":16384,"avg":65536,"max":262144,"sqlite_pages":true},"pack_size":16777216,"zstd_level":3}`)
	c, err := DecodeConfig(old)
	if err != nil || c.PackSize != 16<<20 {
		t.Fatalf("a config with zstd_level: %+v, %v", c, err)
	}
	cfg, err := NewConfig(chunker.DefaultParams(), 0)
	if err != nil {
		t.Fatal(err)
	}
	data, err := EncodeConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("zstd")) {
		t.Errorf("a new config records a zstd level: %s", data)
	}
}
