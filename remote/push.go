package remote

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/internal/progress"
)

// Push sends the head snapshot of a state to the remote: the blocks the
// remote lacks (copied as stored, never recompressed), in new packs, then
// an index, the manifest, and last the ref, by compare-and-swap (DESIGN.md
// invariants 1, 6 and 7). A push cut off anywhere can be run again.
func Push(ctx context.Context, local, remote *archive.Repository, o PushOptions) (*SyncResult, error) {
	start, before := time.Now(), requests(remote)
	head, _, err := local.ReadRef(ctx, o.State)
	if err != nil {
		return nil, err
	}
	res := &SyncResult{State: o.State, Snapshot: head}
	done := func() (*SyncResult, error) {
		res.Requests, res.Duration = requests(remote)-before, time.Since(start)
		return res, nil
	}
	rhead, rtag, err := remote.ReadRef(ctx, o.State)
	switch {
	case err == nil && rhead == head:
		res.UpToDate = true
		return done()
	case err != nil && !errors.Is(err, archive.ErrNotFound):
		return nil, err
	case err == nil && !o.Force:
		ok, err := local.IsAncestor(ctx, rhead, head)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("state '%s' on %s is at %s, which the local state does not contain (%w); pull first, or push --force to replace it",
				o.State, remote.Location(), rhead.Short(), ErrNotFastForward)
		}
	}
	lock, err := remote.Lock(ctx, false, "push", o.LockWait)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	if err := sendSnapshot(ctx, local, remote, head, o, res); err != nil {
		return nil, err
	}
	if err := remote.SetRef(ctx, o.State, head, rtag); err != nil {
		if errors.Is(err, archive.ErrConflict) {
			return nil, fmt.Errorf("%w; pull first, or push --force", err)
		}
		return nil, err
	}
	return done()
}

// sendSnapshot copies the blocks and the manifest of one snapshot.
func sendSnapshot(ctx context.Context, local, remote *archive.Repository, head archive.ID, o PushOptions, res *SyncResult) error {
	m, err := local.LoadManifest(ctx, head)
	if err != nil {
		return err
	}
	if _, err := local.LoadIndex(ctx); err != nil {
		return err
	}
	blocks, _ := blockSet(m)
	want := make(map[archive.ID]struct{}, len(blocks))
	for _, b := range blocks {
		want[b.ID] = struct{}{}
	}
	have, err := remote.FindBlocks(ctx, want)
	if err != nil {
		return err
	}
	var missing []archive.Location
	var ids []archive.ID
	for _, b := range blocks {
		if _, ok := have[b.ID]; ok {
			res.SkippedBlocks++
			res.SkippedBytes += int64(b.Size)
			continue
		}
		loc, ok := local.Index().Lookup(b.ID)
		if !ok {
			return fmt.Errorf("snapshot %s is incomplete locally: block %s is missing; run `statepack verify`", head.Short(), b.ID.Short())
		}
		missing = append(missing, loc)
		ids = append(ids, b.ID)
	}
	if err := copyBlocks(ctx, local, remote, ids, missing, jobs(o.Jobs), progress.Or(o.Progress), res); err != nil {
		return err
	}
	data, err := local.LoadManifestBytes(ctx, head)
	if err != nil {
		return err
	}
	_, err = remote.PutManifestBytes(ctx, data)
	return err
}

// blockCopy is one block to move, with where it is read from.
type blockCopy struct {
	id  archive.ID
	loc archive.Location
}

// copyBlocks reads blocks from src (grouped by pack, coalescing ranges),
// verifies each, and writes them as stored into new packs on dst with
// several packs in flight. An index object follows every few packs, so a
// push or pull that is cut off keeps what it finished.
func copyBlocks(ctx context.Context, src, dst *archive.Repository, ids []archive.ID, locs []archive.Location, jobs int, sink progress.Sink, res *SyncResult) error {
	var total int64
	byPack := map[archive.ID][]blockCopy{}
	for i, id := range ids {
		byPack[locs[i].Pack] = append(byPack[locs[i].Pack], blockCopy{id, locs[i]})
		total += int64(locs[i].Stored)
	}
	sink.Phase("transfer", int64(len(ids)), total)
	w := newPackSink(ctx, dst, jobs)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for pack, blocks := range byPack {
		slices.SortFunc(blocks, func(a, b blockCopy) int { return int(a.loc.Offset) - int(b.loc.Offset) })
		g.Go(func() error {
			return readPackBlocks(gctx, src, pack, blocks, func(c blockCopy, stored []byte) error {
				sink.Add(1, int64(len(stored)))
				return w.add(gctx, c, stored)
			})
		})
	}
	if err := g.Wait(); err != nil {
		w.abort()
		return err
	}
	n, blocks, bytes, err := w.close(ctx)
	res.Packs, res.Blocks, res.Bytes = n, blocks, bytes
	return err
}

// packSink fills packs on dst and uploads them, jobs at a time.
type packSink struct {
	dst     *archive.Repository
	mu      sync.Mutex
	cur     *archive.PackBuilder
	g       *errgroup.Group
	gctx    context.Context
	packs   int
	blocks  int64
	bytes   int64
	pending []archive.IndexPack
}

func newPackSink(ctx context.Context, dst *archive.Repository, jobs int) *packSink {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	return &packSink{dst: dst, g: g, gctx: gctx}
}

func (s *packSink) add(ctx context.Context, c blockCopy, stored []byte) error {
	s.mu.Lock()
	if s.cur == nil {
		s.cur = archive.NewPackBuilder(s.dst.Config().PackSize)
	}
	s.cur.Add(c.id, stored, int(c.loc.Raw), c.loc.Encoding)
	s.blocks++
	s.bytes += int64(len(stored))
	if s.cur.Size() < s.dst.Config().PackSize {
		s.mu.Unlock()
		return nil
	}
	full := s.cur
	s.cur = nil
	s.mu.Unlock()
	return s.upload(full)
}

// upload starts writing a full pack; it blocks while jobs packs are in
// flight, which bounds memory.
func (s *packSink) upload(p *archive.PackBuilder) error {
	id, data, entries := p.Finish()
	s.g.Go(func() error {
		if err := s.dst.PutPack(s.gctx, id, data); err != nil {
			return err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.packs++
		s.pending = append(s.pending, archive.IndexPack{Pack: id, Entries: entries})
		if len(s.pending) >= 8 {
			batch := s.pending
			s.pending = nil
			if _, err := s.dst.PutIndex(s.gctx, batch); err != nil {
				return err
			}
		}
		return nil
	})
	return nil
}

func (s *packSink) close(ctx context.Context) (int, int64, int64, error) {
	if s.cur != nil && s.cur.Len() > 0 {
		_ = s.upload(s.cur)
		s.cur = nil
	}
	if err := s.g.Wait(); err != nil {
		return 0, 0, 0, err
	}
	if _, err := s.dst.PutIndex(ctx, s.pending); err != nil {
		return 0, 0, 0, err
	}
	return s.packs, s.blocks, s.bytes, nil
}

func (s *packSink) abort() { _ = s.g.Wait() }
