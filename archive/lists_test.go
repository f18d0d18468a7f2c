package archive

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

func TestPageBlockSize(t *testing.T) {
	hdr := func(page uint16) []byte {
		b := append([]byte(sqliteMagic), 0, 0)
		binary.BigEndian.PutUint16(b[16:], page)
		return b
	}
	on := ChunkerConfig{Min: 16 << 10, Avg: 64 << 10, Max: 256 << 10, SQLitePages: true}
	off := on
	off.SQLitePages = false
	small := ChunkerConfig{Min: 6000, Avg: 8192, Max: 12000, SQLitePages: true}
	tests := []struct {
		name string
		hdr  []byte
		cc   ChunkerConfig
		want int
	}{
		{"4 KiB pages grouped to Min", hdr(4096), on, 16 << 10},
		{"512-byte pages", hdr(512), on, 16 << 10},
		{"32 KiB pages, one per block", hdr(32768), on, 32 << 10},
		{"64 KiB pages (encoded as 1)", hdr(1), on, 64 << 10},
		{"Min not a multiple of the page", hdr(4096), small, 8192},
		{"page larger than Max", hdr(16384), small, 0},
		{"repository made before page cutting", hdr(4096), off, 0},
		{"page size not a power of two", hdr(5000), on, 0},
		{"page size too small", hdr(256), on, 0},
		{"page size zero", hdr(0), on, 0},
		{"not SQLite", append([]byte("SQLite format 4\x00"), 0x10, 0), on, 0},
		{"short file", []byte(sqliteMagic), on, 0},
		{"empty file", nil, on, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pageBlockSize(tt.hdr, tt.cc); got != tt.want {
				t.Fatalf("pageBlockSize = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestListEncoding(t *testing.T) {
	var blocks []BlockRef
	for i := range 70 {
		blocks = append(blocks, BlockRef{ID: Hash([]byte{byte(i)}), Size: uint32(1000 + i)})
	}
	data := encodeList(nil, blocks)
	if len(data) != 70*listEntrySize {
		t.Fatalf("list of 70 blocks is %d bytes", len(data))
	}
	got, err := decodeList(nil, data)
	if err != nil || len(got) != 70 || got[69] != blocks[69] {
		t.Fatalf("decodeList = %d entries, %v", len(got), err)
	}
	bad := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"not whole entries", data[:40]},
		{"over the entry limit", make([]byte, (maxListEntries+1)*listEntrySize)},
		{"zero-length block", encodeList(nil, []BlockRef{{ID: Hash(nil), Size: 0}})},
		{"block over the size limit", encodeList(nil, []BlockRef{{ID: Hash(nil), Size: MaxBlockSize + 1}})},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeList(nil, tt.data); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decodeList = %v, want corrupt", err)
			}
		})
	}
}

// TestManifestVersions: a manifest is written in the old encoding unless
// a file has list blocks, and both encodings round-trip.
func TestManifestVersions(t *testing.T) {
	m := sampleManifest()
	if data := EncodeManifest(m); data[4] != manifestV1 {
		t.Fatalf("manifest without lists written as version %d", data[4])
	}
	lists := []BlockRef{{Hash([]byte("l1")), 32 * listEntrySize}, {Hash([]byte("l2")), 3 * listEntrySize}}
	m.Entries = append(m.Entries, Entry{Path: "z.db", Type: TypeFile, Mode: 0o644, Size: 35 << 14, Lists: lists})
	data := EncodeManifest(m)
	if data[4] != manifestV2 {
		t.Fatalf("manifest with lists written as version %d", data[4])
	}
	got, err := DecodeManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	last := got.Entries[len(got.Entries)-1]
	if len(last.Lists) != 2 || last.Lists[1] != lists[1] || last.Blocks != nil || last.Size != 35<<14 {
		t.Fatalf("list entry decoded as %+v", last)
	}
	if inline := got.Entries[2]; len(inline.Blocks) != 1 || inline.Lists != nil {
		t.Fatalf("inline entry in a version 2 manifest decoded as %+v", inline)
	}
	if got := got.ListBlocks(); len(got) != 2 {
		t.Fatalf("ListBlocks = %v", got)
	}
}

// TestHostileListManifests: list references are bounded before anything
// is read or allocated for them (invariant 5).
func TestHostileListManifests(t *testing.T) {
	ref := func(size uint32) BlockRef { return BlockRef{Hash([]byte("l")), size} }
	many := make([]BlockRef, maxExpandedBlocks/maxListEntries+1)
	for i := range many {
		many[i] = ref(maxListEntries * listEntrySize)
	}
	tests := []struct {
		name  string
		lists []BlockRef
		want  string
	}{
		{"empty list block", []BlockRef{ref(0)}, "block list of 0 bytes"},
		{"list block of partial entries", []BlockRef{ref(40)}, "block list of 40 bytes"},
		{"list block over the limit", []BlockRef{ref((maxListEntries + 1) * listEntrySize)}, "over limit"},
		{"lists naming too many blocks", many, "more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := sampleManifest()
			m.Entries = []Entry{{Path: "db", Type: TypeFile, Size: 1, Lists: tt.lists}}
			_, err := DecodeManifest(EncodeManifest(m))
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("want a corrupt-manifest error mentioning %q, got %v", tt.want, err)
			}
		})
	}
	// A version 2 file entry of an unknown kind.
	m := sampleManifest()
	m.Entries = []Entry{{Path: "db", Type: TypeFile, Size: 1, Lists: []BlockRef{ref(listEntrySize)}}}
	data := EncodeManifest(m)
	i := strings.Index(string(data), "db\x66") // path, then type 'f'
	kind := i + 3 + 5                          // mode, uid, gid, mtime, size: one byte each here
	if data[kind] != fileLists {
		t.Fatalf("test lost track of the kind byte: %x", data[i:])
	}
	data[kind] = 7
	if _, err := DecodeManifest(data); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "unknown file kind") {
		t.Fatalf("unknown kind: got %v", err)
	}
}

func TestExpandEntry(t *testing.T) {
	a := []BlockRef{{Hash([]byte("a")), 10}, {Hash([]byte("b")), 5}}
	lists := map[ID][]BlockRef{Hash([]byte("la")): a}
	e := Entry{Path: "f", Type: TypeFile, Size: 30, Lists: []BlockRef{{Hash([]byte("la")), 72}, {Hash([]byte("la")), 72}}}
	if err := expandEntry(&e, lists); err != nil || len(e.Blocks) != 4 {
		t.Fatalf("expandEntry = %v, %d blocks", err, len(e.Blocks))
	}
	e.Size = 31
	if err := expandEntry(&e, lists); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("lists adding up to another size: got %v", err)
	}
}

// TestStatCacheKeepsLists: the stat cache carries each file's list blocks
// (so a no-op save does not hash them again), and a cache written before
// it did still reads.
func TestStatCacheKeepsLists(t *testing.T) {
	blocks := []BlockRef{{Hash([]byte("a")), 10}}
	lists := []BlockRef{{Hash([]byte("l")), listEntrySize}}
	c := &statCache{Snapshot: Hash([]byte("s")), State: "s", Recorded: 5,
		Files: map[string]*statEntry{"f": {Size: 10, MTime: 1, CTime: 2, Ino: 3, Blocks: blocks, Lists: lists}}}
	got, err := decodeStatCache(encodeStatCache(c))
	if err != nil || len(got.Files["f"].Lists) != 1 || got.Files["f"].Lists[0] != lists[0] || got.Files["f"].Blocks[0] != blocks[0] {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	c.Files["f"].Lists = nil
	v1 := encodeStatCache(c)
	v1 = append([]byte(statCacheMagicV1), v1[4:len(v1)-1]...) // version 1: no list count
	got, err = decodeStatCache(v1)
	if err != nil || got.Files["f"].Lists != nil || len(got.Files["f"].Blocks) != 1 {
		t.Fatalf("version 1 cache: %+v, %v", got, err)
	}
	for _, tt := range []struct {
		n     int
		lists []BlockRef
		want  bool
	}{
		{33, []BlockRef{{Size: 32 * listEntrySize}, {Size: listEntrySize}}, true},
		{64, []BlockRef{{Size: 32 * listEntrySize}, {Size: 32 * listEntrySize}}, true},
		{34, []BlockRef{{Size: 32 * listEntrySize}, {Size: listEntrySize}}, false},
		{33, []BlockRef{{Size: 33 * listEntrySize}}, false},
		{33, nil, false},
	} {
		if got := listsCover(tt.lists, tt.n); got != tt.want {
			t.Errorf("listsCover(%d lists, %d blocks) = %v", len(tt.lists), tt.n, got)
		}
	}
}
