package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/remote/backend"
)

// BlockAt is a block and where it is stored.
type BlockAt struct {
	ID  format.ID
	Loc format.Location
}

// Range reads are merged when the gap between two wanted blocks is below
// coalesceGap, and a pack is read whole when at least wholePackShare of it
// is wanted: fewer, larger requests cost less than moving a few unused
// bytes, above all on S3.
const (
	coalesceGap    = 256 << 10
	wholePackShare = 0.5
	maxRangeBytes  = 24 << 20
)

// GroupByPack groups blocks by pack, each group sorted by offset, as
// ReadPackBlocks wants them.
func GroupByPack(blocks []BlockAt) map[format.ID][]BlockAt {
	groups := map[format.ID][]BlockAt{}
	for _, b := range blocks {
		groups[b.Loc.Pack] = append(groups[b.Loc.Pack], b)
	}
	for _, g := range groups {
		slices.SortFunc(g, func(a, b BlockAt) int { return int(a.Loc.Offset) - int(b.Loc.Offset) })
	}
	return groups
}

// ReadPackBlocks reads the given blocks of one pack (sorted by offset)
// with as few ranged reads as their layout allows, verifies each against
// its id, and hands fn its stored and raw bytes, both valid only during
// the call. Nothing unverified is passed on (invariant 2). It holds a
// window of each read, not the whole read (readSpan).
func (r *Repository) ReadPackBlocks(ctx context.Context, pack format.ID, blocks []BlockAt, fn func(b BlockAt, stored, raw []byte) error) error {
	bufs := getReadBufs()
	defer putReadBufs(bufs)
	for _, rg := range coalesce(blocks) {
		if _, _, _, err := r.readSpan(ctx, pack, rg.off, rg.end-rg.off, rg.blocks, bufs, false, fn); err != nil {
			return err
		}
	}
	return nil
}

const (
	// readStep is the least readSpan reads before it decodes the blocks
	// that have arrived: a few blocks, so the loop costs nothing next to
	// them.
	readStep = 256 << 10
	// spanWindow is how much of a read readSpan holds when the caller
	// needs it block by block only: four times the largest block the
	// chunker cuts. Holding whole 16 MiB reads, four at once, made most
	// of the memory of a push that repacks.
	spanWindow = 1 << 20
)

// readSpan reads n bytes of pack from off and hands each of blocks
// (sorted by offset, all within the span) to fn, verified, as soon as its
// bytes are in. Decoding thus overlaps the transfer: over a network the
// next bytes arrive while a block is checked, where reading the whole span
// first left the link idle while the spans of all the reads at once, which
// a shared link completes together, were checked together at the end.
// With whole set it keeps the span in bufs and returns the bytes read (all
// of them, unless short); otherwise it keeps only a window of spanWindow
// (more for a longer block), dropping the bytes of blocks done. It returns
// how many blocks went to fn; short reports, with an error, an object that
// ends before the span does (ErrOutOfRange, or io.ErrUnexpectedEOF part
// way).
func (r *Repository) readSpan(ctx context.Context, pack format.ID, off, n int64, blocks []BlockAt, bufs *readBufs, whole bool, fn func(b BlockAt, stored, raw []byte) error) (data []byte, done int, short bool, err error) {
	name := format.PackName(pack)
	rc, err := r.be.GetRange(ctx, name, off, n)
	if err != nil {
		return nil, 0, errors.Is(err, backend.ErrOutOfRange), fmt.Errorf("read %s from %s: %w", name, r.Location(), err)
	}
	defer rc.Close()
	size := n
	if !whole {
		size = min(n, spanWindow)
	}
	w := window{buf: bufs.spanFor(size)[:size]}
	defer func() { bufs.span = w.buf }()
	for w.got < n {
		var next int64 = -1 // where the next block starts: the bytes still needed
		if done < len(blocks) {
			next = int64(blocks[done].Loc.Offset) - off
		}
		w.makeRoom(next, n)
		m, rerr := io.ReadAtLeast(rc, w.free(), int(min(readStep, n-w.got, int64(len(w.free())))))
		w.got += int64(m)
		for ; done < len(blocks) && int64(blocks[done].Loc.Offset)+int64(blocks[done].Loc.Stored)-off <= w.got; done++ {
			b := blocks[done]
			stored := w.bytes(int64(b.Loc.Offset)-off, int64(b.Loc.Stored))
			raw, err := r.DecodeBlock(b.ID, b.Loc, stored, bufs.raw)
			if err != nil {
				return w.held(), done, false, fmt.Errorf("pack %s on %s: %w", pack, r.Location(), err)
			}
			bufs.raw = raw
			if err := fn(b, stored, raw); err != nil {
				return w.held(), done, false, err
			}
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			return w.held(), done, true, fmt.Errorf("read %s from %s: %w", name, r.Location(), io.ErrUnexpectedEOF)
		}
		if rerr != nil {
			return w.held(), done, false, fmt.Errorf("read %s from %s: %w", name, r.Location(), rerr)
		}
	}
	return w.held(), done, false, nil
}

// window is the part of a span readSpan holds: buf holds the span's
// bytes from base up to got.
type window struct {
	buf       []byte
	base, got int64
}

// free is the room left after the bytes read.
func (w *window) free() []byte { return w.buf[w.got-w.base:] }

// held is the bytes read that the window still holds.
func (w *window) held() []byte { return w.buf[:w.got-w.base] }

// bytes returns n bytes of the span at off, which the window holds.
func (w *window) bytes(off, n int64) []byte { return w.buf[off-w.base : off-w.base+n] }

// makeRoom makes room to read when the window is full: it drops the
// bytes before next (the start of the next block; -1: none is left),
// and when one block fills the window, it grows it, up to the span's
// length n.
func (w *window) makeRoom(next, n int64) {
	if w.got-w.base < int64(len(w.buf)) {
		return
	}
	keep := w.got
	if next >= 0 {
		keep = min(keep, next)
	}
	copy(w.buf, w.buf[keep-w.base:w.got-w.base])
	w.base = keep
	if w.got-w.base == int64(len(w.buf)) {
		grown := make([]byte, min(2*int64(len(w.buf)), n-w.base))
		copy(grown, w.buf)
		w.buf = grown
	}
}

// readBufs are one ReadPackBlocks call's buffers: the span read from the
// pack and the decoded block. A pull reads hundreds of spans of up to
// maxRangeBytes; a fresh buffer for each cost a tenth of its CPU in
// zeroing, copying and page faults. They are kept in a free list of
// readBufsKept entries, so memory stays bounded by what DefaultJobs
// transfers hold at once; calls beyond that allocate, and their buffers
// are dropped.
type readBufs struct {
	span, raw []byte
}

// spanFor returns the span buffer, empty, with room for n bytes. It grows
// to n rounded up to a MiB: a reused buffer grows a few times, not once
// per slightly larger span.
func (b *readBufs) spanFor(n int64) []byte {
	if int64(cap(b.span)) < n {
		b.span = make([]byte, 0, (n+1<<20-1)&^(1<<20-1))
	}
	return b.span[:0]
}

const readBufsKept = 4

var readBufsFree = make(chan *readBufs, readBufsKept)

func getReadBufs() *readBufs {
	select {
	case b := <-readBufsFree:
		return b
	default:
		return &readBufs{}
	}
}

func putReadBufs(b *readBufs) {
	if cap(b.span) > maxRangeBytes+format.MaxBlockSize {
		b.span = nil // a span is never larger; keep the ceiling certain
	}
	select {
	case readBufsFree <- b:
	default:
	}
}

type span struct {
	off, end int64
	blocks   []BlockAt
}

// coalesce groups blocks (sorted by offset) into spans read with one
// request each.
func coalesce(blocks []BlockAt) []span {
	if len(blocks) == 0 {
		return nil
	}
	first, last := blocks[0].Loc, blocks[len(blocks)-1].Loc
	whole := int64(last.Offset) + int64(last.Stored) - int64(first.Offset)
	var wanted int64
	for _, b := range blocks {
		wanted += int64(b.Loc.Stored)
	}
	if whole <= maxRangeBytes && float64(wanted) >= wholePackShare*float64(whole) {
		return []span{{off: int64(first.Offset), end: int64(first.Offset) + whole, blocks: blocks}}
	}
	var out []span
	for _, b := range blocks {
		off, end := int64(b.Loc.Offset), int64(b.Loc.Offset)+int64(b.Loc.Stored)
		if n := len(out); n > 0 && off-out[n-1].end <= coalesceGap && end-out[n-1].off <= maxRangeBytes && off >= out[n-1].end {
			out[n-1].end = end
			out[n-1].blocks = append(out[n-1].blocks, b)
			continue
		}
		out = append(out, span{off: off, end: end, blocks: []BlockAt{b}})
	}
	return out
}

// PackReceiver takes the blocks ReadPackFrom reads: every block goes to
// Block, verified, as it arrives; then either the pack as it is goes to
// Keep, or each block's stored bytes, verified, go to Add.
type PackReceiver struct {
	// Block gets each block's stored and raw bytes, valid during the call.
	Block func(b BlockAt, stored, raw []byte) error
	// Keep gets a pack read whole that checks: its bytes, valid during
	// the call, and its trailer's entries.
	Keep func(data []byte, entries []format.PackEntry) error
	// Add gets the stored bytes of each block not in a kept pack, valid
	// during the call, to store in packs of the caller's own.
	Add func(b BlockAt, stored []byte) error
}

// ReadPackFrom is ReadPackBlocks for a reader that can store a pack as
// it is: when blocks lie back to back from the start of pack (every block
// of the pack, when a cold pull wants them), it reads them together with
// the trailer a pack of exactly those blocks ends with, in one request,
// each block going to to.Block as it arrives. When those bytes are that
// whole pack (they hash to its id, and its trailer lists these blocks
// where the index put them), to.Keep gets them, instead of the caller
// building a copy. Otherwise each block goes to to.Add: from the same
// bytes when the pack holds more, else as ReadPackBlocks reads the rest
// (the blocks lie otherwise, or the object is shorter than they and the
// trailer: ReadPackBlocks reports what is wrong).
func (r *Repository) ReadPackFrom(ctx context.Context, pack format.ID, blocks []BlockAt, to PackReceiver) error {
	both := func(b BlockAt, stored, raw []byte) error {
		if err := to.Block(b, stored, raw); err != nil {
			return err
		}
		return to.Add(b, stored)
	}
	size, ok := packOfExactly(blocks)
	if !ok {
		return r.ReadPackBlocks(ctx, pack, blocks, both)
	}
	bufs := getReadBufs()
	defer putReadBufs(bufs)
	data, done, short, err := r.readSpan(ctx, pack, 0, size, blocks, bufs, true, to.Block)
	switch {
	case short: // not a pack of just these blocks
		if err := addEach(blocks[:done], data, to.Add); err != nil {
			return err
		}
		return r.ReadPackBlocks(ctx, pack, blocks[done:], both)
	case err != nil:
		return err // a failure of the remote (reading again would wait for it again), or a block that does not verify
	}
	if entries, whole := wholePack(pack, data, blocks); whole {
		return to.Keep(data, entries)
	}
	return addEach(blocks, data, to.Add)
}

// addEach hands add the stored bytes of each of blocks, found in data
// (the bytes of their pack from its start).
func addEach(blocks []BlockAt, data []byte, add func(b BlockAt, stored []byte) error) error {
	for _, b := range blocks {
		if err := add(b, data[b.Loc.Offset:int64(b.Loc.Offset)+int64(b.Loc.Stored)]); err != nil {
			return err
		}
	}
	return nil
}

// packOfExactly returns the size of a pack holding exactly blocks, when
// they lie back to back from offset 0 and the pack is small enough to be
// read in one request.
func packOfExactly(blocks []BlockAt) (int64, bool) {
	var next int64
	for _, b := range blocks {
		if int64(b.Loc.Offset) != next {
			return 0, false
		}
		next += int64(b.Loc.Stored)
	}
	size := next + int64(len(blocks))*format.PackEntrySize + format.PackFooterSize
	return size, len(blocks) > 0 && size <= maxRangeBytes
}

// wholePack reports whether data is the whole of pack, holding exactly
// blocks where they say, and returns its trailer's entries.
func wholePack(pack format.ID, data []byte, blocks []BlockAt) ([]format.PackEntry, bool) {
	end := int64(blocks[len(blocks)-1].Loc.Offset) + int64(blocks[len(blocks)-1].Loc.Stored)
	entries, err := format.DecodePackTrailer(data[end:], int64(len(data)))
	if err != nil || len(entries) != len(blocks) || format.Hash(data) != pack {
		return nil, false
	}
	for i, e := range entries {
		l := blocks[i].Loc
		if e.ID != blocks[i].ID || e.Offset != l.Offset || e.Stored != l.Stored || e.Raw != l.Raw || e.Encoding != l.Encoding {
			return nil, false
		}
	}
	return entries, true
}
