package format

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Block encodings inside a pack.
const (
	EncodingRaw  uint8 = 0 // stored bytes are the block
	EncodingZstd uint8 = 1 // stored bytes are one zstd frame of the block
)

// MaxBlockSize bounds a block's raw and stored length anywhere in the
// format, whatever a config or index claims: decoders check it before they
// allocate.
const MaxBlockSize = 64 << 20

// Pack trailer layout: entries of PackEntrySize bytes, then a footer of
// PackFooterSize (entry count, PackMagic).
const (
	PackMagic      = "SPK1"
	PackEntrySize  = 32 + 4 + 4 + 4 + 1
	PackFooterSize = 4 + 4
	// MaxPackSize bounds what a reader accepts; configs cap the target at 1 GiB.
	MaxPackSize = 2 << 30
)

// PackEntry locates one block inside a pack.
type PackEntry struct {
	ID       ID
	Offset   uint32
	Stored   uint32 // bytes in the pack
	Raw      uint32 // bytes after decoding
	Encoding uint8
}

// At is where the entry's block lies when its pack is pack.
func (e PackEntry) At(pack ID) Location {
	return Location{Pack: pack, Offset: e.Offset, Stored: e.Stored, Raw: e.Raw, Encoding: e.Encoding}
}

// PackBuilder collects stored blocks into one pack in memory. The pack
// layout is the blocks back to back, then a trailer table of PackEntry, then
// a footer (entry count, magic), so that the index can always be rebuilt
// from the packs alone.
type PackBuilder struct {
	buf     []byte
	entries []PackEntry
}

// NewPackBuilder returns a builder whose buffer is sized for target bytes,
// taking one handed back by RecyclePack when it is large enough.
func NewPackBuilder(target int) *PackBuilder {
	want := target + target/8
	select {
	case buf := <-packBufsFree:
		if cap(buf) >= want {
			return &PackBuilder{buf: buf[:0]}
		}
	default:
	}
	return &PackBuilder{buf: make([]byte, 0, want)}
}

// packBufsKept bounds the pack buffers kept for reuse between builders.
const packBufsKept = 4

var packBufsFree = make(chan []byte, packBufsKept)

// RecyclePack hands the bytes of a finished pack (from Finish) back for
// the next NewPackBuilder, once they have been written and nothing reads
// them any more. A pull fills a new pack every 16 MiB; allocating each
// afresh would cost it zeroing and page faults. At most packBufsKept are
// kept.
func RecyclePack(data []byte) {
	if cap(data) > MaxPackSize {
		return
	}
	select {
	case packBufsFree <- data[:0]:
	default:
	}
}

// Add appends one stored block.
func (p *PackBuilder) Add(id ID, stored []byte, raw int, enc uint8) {
	p.entries = append(p.entries, PackEntry{ID: id, Offset: uint32(len(p.buf)), Stored: uint32(len(stored)), Raw: uint32(raw), Encoding: enc})
	p.buf = append(p.buf, stored...)
}

// Size is the number of block bytes so far.
func (p *PackBuilder) Size() int { return len(p.buf) }

// Len is the number of blocks so far.
func (p *PackBuilder) Len() int { return len(p.entries) }

// Finish appends the trailer and returns the pack's bytes, its id and its
// entries. The builder is reset and can be reused; the returned slices stay
// valid until the next Add.
func (p *PackBuilder) Finish() (ID, []byte, []PackEntry) {
	p.buf = appendTrailer(p.buf, p.entries)
	data, entries := p.buf, p.entries
	p.buf, p.entries = p.buf[:0:0], nil
	return Hash(data), data, entries
}

func appendTrailer(b []byte, entries []PackEntry) []byte {
	for _, e := range entries {
		b = append(b, e.ID[:]...)
		b = binary.LittleEndian.AppendUint32(b, e.Offset)
		b = binary.LittleEndian.AppendUint32(b, e.Stored)
		b = binary.LittleEndian.AppendUint32(b, e.Raw)
		b = append(b, e.Encoding)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(entries)))
	return append(b, PackMagic...)
}

// ErrCorrupt: an object does not match its id or its format, or fails a
// structural check. Errors wrapping it name the object.
var ErrCorrupt = errors.New("corrupt")

// PackTrailerSize returns how many bytes at the end of a pack of packSize
// bytes hold the trailer, given its last 8 bytes. Every entry names a
// block of at least one stored byte, which bounds the count the footer
// may claim by the pack's size.
func PackTrailerSize(footer []byte, packSize int64) (int64, error) {
	if len(footer) != PackFooterSize || string(footer[4:]) != PackMagic {
		return 0, fmt.Errorf("pack footer: %w", ErrCorrupt)
	}
	n := int64(binary.LittleEndian.Uint32(footer))
	if n*(PackEntrySize+1)+PackFooterSize > packSize || packSize > MaxPackSize {
		return 0, fmt.Errorf("pack trailer claims %d entries in %d bytes: %w", n, packSize, ErrCorrupt)
	}
	return n*PackEntrySize + PackFooterSize, nil
}

// DecodePackTrailer parses the trailer (as sized by PackTrailerSize) of a
// pack of packSize bytes and checks that the entries tile the block area
// exactly, in order, within bounds.
func DecodePackTrailer(trailer []byte, packSize int64) ([]PackEntry, error) {
	if len(trailer) < PackFooterSize {
		return nil, fmt.Errorf("pack trailer: %w", ErrCorrupt)
	}
	if _, err := PackTrailerSize(trailer[len(trailer)-PackFooterSize:], packSize); err != nil {
		return nil, err
	}
	n := int(binary.LittleEndian.Uint32(trailer[len(trailer)-PackFooterSize:]))
	if len(trailer) != n*PackEntrySize+PackFooterSize {
		return nil, fmt.Errorf("pack trailer length: %w", ErrCorrupt)
	}
	t := TrailerTiling{End: packSize - int64(len(trailer))}
	entries := make([]PackEntry, n)
	for i := range entries {
		if err := t.Decode(&entries[i], i, trailer[i*PackEntrySize:]); err != nil {
			return nil, err
		}
	}
	return entries, t.Done()
}

// TrailerTiling checks a trailer's entries one at a time, as they come:
// each must be valid and begin where the previous ended, within the
// block area, which ends at End.
type TrailerTiling struct {
	next, End int64
}

// Decode reads entry i from b into e and checks it.
func (t *TrailerTiling) Decode(e *PackEntry, i int, b []byte) error {
	if err := DecodeEntry(e, b); err != nil {
		return fmt.Errorf("pack entry %d: %w", i, err)
	}
	if int64(e.Offset) != t.next || int64(e.Offset)+int64(e.Stored) > t.End {
		return fmt.Errorf("pack entry %d at %d+%d does not tile the pack: %w", i, e.Offset, e.Stored, ErrCorrupt)
	}
	t.next = int64(e.Offset) + int64(e.Stored)
	return nil
}

// Done checks that the entries decoded cover the block area.
func (t *TrailerTiling) Done() error {
	if t.next != t.End {
		return fmt.Errorf("pack has %d bytes outside its entries: %w", t.End-t.next, ErrCorrupt)
	}
	return nil
}

// DecodeEntry reads one 45-byte entry (pack trailer and index alike) and
// checks its fields.
func DecodeEntry(e *PackEntry, b []byte) error {
	copy(e.ID[:], b[:32])
	e.Offset = binary.LittleEndian.Uint32(b[32:])
	e.Stored = binary.LittleEndian.Uint32(b[36:])
	e.Raw = binary.LittleEndian.Uint32(b[40:])
	e.Encoding = b[44]
	return CheckEntry(e.Offset, e.Stored, e.Raw, e.Encoding)
}

// CheckEntry checks the fields of a pack or index entry against the
// format's bounds, so that no reader trusts a length it has not checked.
func CheckEntry(off, stored, raw uint32, enc uint8) error {
	switch {
	case enc != EncodingRaw && enc != EncodingZstd:
		return fmt.Errorf("unknown encoding %d: %w", enc, ErrCorrupt)
	case raw > MaxBlockSize || stored > MaxBlockSize:
		return fmt.Errorf("block length %d/%d over limit: %w", stored, raw, ErrCorrupt)
	case enc == EncodingRaw && stored != raw:
		return fmt.Errorf("raw block stored %d != raw %d: %w", stored, raw, ErrCorrupt)
	case raw == 0 || stored == 0:
		// No manifest names an empty block, so no writer stores one; a
		// trailer of zeros (a sparse file) fails at its first entry.
		return fmt.Errorf("empty block: %w", ErrCorrupt)
	}
	return nil
}
