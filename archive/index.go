package archive

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"slices"
	"sync"

	"github.com/statepack/statepack/archive/format"
)

// idxEntry is the in-memory form of one index entry: fixed size, no
// pointers, kept in a sorted slice so that millions of blocks cost about 52
// bytes each and lookups are a binary search.
type idxEntry struct {
	id     format.ID
	pack   uint32
	offset uint32
	stored uint32
	raw    uint32
	enc    uint8
}

// Index maps block ids to their locations. It is safe for concurrent use.
type Index struct {
	mu      sync.RWMutex
	packs   []format.ID
	packNum map[format.ID]uint32
	sorted  []idxEntry
	pending []idxEntry // added since the last merge, unsorted
	pendMap map[format.ID]int
	fan     []uint32 // fan[b]: first sorted entry whose id starts with b (two bytes)
}

// NewIndex returns an empty index.
func NewIndex() *Index {
	return &Index{packNum: map[format.ID]uint32{}, pendMap: map[format.ID]int{}}
}

// AddPack records the entries of one pack.
func (x *Index) AddPack(pack format.ID, entries []format.PackEntry) {
	x.mu.Lock()
	defer x.mu.Unlock()
	n, ok := x.packNum[pack]
	if !ok {
		n = uint32(len(x.packs))
		x.packs = append(x.packs, pack)
		x.packNum[pack] = n
	}
	for _, e := range entries {
		if _, dup := x.pendMap[e.ID]; dup || x.inSortedLocked(e.ID) {
			continue // the first location seen wins, in every view
		}
		x.pendMap[e.ID] = len(x.pending)
		x.pending = append(x.pending, idxEntry{e.ID, n, e.Offset, e.Stored, e.Raw, e.Encoding})
	}
	if len(x.pending) > 4096 && len(x.pending) > len(x.sorted)/8 {
		x.mergeLocked()
	}
}

// AddPacks records the entries of many packs at once, as loading an index
// does: one sort and one merge instead of an insertion per entry. As with
// AddPack, the first location seen of a block wins: earlier packs in the
// list, and everything added before.
func (x *Index) AddPacks(packs []format.IndexPack) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.mergeLocked()
	n := 0
	for _, p := range packs {
		n += len(p.Entries)
	}
	add := make([]idxEntry, 0, n)
	for _, p := range packs {
		num, ok := x.packNum[p.Pack]
		if !ok {
			num = uint32(len(x.packs))
			x.packs = append(x.packs, p.Pack)
			x.packNum[p.Pack] = num
		}
		for _, e := range p.Entries {
			add = append(add, idxEntry{e.ID, num, e.Offset, e.Stored, e.Raw, e.Encoding})
		}
	}
	add = sortEntries(add)
	add = slices.CompactFunc(add, func(a, b idxEntry) bool { return a.id == b.id })
	x.pending = add
	x.mergeLocked()
	x.pending = nil // not add's backing array: it is as large as the load
}

func (x *Index) inSortedLocked(id format.ID) bool {
	_, ok := x.searchLocked(id)
	return ok
}

// sortEntries sorts entries by id: a counting sort on the ids' first two
// bytes (ids are hashes, so the 65,536 groups hold one entry or none at
// the sizes of a local store, about 150 at ten million), then a sort of
// each group. Linear in the entries, where a comparison sort of 37,000
// entries was half of a no-op save's index load. Equal ids sort by pack
// number, then offset: the pack seen first, so compacting keeps the first
// location.
func sortEntries(entries []idxEntry) []idxEntry {
	if len(entries) < 1<<12 {
		// Below a few thousand entries (an index load that found one
		// new object, or none) the 65,536 counters cost more than a sort.
		out := slices.Clone(entries)
		slices.SortFunc(out, compareIdxEntries)
		return out
	}
	ends := make([]uint32, 1<<16)
	for i := range entries {
		ends[binary.BigEndian.Uint16(entries[i].id[:2])]++
	}
	var total uint32
	for g, n := range ends {
		ends[g] = total // the group's start, until the entries are placed
		total += n
	}
	out := make([]idxEntry, len(entries))
	for i := range entries {
		g := binary.BigEndian.Uint16(entries[i].id[:2])
		out[ends[g]] = entries[i]
		ends[g]++
	}
	start := uint32(0)
	for _, end := range ends {
		if end-start > 1 {
			slices.SortFunc(out[start:end], compareIdxEntries)
		}
		start = end
	}
	return out
}

// compareIdxEntries orders entries by id, then pack number, then offset.
func compareIdxEntries(a, b idxEntry) int {
	if c := compareIDs(&a.id, &b.id); c != 0 {
		return c
	}
	return cmp.Or(cmp.Compare(a.pack, b.pack), cmp.Compare(a.offset, b.offset))
}

// buildFanLocked indexes the sorted entries by their ids' first two bytes,
// so that a lookup searches only the entries sharing them: one or two at
// the sizes of a local store, about 150 at ten million blocks.
func (x *Index) buildFanLocked() {
	if x.fan == nil {
		x.fan = make([]uint32, 1<<16+1)
	}
	j := 0
	for b := range 1 << 16 {
		x.fan[b] = uint32(j)
		for j < len(x.sorted) && int(binary.BigEndian.Uint16(x.sorted[j].id[:2])) == b {
			j++
		}
	}
	x.fan[1<<16] = uint32(len(x.sorted))
}

// compareIDs orders ids as bytes.Compare does, deciding on the first
// eight bytes as one integer: ids are hashes, so those almost always differ.
func compareIDs(a, b *format.ID) int {
	if c := cmp.Compare(binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(b[:8])); c != 0 {
		return c
	}
	return bytes.Compare(a[8:], b[8:])
}

// HasAll reports whether every block is indexed, under one lock.
func (x *Index) HasAll(blocks []format.BlockRef) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	for _, b := range blocks {
		if _, ok := x.pendMap[b.ID]; ok {
			continue
		}
		if _, ok := x.searchLocked(b.ID); !ok {
			return false
		}
	}
	return true
}

// searchLocked finds id in the sorted entries. Ids are hashes, so their
// first eight bytes almost always decide: compared as one integer, a
// lookup costs a few nanoseconds per step.
func (x *Index) searchLocked(id format.ID) (int, bool) {
	key := binary.BigEndian.Uint64(id[:8])
	lo, hi := 0, len(x.sorted)
	if x.fan != nil {
		b := int(binary.BigEndian.Uint16(id[:2])) // int: b+1 must not wrap at 0xffff
		lo, hi = int(x.fan[b]), int(x.fan[b+1])
	}
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		e := &x.sorted[m]
		k := binary.BigEndian.Uint64(e.id[:8])
		if k < key || k == key && bytes.Compare(e.id[8:], id[8:]) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(x.sorted) && x.sorted[lo].id == id
}

func (x *Index) mergeLocked() {
	if len(x.pending) == 0 {
		return
	}
	slices.SortFunc(x.pending, func(a, b idxEntry) int { return compareIDs(&a.id, &b.id) })
	merged := make([]idxEntry, 0, len(x.sorted)+len(x.pending))
	i, j := 0, 0
	for i < len(x.sorted) || j < len(x.pending) {
		switch {
		case j == len(x.pending) || i < len(x.sorted) && compareIDs(&x.sorted[i].id, &x.pending[j].id) <= 0:
			if j < len(x.pending) && x.sorted[i].id == x.pending[j].id {
				j++ // keep the older location
			}
			merged = append(merged, x.sorted[i])
			i++
		default:
			merged = append(merged, x.pending[j])
			j++
		}
	}
	x.sorted, x.pending = merged, x.pending[:0]
	x.buildFanLocked()
	clear(x.pendMap)
}

// Lookup returns where a block is stored.
func (x *Index) Lookup(id format.ID) (format.Location, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if i, ok := x.pendMap[id]; ok {
		return x.loc(x.pending[i]), true
	}
	i, ok := x.searchLocked(id)
	if !ok {
		return format.Location{}, false
	}
	return x.loc(x.sorted[i]), true
}

// Has reports whether a block is indexed.
func (x *Index) Has(id format.ID) bool {
	_, ok := x.Lookup(id)
	return ok
}

// loc is e's location; x.mu must be held.
func (x *Index) loc(e idxEntry) format.Location { return locIn(x.packs, e) }

// locIn is e's location given the pack list it was numbered in.
func locIn(packs []format.ID, e idxEntry) format.Location {
	return format.Location{Pack: packs[e.pack], Offset: e.offset, Stored: e.stored, Raw: e.raw, Encoding: e.enc}
}

// Len is the number of distinct blocks indexed.
func (x *Index) Len() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.mergeLocked()
	return len(x.sorted)
}

// Each calls fn for every indexed block, in id order.
func (x *Index) Each(fn func(format.ID, format.Location) error) error {
	x.mu.Lock()
	x.mergeLocked()
	// Both taken under the lock: fn runs unlocked, while AddPack may
	// append to x.packs (a write of its header). A merge builds a new
	// sorted slice and appends never change a pack's number, so these
	// copies stay valid for every entry seen here.
	sorted, packs := x.sorted, x.packs
	x.mu.Unlock()
	for _, e := range sorted {
		if err := fn(e.id, locIn(packs, e)); err != nil {
			return err
		}
	}
	return nil
}
