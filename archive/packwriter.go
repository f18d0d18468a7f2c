package archive

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/statepack/statepack/archive/format"
)

// PackWriter is the one place where packs are built and stored. Save's
// compressors, push and pull, prune's repacking and repair's salvage all
// hand it stored blocks, or whole packs already verified, and it fills
// packs to the repository's target, uploads them with a bounded number in
// flight and, when asked, writes index objects for them as it goes. How a
// pack is built, compressed or sealed is therefore decided here once.
type PackWriter struct {
	r          *Repository
	target     int
	indexEvery int

	fill sync.Mutex // guards cur; held while a full pack waits for an upload slot
	cur  *format.PackBuilder

	g    *errgroup.Group
	gctx context.Context

	mu      sync.Mutex         // guards what follows
	written []format.IndexPack // every pack stored, for Close
	pending []format.IndexPack // stored packs not yet in an index object
	stats   PackStats
}

// PackWriterOptions say how a PackWriter uploads.
type PackWriterOptions struct {
	// Jobs is how many packs upload at once (0: one). An Add that fills a
	// pack waits while Jobs packs are in flight, so that at most Jobs+1
	// packs are in memory however many goroutines add.
	Jobs int
	// IndexEvery, when positive, writes an index object for every
	// IndexEvery packs stored and one for the rest at Close: a copy cut
	// off keeps what it finished. At 0 the writer writes no index and the
	// caller indexes what Close returns (save writes its index just
	// before its snapshot; prune and repair replace the whole index).
	IndexEvery int
}

// PackStats counts what a PackWriter stored.
type PackStats struct {
	Packs  int   // packs stored, whole ones included
	Blocks int64 // blocks in them
	Bytes  int64 // their stored bytes
}

// NewPackWriter returns a writer of new packs on r. It must be ended by
// Close or Abort.
func (r *Repository) NewPackWriter(ctx context.Context, o PackWriterOptions) *PackWriter {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(o.Jobs, 1))
	return &PackWriter{r: r, target: r.cfg.PackTarget(), indexEvery: o.IndexEvery, g: g, gctx: gctx}
}

// Add appends one block to the pack being filled: stored is the block as
// the pack holds it (it may be reused on return), raw its decoded length,
// enc its encoding. A full pack goes to upload with the fill lock held,
// so that adders wait for an upload slot instead of each filling a pack
// of its own. After an upload failed, Add reports that failure. Safe for
// concurrent use.
func (w *PackWriter) Add(id format.ID, stored []byte, raw int, enc uint8) error {
	if w.gctx.Err() != nil {
		return w.failure()
	}
	w.fill.Lock()
	defer w.fill.Unlock()
	if w.cur == nil {
		w.cur = format.NewPackBuilder(w.target)
	}
	w.cur.Add(id, stored, raw, enc)
	if w.cur.Size() < w.target {
		return nil
	}
	full := w.cur
	w.cur = nil
	w.upload(full)
	return nil
}

// failure is the first upload error (errgroup cancels gctx with it as
// the cause), or the cancellation of the caller's context.
func (w *PackWriter) failure() error { return context.Cause(w.gctx) }

// upload stores a full pack on a goroutine of its own; it blocks while
// Jobs packs are in flight, which bounds memory.
func (w *PackWriter) upload(p *format.PackBuilder) {
	id, data, entries := p.Finish()
	w.g.Go(func() error {
		if err := w.r.PutPack(w.gctx, id, data); err != nil {
			return err
		}
		format.RecyclePack(data)
		return w.stored(w.gctx, id, entries)
	})
}

// AddPack records a pack that is already stored whole on the repository
// (copied as it was, after checking it against its id and trailer).
func (w *PackWriter) AddPack(ctx context.Context, id format.ID, entries []format.PackEntry) error {
	return w.stored(ctx, id, entries)
}

// PutPack stores a whole pack read and verified elsewhere, as it is, and
// records it.
func (w *PackWriter) PutPack(ctx context.Context, id format.ID, data []byte, entries []format.PackEntry) error {
	if err := w.r.PutPack(ctx, id, data); err != nil {
		return err
	}
	return w.stored(ctx, id, entries)
}

// stored records a stored pack, and writes an index object once
// IndexEvery packs wait for one.
func (w *PackWriter) stored(ctx context.Context, id format.ID, entries []format.PackEntry) error {
	p := format.IndexPack{Pack: id, Entries: entries}
	w.mu.Lock()
	w.written = append(w.written, p)
	w.stats.Packs++
	w.stats.Blocks += int64(len(entries))
	for _, e := range entries {
		w.stats.Bytes += int64(e.Stored)
	}
	var batch []format.IndexPack
	if w.indexEvery > 0 {
		w.pending = append(w.pending, p)
		if len(w.pending) >= w.indexEvery {
			batch, w.pending = w.pending, nil
		}
	}
	w.mu.Unlock()
	if batch == nil {
		return nil
	}
	_, err := w.r.PutIndex(ctx, batch)
	return err
}

// Close stores the pack being filled, waits for every upload, writes the
// index object for the packs not in one yet (with IndexEvery) and returns
// every pack stored: all of them are complete in the backend when it
// returns without error.
func (w *PackWriter) Close(ctx context.Context) ([]format.IndexPack, error) {
	w.fill.Lock()
	if w.cur != nil && w.cur.Len() > 0 {
		w.upload(w.cur)
	}
	w.cur = nil
	w.fill.Unlock()
	if err := w.g.Wait(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	w.mu.Lock()
	pending := w.pending
	w.pending = nil
	w.mu.Unlock()
	if len(pending) > 0 {
		if _, err := w.r.PutIndex(ctx, pending); err != nil {
			return nil, fmt.Errorf("index of new packs: %w", err)
		}
	}
	return w.written, nil
}

// Abort waits for the uploads in flight and drops the pack being filled.
// Safe to call after Close.
func (w *PackWriter) Abort() {
	w.fill.Lock()
	w.cur = nil
	w.fill.Unlock()
	_ = w.g.Wait()
}

// Stats counts what was stored so far.
func (w *PackWriter) Stats() PackStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
}
