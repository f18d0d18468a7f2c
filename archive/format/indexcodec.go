package format

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
)

// IndexMagic opens every index object.
const IndexMagic = "SPI1"

// IndexPack is one pack's share of an index object.
type IndexPack struct {
	Pack    ID
	Entries []PackEntry
}

// EncodeIndex writes an index object: magic, pack count, then per pack its
// id, entry count and entries (the same 45-byte entries as a pack trailer).
func EncodeIndex(packs []IndexPack) []byte {
	var b bytes.Buffer
	b.WriteString(IndexMagic)
	b.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(packs))))
	for _, p := range packs {
		b.Write(p.Pack[:])
		b.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(p.Entries))))
		b.Write(appendTrailer(nil, p.Entries)[:len(p.Entries)*PackEntrySize])
	}
	return b.Bytes()
}

// MaxIndexObjectSize bounds an index object as read: the largest that
// statepack writes (Repository.PutIndex: MaxIndexEntries entries, each of
// a pack of its own; 5,308,424 bytes). A listed or stat size over it is
// refused before the object is read, and readers stop one byte past it
// (invariant 5): a Repository.FindBlocks, which holds indexReadJobs+1
// objects at once, then holds at most 27 MiB of them.
const MaxIndexObjectSize = 8 + MaxIndexEntries*(32+4+PackEntrySize)

// SplitIndexPacks cuts the entries of a pack of more than MaxIndexEntries
// blocks (a pack of tiny blocks) into several IndexPacks, so that
// Repository.PutIndex never writes an index object over
// MaxIndexObjectSize. Readers take a pack's entries from any number of
// objects.
func SplitIndexPacks(packs []IndexPack) []IndexPack {
	if !slices.ContainsFunc(packs, func(p IndexPack) bool { return len(p.Entries) > MaxIndexEntries }) {
		return packs
	}
	var out []IndexPack
	for _, p := range packs {
		for part := range slices.Chunk(p.Entries, MaxIndexEntries) {
			out = append(out, IndexPack{Pack: p.Pack, Entries: part})
		}
	}
	return out
}

// DecodeIndex parses an index object. Counts are checked against the bytes
// that remain before anything is allocated, so a hostile index cannot make
// the reader allocate more than the object's own size.
func DecodeIndex(data []byte) ([]IndexPack, error) {
	if len(data) > MaxIndexObjectSize {
		return nil, fmt.Errorf("index of %d bytes over limit: %w", len(data), ErrCorrupt)
	}
	if len(data) < 8 || string(data[:4]) != IndexMagic {
		return nil, fmt.Errorf("index header: %w", ErrCorrupt)
	}
	np := int(binary.LittleEndian.Uint32(data[4:]))
	rest := data[8:]
	if np > len(rest)/36 {
		return nil, fmt.Errorf("index claims %d packs in %d bytes: %w", np, len(rest), ErrCorrupt)
	}
	packs := make([]IndexPack, np)
	for i := range packs {
		if len(rest) < 36 {
			return nil, fmt.Errorf("index truncated: %w", ErrCorrupt)
		}
		copy(packs[i].Pack[:], rest[:32])
		n := int(binary.LittleEndian.Uint32(rest[32:]))
		rest = rest[36:]
		if n > len(rest)/PackEntrySize {
			return nil, fmt.Errorf("index claims %d entries in %d bytes: %w", n, len(rest), ErrCorrupt)
		}
		entries := make([]PackEntry, n)
		for j := range entries {
			e := &entries[j]
			if err := DecodeEntry(e, rest[j*PackEntrySize:]); err != nil {
				return nil, fmt.Errorf("index entry for pack %s: %w", packs[i].Pack.Short(), err)
			}
			if int64(e.Offset)+int64(e.Stored) > MaxPackSize {
				return nil, fmt.Errorf("index entry points past any pack: %w", ErrCorrupt)
			}
		}
		packs[i].Entries = entries
		rest = rest[n*PackEntrySize:]
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("index has %d trailing bytes: %w", len(rest), ErrCorrupt)
	}
	return packs, nil
}

// ScanIndex walks an index object's entries in place, calling fn with the
// pack id and the raw 45-byte entry, without building the decoded form:
// Repository.FindBlocks looks at millions of entries and keeps a few.
func ScanIndex(data []byte, fn func(pack ID, entry []byte) error) error {
	if len(data) < 8 || string(data[:4]) != IndexMagic {
		return fmt.Errorf("index header: %w", ErrCorrupt)
	}
	np := int(binary.LittleEndian.Uint32(data[4:]))
	rest := data[8:]
	for i := 0; i < np; i++ {
		if len(rest) < 36 {
			return fmt.Errorf("index truncated: %w", ErrCorrupt)
		}
		pack := ID(rest[:32])
		n := int(binary.LittleEndian.Uint32(rest[32:]))
		rest = rest[36:]
		if n > len(rest)/PackEntrySize {
			return fmt.Errorf("index claims %d entries in %d bytes: %w", n, len(rest), ErrCorrupt)
		}
		for j := 0; j < n; j++ {
			if err := fn(pack, rest[j*PackEntrySize:(j+1)*PackEntrySize]); err != nil {
				return err
			}
		}
		rest = rest[n*PackEntrySize:]
	}
	if len(rest) != 0 {
		return fmt.Errorf("index has %d trailing bytes: %w", len(rest), ErrCorrupt)
	}
	return nil
}

// Location is where a block is stored.
type Location struct {
	Pack     ID
	Offset   uint32
	Stored   uint32
	Raw      uint32
	Encoding uint8
}

// MaxIndexEntries bounds one index object (about 3 MiB), so that readers
// of a remote with millions of blocks hold one small object at a time.
const MaxIndexEntries = 1 << 16
