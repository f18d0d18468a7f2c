package archive

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/statepack/statepack/archive/format"
)

// testBlock returns n bytes of one kind: "text" compresses well,
// "random" not at all, "random-head" is random for its first 8 KiB and
// text after that.
func testBlock(kind string, n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	text := func(n int) []byte {
		var b bytes.Buffer
		for i := 0; b.Len() < n; i++ {
			fmt.Fprintf(&b, `{"id": %d, "queue": "orders-%d", "state": "visible", "receipt": %d}`+"\n", i, rng.IntN(8), rng.Uint32())
		}
		return b.Bytes()[:n]
	}
	switch kind {
	case "random":
		return random(n)
	case "random-head":
		return append(random(8<<10), text(n-8<<10)...)
	case "records":
		// Like a pickled service state: repeated keys between random ids
		// and payloads, so zstd finds matches but the literals left are
		// random and Huffman coding cannot shrink them.
		var b []byte
		for len(b) < n {
			b = append(b, "\x8c\x0bMessageId\x94\x8c$"...)
			b = append(b, random(36)...)
			b = append(b, "\x94\x8c\x04Body\x94C\x40"...)
			b = append(b, random(64)...)
		}
		return b[:n]
	}
	return text(n)
}

// storedLocation is where a block compress returned would be recorded.
func storedLocation(stored []byte, raw int, enc uint8) format.Location {
	return format.Location{Stored: uint32(len(stored)), Raw: uint32(raw), Encoding: enc}
}

// TestBlockCompressorRoundTrip: what the save pipeline stores decodes,
// through the one decoder restore and pull use, to the block it came
// from and verifies against its id, for every block size the chunker can
// produce and for chunker maxima other than the default. Frames carry no
// checksum (BLAKE3 verifies them) and compressible blocks of up to the
// window are single segments.
func TestBlockCompressorRoundTrip(t *testing.T) {
	for _, maxBlock := range []int{1 << 10, 256 << 10, 1 << 20, 8 << 20} {
		c, err := newBlockCompressor(maxBlock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for _, kind := range []string{"text", "random", "random-head", "records", "text-plain"} {
			for _, n := range []int{1, 100, 4 << 10, 16<<10 - 1, 64 << 10, 128 << 10, 128<<10 + 1, 200 << 10, 256 << 10, 1 << 20, 8 << 20} {
				if n > maxBlock || (kind == "random-head" && n <= 8<<10) {
					continue
				}
				var hint *streamHint
				if kind == "text-plain" {
					kind, hint = "text", &streamHint{} // a file judged plain: no entropy coding
					hint.plain.Store(plainAfter)
				}
				t.Run(fmt.Sprintf("max=%d/%s/%d/plain=%v", maxBlock, kind, n, hint != nil), func(t *testing.T) {
					data := testBlock(kind, n, uint64(n))
					stored, enc := c.compress(data, hint)
					if kind == "text" && n >= 4<<10 && enc != format.EncodingZstd {
						t.Fatalf("text stored raw (%d bytes)", len(stored))
					}
					if enc == format.EncodingRaw && !bytes.Equal(stored, data) {
						t.Fatal("raw block differs from the data")
					}
					if enc == format.EncodingZstd {
						if len(stored) >= n {
							t.Fatalf("zstd frame of %d bytes for %d raw", len(stored), n)
						}
						var h zstd.Header
						if err := h.Decode(stored); err != nil {
							t.Fatal(err)
						}
						if h.HasCheckSum {
							t.Error("frame has a checksum")
						}
						if n <= 4<<20 && n > zstd.MinWindowSize && !h.SingleSegment {
							t.Errorf("frame of a %d-byte block is not a single segment", n)
						}
					}
					got, err := format.DecodeBlock(format.Hash(data), storedLocation(stored, n, enc), bytes.Clone(stored), nil)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, data) {
						t.Fatal("decoded block differs")
					}
				})
			}
		}
	}
}

// TestOldZstdBlocksDecode: blocks stored by earlier versions (frames with
// a content checksum, 64 KiB zstd blocks with history, the library's
// default level) still decode and verify; a damaged checksum or payload
// is refused as corrupt, never returned.
func TestOldZstdBlocksDecode(t *testing.T) {
	encoders := map[string][]zstd.EOption{
		"default-with-crc":      nil,
		"fastest-with-crc":      {zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1)},
		"fastest-lowmem-no-crc": {zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true), zstd.WithEncoderCRC(false)},
	}
	for name, opts := range encoders {
		enc, err := zstd.NewWriter(nil, opts...)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{100, 64 << 10, 200 << 10, 256 << 10} {
			t.Run(fmt.Sprintf("%s/%d", name, n), func(t *testing.T) {
				data := testBlock("text", n, 3)
				stored := enc.EncodeAll(data, nil)
				loc := storedLocation(stored, n, format.EncodingZstd)
				got, err := format.DecodeBlock(format.Hash(data), loc, stored, nil)
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("decode: %v", err)
				}
				var h zstd.Header
				if err := h.Decode(stored); err != nil {
					t.Fatal(err)
				}
				if h.HasCheckSum {
					bad := bytes.Clone(stored)
					bad[len(bad)-1] ^= 1 // the checksum is the frame's last 4 bytes
					if _, err := format.DecodeBlock(format.Hash(data), loc, bad, nil); !errors.Is(err, format.ErrCorrupt) {
						t.Errorf("damaged checksum: %v, want corrupt", err)
					}
				}
				bad := bytes.Clone(stored)
				bad[len(bad)/2] ^= 0x40
				if got, err := format.DecodeBlock(format.Hash(data), loc, bad, nil); !errors.Is(err, format.ErrCorrupt) {
					t.Errorf("damaged frame: %v (%d bytes), want corrupt", err, len(got))
				}
			})
		}
		enc.Close()
	}
}

// TestBlockCompressorSampling: after a block of a file that did not
// compress, the file's next block is tried on a sample first and stored
// raw when random; a compressible block after random ones is still
// compressed; and a block whose head is random but whose rest compresses
// is compressed when it follows compressible blocks (it used to be
// judged by its head alone).
func TestBlockCompressorSampling(t *testing.T) {
	c, err := newBlockCompressor(256 << 10)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	steps := []struct {
		kind   string
		want   uint8
		sample bool // after the block
	}{
		{"text", format.EncodingZstd, false},
		{"random-head", format.EncodingZstd, false},
		{"random", format.EncodingRaw, true},
		{"random", format.EncodingRaw, true},
		{"text", format.EncodingZstd, false},
		{"random", format.EncodingRaw, true},
		{"random-head", format.EncodingRaw, true}, // judged by the sample: the cost of not compressing random runs twice
		{"text", format.EncodingZstd, false},
	}
	var h streamHint
	for i, s := range steps {
		data := testBlock(s.kind, 96<<10, uint64(i))
		if _, enc := c.compress(data, &h); enc != s.want {
			t.Errorf("block %d (%s): encoding %d, want %d", i, s.kind, enc, s.want)
		}
		if h.sample.Load() != s.sample {
			t.Errorf("block %d (%s): sample %v after it, want %v", i, s.kind, h.sample.Load(), s.sample)
		}
	}
}

// TestLiteralsCoded reads whether a frame's literals were Huffman coded.
func TestLiteralsCoded(t *testing.T) {
	c, err := newBlockCompressor(256 << 10)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	text := testBlock("text", 200<<10, 1) // two zstd blocks
	cases := []struct {
		name  string
		frame []byte
		want  bool
	}{
		{"text", c.enc.EncodeAll(text[:64<<10], nil), true},
		{"text-two-blocks", c.enc.EncodeAll(text, nil), true},
		{"text-plain", c.plain.EncodeAll(text, nil), false},
		{"records", c.enc.EncodeAll(testBlock("records", 64<<10, 2), nil), false},
		{"random", c.enc.EncodeAll(testBlock("random", 64<<10, 3), nil), false},
		{"zeros", c.enc.EncodeAll(make([]byte, 64<<10), nil), false},
		{"tiny", c.enc.EncodeAll([]byte("x"), nil), false},
		{"empty", nil, true},
		{"garbage", []byte("not a zstd frame at all"), true},
		{"truncated", c.enc.EncodeAll(text[:64<<10], nil)[:20], true},
	}
	for _, tc := range cases {
		if got := literalsCoded(tc.frame); got != tc.want {
			t.Errorf("%s: literalsCoded %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestStreamEntropyChoice: a file whose literals do not Huffman-code is
// compressed without trying after plainAfter blocks, to the same size,
// probing now and then; a text file keeps entropy coding; two files
// interleaved on one compressor keep their own choice.
func TestStreamEntropyChoice(t *testing.T) {
	c, err := newBlockCompressor(256 << 10)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var records, text streamHint
	for i := range 40 {
		r := testBlock("records", 64<<10, uint64(i))
		stored, enc := c.compress(r, &records)
		if enc != format.EncodingZstd {
			t.Fatalf("records block %d stored raw", i)
		}
		if tried := len(c.enc.EncodeAll(r, nil)); len(stored) > tried+tried/200 {
			t.Errorf("records block %d: %d bytes, %d with entropy coding", i, len(stored), tried)
		}
		x := testBlock("text", 64<<10, uint64(i))
		if _, enc := c.compress(x, &text); enc != format.EncodingZstd {
			t.Fatalf("text block %d stored raw", i)
		}
		if text.plain.Load() != 0 {
			t.Fatalf("text block %d: counted as plain", i)
		}
	}
	if records.plain.Load() < plainAfter {
		t.Errorf("records never went plain (%d)", records.plain.Load())
	}
	if b := records.blocks.Load(); b < 30 {
		t.Errorf("only %d records blocks compressed plain", b)
	}
}
