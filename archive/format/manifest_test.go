package format

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

func SampleManifest() *Manifest {
	id := Hash([]byte("block"))
	return &Manifest{
		Version: FormatVersion, Parent: Hash([]byte("parent")), State: "orders-e2e", Message: "after stage 1",
		Labels: map[string]string{"branch": "main", "commit": "abc123"}, Created: time.Unix(0, 1764000000123456789).UTC(),
		Host: "ci-runner", User: "runner", Tool: "statepack test",
		Entries: []Entry{
			{Path: "api_states", Type: TypeDir, Mode: 0o755, MTime: 1},
			{Path: "api_states/sqs", Type: TypeDir, Mode: 0o755, MTime: 2},
			{Path: "api_states/sqs/store.state", Type: TypeFile, Mode: 0o644, UID: 1000, GID: 1000, MTime: 3, Size: 10, Blocks: []BlockRef{{id, 10}}},
			{Path: "empty", Type: TypeFile, Mode: 0o600, MTime: -4},
			{Path: "link", Type: TypeSymlink, Mode: 0o777, Target: "api_states/sqs"},
		},
	}
}

func TestManifestRoundTrip(t *testing.T) {
	m := SampleManifest()
	got, err := DecodeManifest(EncodeManifest(m))
	if err != nil {
		t.Fatal(err)
	}
	if got.State != m.State || got.Parent != m.Parent || !got.Created.Equal(m.Created) || got.Labels["commit"] != "abc123" || len(got.Entries) != len(m.Entries) {
		t.Fatalf("round trip changed the manifest: %+v", got)
	}
	for i := range m.Entries {
		a, b := m.Entries[i], got.Entries[i]
		if a.Path != b.Path || a.Type != b.Type || a.Mode != b.Mode || a.MTime != b.MTime || a.Size != b.Size || a.Target != b.Target || len(a.Blocks) != len(b.Blocks) {
			t.Errorf("entry %d: want %+v, got %+v", i, a, b)
		}
	}
}

// TestHostileManifests: each case is a manifest a hostile remote could
// serve; decoding must refuse it before restore could write anything.
func TestHostileManifests(t *testing.T) {
	blk := BlockRef{Hash([]byte("x")), 1}
	dir := func(p string) Entry { return Entry{Path: p, Type: TypeDir, Mode: 0o755} }
	file := func(p string) Entry {
		return Entry{Path: p, Type: TypeFile, Mode: 0o644, Size: 1, Blocks: []BlockRef{blk}}
	}
	cases := []struct {
		name    string
		entries []Entry
		want    string
	}{
		{"dot-dot escapes DATA_DIR", []Entry{file("../etc/passwd")}, "leaves the directory"},
		{"dot-dot inside path", []Entry{dir("a"), file("a/../../x")}, "leaves the directory"},
		{"absolute path", []Entry{file("/etc/passwd")}, "absolute"},
		{"bare dot-dot", []Entry{file("..")}, "dot path"},
		{"empty path", []Entry{file("")}, "dot path"},
		{"NUL in name", []Entry{file("a\x00b")}, "NUL"},
		{"invalid UTF-8", []Entry{file("a\xffb")}, "UTF-8"},
		{"write through own symlink", []Entry{{Path: "a", Type: TypeSymlink, Target: "/etc"}, file("a/passwd")}, "not a directory"},
		{"duplicate path", []Entry{file("a"), file("a")}, "sorted"},
		{"file where a dir was", []Entry{file("a"), file("a/b")}, "not a directory"},
		{"missing parent", []Entry{file("x/y")}, "not a directory"},
		{"unsorted", []Entry{file("b"), file("a")}, "sorted"},
		{"trailing slash", []Entry{file("a/")}, "not clean"},
		{"double slash", []Entry{dir("a"), file("a//b")}, "not clean"},
		{"size disagrees with blocks", []Entry{{Path: "a", Type: TypeFile, Size: 1 << 40, Blocks: []BlockRef{blk}}}, "add up"},
		{"unknown type", []Entry{{Path: "a", Type: 'x'}}, "unknown entry type"},
		{"empty symlink target", []Entry{{Path: "a", Type: TypeSymlink}}, "symlink"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := SampleManifest()
			m.Entries = c.entries
			_, err := DecodeManifest(EncodeManifest(m))
			if err == nil || !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want a corrupt-manifest error mentioning %q, got %v", c.want, err)
			}
		})
	}
}

// TestManifestAbsurdCounts: counts are bounded by the bytes present, so a
// manifest claiming 2^40 entries or blocks fails without allocating.
func TestManifestAbsurdCounts(t *testing.T) {
	m := SampleManifest()
	m.Entries = nil
	data := EncodeManifest(m)
	data = data[:len(data)-1] // drop the entry count 0
	data = binary.AppendUvarint(data, 1<<40)
	if _, err := DecodeManifest(data); err == nil || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("2^40 entries: want corrupt, got %v", err)
	}
	allocs := testing.AllocsPerRun(10, func() { _, _ = DecodeManifest(data) })
	if allocs > 20 {
		t.Fatalf("decoding a tiny hostile manifest allocated %v times", allocs)
	}
	for cut := 0; cut < len(EncodeManifest(SampleManifest())); cut++ {
		if _, err := DecodeManifest(EncodeManifest(SampleManifest())[:cut]); err == nil {
			t.Fatalf("truncated manifest at %d decoded", cut)
		}
	}
}

func FuzzDecodeManifest(f *testing.F) {
	f.Add(EncodeManifest(SampleManifest()))
	m := SampleManifest()
	m.Entries = nil
	f.Add(EncodeManifest(m))
	f.Add([]byte("SPM1"))
	m = SampleManifest()
	m.Entries = append(m.Entries, Entry{Path: "z.db", Type: TypeFile, Size: 1 << 20, Lists: []BlockRef{{Hash([]byte("l")), 32 * ListEntrySize}}})
	f.Add(EncodeManifest(m))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeManifest(data)
		if err != nil {
			return
		}
		// Whatever decodes must describe a safe tree and re-encode to a
		// manifest that decodes the same.
		for _, e := range m.Entries {
			if ValidPath(e.Path) != nil {
				t.Fatalf("unsafe path %q accepted", e.Path)
			}
		}
		m2, err := DecodeManifest(EncodeManifest(m))
		if err != nil || len(m2.Entries) != len(m.Entries) {
			t.Fatalf("re-encoded manifest does not decode: %v", err)
		}
	})
}

func TestIndexRoundTripAndHostile(t *testing.T) {
	packs := []IndexPack{{Pack: Hash([]byte("p")), Entries: []PackEntry{{ID: Hash([]byte("a")), Offset: 0, Stored: 5, Raw: 9, Encoding: EncodingZstd}, {ID: Hash([]byte("b")), Offset: 5, Stored: 3, Raw: 3}}}}
	data := EncodeIndex(packs)
	got, err := DecodeIndex(data)
	if err != nil || len(got) != 1 || len(got[0].Entries) != 2 || got[0].Entries[0] != packs[0].Entries[0] {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	bad := []struct {
		name string
		mut  func([]byte) []byte
	}{
		{"claims 2^32-1 packs", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[4:], 1<<32-1); return b }},
		{"claims 2^32-1 entries", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[40:], 1<<32-1); return b }},
		{"unknown encoding", func(b []byte) []byte { b[44+44] = 7; return b }},
		{"raw block with stored != raw", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[44+36+45:], 4); return b }},
		{"trailing bytes", func(b []byte) []byte { return append(b, 0) }},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }},
		{"bad magic", func(b []byte) []byte { b[0] = 'X'; return b }},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			if _, err := DecodeIndex(c.mut(append([]byte(nil), data...))); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("want corrupt, got %v", err)
			}
		})
	}
}

func FuzzDecodeIndex(f *testing.F) {
	f.Add(EncodeIndex([]IndexPack{{Pack: Hash([]byte("p")), Entries: []PackEntry{{ID: Hash([]byte("a")), Stored: 5, Raw: 9, Encoding: EncodingZstd}}}}))
	f.Add([]byte("SPI1\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		packs, err := DecodeIndex(data)
		if err != nil {
			return
		}
		if got, err := DecodeIndex(EncodeIndex(packs)); err != nil || len(got) != len(packs) {
			t.Fatalf("re-encoded index does not decode: %v", err)
		}
	})
}

func TestPackTrailer(t *testing.T) {
	b := NewPackBuilder(1 << 20)
	b.Add(Hash([]byte("a")), []byte("aaaa"), 4, EncodingRaw)
	b.Add(Hash([]byte("b")), []byte("zz"), 10, EncodingZstd)
	_, data, entries := b.Finish()
	tsize, err := PackTrailerSize(data[len(data)-8:], int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodePackTrailer(data[int64(len(data))-tsize:], int64(len(data)))
	if err != nil || len(got) != 2 || got[1] != entries[1] {
		t.Fatalf("trailer: %+v %v", got, err)
	}
	// An entry pointing outside the block area, or leaving a gap, is refused.
	bad := append([]byte(nil), data...)
	binary.LittleEndian.PutUint32(bad[6+45+32:], 1000)
	if _, err := DecodePackTrailer(bad[int64(len(bad))-tsize:], int64(len(bad))); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("entry outside pack: want corrupt, got %v", err)
	}
}

func FuzzDecodePackTrailer(f *testing.F) {
	b := NewPackBuilder(1 << 20)
	b.Add(Hash([]byte("a")), []byte("aaaa"), 4, EncodingRaw)
	_, data, _ := b.Finish()
	f.Add(data)
	f.Fuzz(func(t *testing.T, pack []byte) {
		if len(pack) < 8 {
			return
		}
		tsize, err := PackTrailerSize(pack[len(pack)-8:], int64(len(pack)))
		if err != nil {
			return
		}
		entries, err := DecodePackTrailer(pack[int64(len(pack))-tsize:], int64(len(pack)))
		if err != nil {
			return
		}
		for _, e := range entries {
			if int64(e.Offset)+int64(e.Stored) > int64(len(pack))-tsize {
				t.Fatalf("entry %+v outside the pack", e)
			}
		}
	})
}

// TestZstdBomb: a block that decompresses past its recorded length is
// refused without producing more than the recorded length.
func TestZstdBomb(t *testing.T) {
	big := make([]byte, 8<<20)
	stored := zstdEncoderForTest(big)
	id := Hash(big[:1024])
	_, err := DecodeBlock(id, Location{Raw: 1024, Stored: uint32(len(stored)), Encoding: EncodingZstd}, stored, nil)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("want corrupt, got %v", err)
	}
}

func zstdEncoderForTest(data []byte) []byte {
	enc, _ := zstd.NewWriter(nil)
	defer enc.Close()
	return enc.EncodeAll(data, nil)
}
