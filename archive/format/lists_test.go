package format

import (
	"errors"
	"strings"
	"testing"
)

func TestListEncoding(t *testing.T) {
	var blocks []BlockRef
	for i := range 70 {
		blocks = append(blocks, BlockRef{ID: Hash([]byte{byte(i)}), Size: uint32(1000 + i)})
	}
	data := EncodeList(nil, blocks)
	if len(data) != 70*ListEntrySize {
		t.Fatalf("list of 70 blocks is %d bytes", len(data))
	}
	got, err := DecodeList(nil, data)
	if err != nil || len(got) != 70 || got[69] != blocks[69] {
		t.Fatalf("decodeList = %d entries, %v", len(got), err)
	}
	bad := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"not whole entries", data[:40]},
		{"over the entry limit", make([]byte, (MaxListEntries+1)*ListEntrySize)},
		{"zero-length block", EncodeList(nil, []BlockRef{{ID: Hash(nil), Size: 0}})},
		{"block over the size limit", EncodeList(nil, []BlockRef{{ID: Hash(nil), Size: MaxBlockSize + 1}})},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeList(nil, tt.data); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decodeList = %v, want corrupt", err)
			}
		})
	}
}

// TestManifestVersions: a manifest is written in the old encoding unless
// a file has list blocks, and both encodings round-trip.
func TestManifestVersions(t *testing.T) {
	m := SampleManifest()
	if data := EncodeManifest(m); data[4] != ManifestV1 {
		t.Fatalf("manifest without lists written as version %d", data[4])
	}
	lists := []BlockRef{{Hash([]byte("l1")), 32 * ListEntrySize}, {Hash([]byte("l2")), 3 * ListEntrySize}}
	m.Entries = append(m.Entries, Entry{Path: "z.db", Type: TypeFile, Mode: 0o644, Size: 35 << 14, Lists: lists})
	data := EncodeManifest(m)
	if data[4] != ManifestV2 {
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
	many := make([]BlockRef, MaxExpandedBlocks/MaxListEntries+1)
	for i := range many {
		many[i] = ref(MaxListEntries * ListEntrySize)
	}
	tests := []struct {
		name  string
		lists []BlockRef
		want  string
	}{
		{"empty list block", []BlockRef{ref(0)}, "block list of 0 bytes"},
		{"list block of partial entries", []BlockRef{ref(40)}, "block list of 40 bytes"},
		{"list block over the limit", []BlockRef{ref((MaxListEntries + 1) * ListEntrySize)}, "over limit"},
		{"lists naming too many blocks", many, "more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := SampleManifest()
			m.Entries = []Entry{{Path: "db", Type: TypeFile, Size: 1, Lists: tt.lists}}
			_, err := DecodeManifest(EncodeManifest(m))
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("want a corrupt-manifest error mentioning %q, got %v", tt.want, err)
			}
		})
	}
	// A version 2 file entry of an unknown kind.
	m := SampleManifest()
	m.Entries = []Entry{{Path: "db", Type: TypeFile, Size: 1, Lists: []BlockRef{ref(ListEntrySize)}}}
	data := EncodeManifest(m)
	i := strings.Index(string(data), "db\x66") // path, then type 'f'
	kind := i + 3 + 5                          // mode, uid, gid, mtime, size: one byte each here
	if data[kind] != FileLists {
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
	if err := ExpandEntry(&e, lists); err != nil || len(e.Blocks) != 4 {
		t.Fatalf("expandEntry = %v, %d blocks", err, len(e.Blocks))
	}
	e.Size = 31
	if err := ExpandEntry(&e, lists); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("lists adding up to another size: got %v", err)
	}
}
