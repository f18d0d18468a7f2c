package archive

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/statepack/statepack/archive/format"
)

// TestIndexAddPacks: a bulk load answers like the entries added one pack
// at a time: every id found at its first location (earlier packs in the
// call, and anything added before), absent ids not found, ids sharing
// their first eight bytes told apart.
func TestIndexAddPacks(t *testing.T) {
	id := func(i int) format.ID { return format.Hash(binary.LittleEndian.AppendUint64(nil, uint64(i))) }
	twin := func(base format.ID, last byte) format.ID { base[31] = last; return base }
	entries := func(pack int, ids ...format.ID) format.IndexPack {
		p := format.IndexPack{Pack: id(-pack)}
		for i, b := range ids {
			p.Entries = append(p.Entries, format.PackEntry{ID: b, Offset: uint32(i * 100), Stored: 10, Raw: 10})
		}
		return p
	}
	// The first and last fanout buckets: ids starting 0x0000 and 0xffff.
	edge := func(b byte, i int) format.ID { x := id(100000 + i); x[0], x[1] = b, b; return x }
	var many []format.ID
	for i := range 5000 {
		many = append(many, id(i))
	}
	many = append(many, edge(0x00, 1), edge(0xff, 2), edge(0xff, 3))
	x := NewIndex()
	x.AddPack(id(-1), entries(1, id(7), id(8)).Entries)
	x.AddPacks([]format.IndexPack{
		entries(2, many[:3000]...),
		entries(3, many[2000:]...),                        // 2000..2999 again: pack 2 wins
		entries(4, id(7), twin(id(9), 1), twin(id(9), 2)), // id 7 again: pack 1 wins
	})
	tests := []struct {
		name string
		id   format.ID
		pack format.ID
		ok   bool
	}{
		{"added before the bulk load", id(8), id(-1), true},
		{"first seen before the bulk load", id(7), id(-1), true},
		{"in one pack", id(10), id(-2), true},
		{"in two packs of one call", id(2500), id(-2), true},
		{"in the later pack only", id(4999), id(-3), true},
		{"twin ids differing in the last byte", twin(id(9), 2), id(-4), true},
		{"its twin", twin(id(9), 1), id(-4), true},
		{"first fanout bucket", edge(0x00, 1), id(-3), true},
		{"last fanout bucket", edge(0xff, 2), id(-3), true},
		{"last fanout bucket, another id", edge(0xff, 3), id(-3), true},
		{"absent from the last fanout bucket", edge(0xff, 4), format.ID{}, false},
		{"absent", id(99999), format.ID{}, false},
		{"absent twin", twin(id(9), 3), format.ID{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc, ok := x.Lookup(tt.id)
			if ok != tt.ok || loc.Pack != tt.pack {
				t.Fatalf("Lookup = %s, %v; want %s, %v", loc.Pack.Short(), ok, tt.pack.Short(), tt.ok)
			}
		})
	}
	if n := x.Len(); n != 5003+2 { // ids 7 and 8 are among the 5,000
		t.Fatalf("Len = %d, want %d distinct blocks", n, 5005)
	}
}

// TestSortEntries: the counting sort orders like a comparison sort of
// whole entries, duplicates (the same id in several packs, several
// offsets) included, with groups of one, many and none.
func TestSortEntries(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 2, 1000, 100000} {
		entries := make([]idxEntry, n)
		for i := range entries {
			e := &entries[i]
			if i > 0 && rng.IntN(4) == 0 {
				e.id = entries[rng.IntN(i)].id // a duplicate
			} else {
				binary.BigEndian.PutUint64(e.id[:8], rng.Uint64()>>uint(rng.IntN(20))) // crowded low groups too
				binary.BigEndian.PutUint64(e.id[24:], rng.Uint64())
			}
			e.pack, e.offset = uint32(rng.IntN(8)), uint32(rng.IntN(1<<20))
		}
		want := slices.Clone(entries)
		slices.SortFunc(want, func(a, b idxEntry) int {
			if c := bytes.Compare(a.id[:], b.id[:]); c != 0 {
				return c
			}
			return cmp.Or(cmp.Compare(a.pack, b.pack), cmp.Compare(a.offset, b.offset))
		})
		got := sortEntries(entries)
		for i := range want {
			if got[i].id != want[i].id || got[i].pack != want[i].pack || got[i].offset != want[i].offset {
				t.Fatalf("n=%d: entry %d = %s/%d/%d, want %s/%d/%d", n, i, got[i].id.Short(), got[i].pack, got[i].offset,
					want[i].id.Short(), want[i].pack, want[i].offset)
			}
		}
	}
}
