package format

import (
	"encoding/binary"
	"fmt"
	"iter"
	"slices"
)

// A file of more than ListEntries blocks keeps its block list out of the
// manifest, in list blocks: ordinary blocks (content-addressed, packed,
// verified like any other) whose bytes are the file's (block id, raw
// length) pairs, ListEntries to a list block. The manifest names the list
// blocks instead of every block. A large file that did not change then
// costs a snapshot one id per ListEntries blocks, and one that changed in
// a few places (a database's pages) adds only the list blocks around the
// changes: manifests stay small and so does what a save adds to the store.
const (
	ListEntrySize = 36 // block id, then its raw length as uint32 little-endian
	ListEntries   = 32 // entries per list block as written
	// MaxListEntries bounds a list block as read.
	MaxListEntries = 4096
	// MaxExpandedBlocks is the ceiling on the blocks that a manifest's
	// list blocks may expand to: as many as the largest manifest could
	// hold inline. Below it, a manifest's lists expand to at most
	// ListEntries blocks per list reference, as statepack writes them, so
	// that naming one large list block again and again (free for whoever
	// writes the manifest) cannot claim memory (DecodeManifest).
	MaxExpandedBlocks = MaxManifestSize / 33
)

// EncodeList writes blocks as the bytes of one list block.
func EncodeList(dst []byte, blocks []BlockRef) []byte {
	for _, b := range blocks {
		dst = append(dst, b.ID[:]...)
		dst = binary.LittleEndian.AppendUint32(dst, b.Size)
	}
	return dst
}

// DecodeList appends the entries of a verified list block to dst. The
// block's bytes are trusted to be what its id names, not to be sensible.
func DecodeList(dst []BlockRef, data []byte) ([]BlockRef, error) {
	if len(data) == 0 || len(data)%ListEntrySize != 0 || len(data) > MaxListEntries*ListEntrySize {
		return nil, fmt.Errorf("list block of %d bytes: %w", len(data), ErrCorrupt)
	}
	for len(data) > 0 {
		b := BlockRef{ID: ID(data[:32]), Size: binary.LittleEndian.Uint32(data[32:])}
		if b.Size == 0 || b.Size > MaxBlockSize {
			return nil, fmt.Errorf("list block names a block of %d bytes: %w", b.Size, ErrCorrupt)
		}
		dst = append(dst, b)
		data = data[ListEntrySize:]
	}
	return dst, nil
}

// ListsCover reports whether lists, as save cuts them (the saver's
// storeLists), name n blocks: every list full but the last.
func ListsCover(lists []BlockRef, n int) bool {
	if len(lists) != (n+ListEntries-1)/ListEntries {
		return false
	}
	for i, l := range lists {
		want := ListEntries
		if i == len(lists)-1 {
			want = n - i*ListEntries
		}
		if int(l.Size) != want*ListEntrySize {
			return false
		}
	}
	return true
}

// Expand fills in the blocks of every entry of m whose block list is
// stored in list blocks, from the lists read, as Repository.ExpandLists
// does.
func (l *BlockLists) Expand(m *Manifest) error {
	for i := range m.Entries {
		if err := ExpandEntry(&m.Entries[i], l.Lists); err != nil {
			return fmt.Errorf("%s: %w", m.Entries[i].Path, err)
		}
	}
	return nil
}

// Distinct returns the distinct blocks of m's files, in the order they
// are first used, without the list blocks: what a pull must have. Its
// memory follows the distinct blocks, not how often they are named.
func (l *BlockLists) Distinct(m *Manifest) []BlockRef {
	seen := map[ID]struct{}{}
	var out []BlockRef
	add := func(refs []BlockRef) {
		for _, b := range refs {
			if _, dup := seen[b.ID]; !dup {
				seen[b.ID] = struct{}{}
				out = append(out, b)
			}
		}
	}
	for i := range m.Entries {
		e := &m.Entries[i]
		if len(e.Lists) > 0 && len(e.Blocks) == 0 {
			for _, ref := range e.Lists {
				add(l.Lists[ref.ID])
			}
			continue
		}
		add(e.Blocks)
	}
	return out
}

// BlockLists are the decoded list blocks of one manifest, each read once.
type BlockLists struct {
	Lists map[ID][]BlockRef
}

// Each calls fn for every block m references, list blocks and the blocks
// they name included, in entry order, once per reference: what AllBlocks
// does for an expanded manifest, holding one list at a time.
func (l *BlockLists) Each(m *Manifest, fn func(e *Entry, b BlockRef)) {
	for i := range m.Entries {
		e := &m.Entries[i]
		for _, b := range e.Lists {
			fn(e, b)
		}
		if len(e.Lists) > 0 && len(e.Blocks) == 0 {
			for _, ref := range e.Lists {
				for _, b := range l.Lists[ref.ID] {
					fn(e, b)
				}
			}
			continue
		}
		for _, b := range e.Blocks {
			fn(e, b)
		}
	}
}

// BlockCount is the number of blocks of e's content, inline or as its
// list blocks name them (which DecodeManifest bounded).
func (e *Entry) BlockCount() int {
	if len(e.Lists) == 0 || len(e.Blocks) > 0 {
		return len(e.Blocks)
	}
	n := 0
	for _, l := range e.Lists {
		n += int(l.Size / ListEntrySize)
	}
	return n
}

// ListBlocks returns the distinct list blocks of m: what must be read
// before its large files' blocks are known.
func (m *Manifest) ListBlocks() []BlockRef {
	seen := map[ID]struct{}{}
	var refs []BlockRef
	for _, e := range m.Entries {
		for _, l := range e.Lists {
			if _, dup := seen[l.ID]; !dup {
				seen[l.ID] = struct{}{}
				refs = append(refs, l)
			}
		}
	}
	return refs
}

// CheckListSum checks, before anything is allocated for them, that the
// blocks e's list blocks name add up to its size, as an inline list must
// (DecodeManifest bounded their count by its size).
func CheckListSum(e *Entry, lists map[ID][]BlockRef) error {
	var total int64
	for _, l := range e.Lists {
		for _, b := range lists[l.ID] {
			total += int64(b.Size)
		}
	}
	if len(e.Lists) > 0 && total != e.Size {
		return fmt.Errorf("block lists add up to %d bytes, size says %d: %w", total, e.Size, ErrCorrupt)
	}
	return nil
}

// ExpandEntry sets e.Blocks from its list blocks once CheckListSum
// passes: a file's blocks cost memory only once they describe it.
func ExpandEntry(e *Entry, lists map[ID][]BlockRef) error {
	if len(e.Lists) == 0 {
		return nil
	}
	if err := CheckListSum(e, lists); err != nil {
		return err
	}
	n := 0
	for _, l := range e.Lists {
		n += len(lists[l.ID])
	}
	e.Blocks = make([]BlockRef, 0, n)
	for _, l := range e.Lists {
		e.Blocks = append(e.Blocks, lists[l.ID]...)
	}
	return nil
}

// Chunks yields e's blocks in file order a part at a time: the inline
// list in parts of SegmentBlocks, or each list block's entries as read
// (Repository.ReadBlockLists). Nothing is expanded, so walking a file
// costs the parts in hand, not how many blocks its lists name. l may be
// nil for a manifest whose lists are expanded.
func (l *BlockLists) Chunks(e *Entry) iter.Seq[[]BlockRef] {
	return func(yield func([]BlockRef) bool) {
		if len(e.Lists) == 0 || len(e.Blocks) > 0 || l == nil {
			for part := range slices.Chunk(e.Blocks, SegmentBlocks) {
				if !yield(part) {
					return
				}
			}
			return
		}
		for _, ref := range e.Lists {
			if !yield(l.Lists[ref.ID]) {
				return
			}
		}
	}
}

// Expanded returns e's blocks in one slice, or nil when its lists name
// more than limit of them.
func (l *BlockLists) Expanded(e *Entry, limit int) []BlockRef {
	if len(e.Lists) == 0 || len(e.Blocks) > 0 || l == nil {
		return e.Blocks
	}
	n := e.BlockCount()
	if n > limit {
		return nil
	}
	out := make([]BlockRef, 0, n)
	for part := range l.Chunks(e) {
		out = append(out, part...)
	}
	return out
}

// Refs reads n (block id, raw length) pairs, none longer than max.
func (d *Decoder) Refs(n, max uint64) []BlockRef {
	if n == 0 || d.Err != nil {
		return nil
	}
	out := make([]BlockRef, n)
	for j := range out {
		copy(out[j].ID[:], d.bytes(32))
		out[j].Size = uint32(d.Uvarint(max))
	}
	return out
}

// SegmentBlocks is how many blocks one worker writes of a large file:
// files longer than that are decoded and written by several workers at
// once, at offsets known from the manifest.
const SegmentBlocks = 64

// BlocksSize is the length of the content blocks make up.
func BlocksSize(blocks []BlockRef) int64 {
	var n int64
	for _, b := range blocks {
		n += int64(b.Size)
	}
	return n
}

// AllZero reports whether b holds only zeros: save takes such a block's
// id from a cache instead of hashing it, and restore leaves it a hole.
func AllZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
