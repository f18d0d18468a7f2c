package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/zeebo/blake3"
	"golang.org/x/sync/errgroup"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/internal/progress"
	"github.com/statepack/statepack/remote/backend"
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
	case replaceDamagedRef(err, rtag, o.Force):
		// --force over a ref that holds no snapshot id: replaced by
		// compare-and-swap against what it holds.
	case err != nil && !errors.Is(err, backend.ErrNotFound):
		return nil, withForceHint(err, rtag)
	case err == nil && !o.Force:
		ok, err := local.IsAncestor(ctx, rhead, head)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("state '%s' on %s is at %s, which the local state does not contain (%w); pull first, or push --force to replace it",
				o.State, remote.Location(), rhead.Short(), ErrNotFastForward)
		}
	case err == nil:
		// --force: say what it drops, so that it can be got back.
		if ok, aerr := local.IsAncestor(ctx, rhead, head); aerr != nil || !ok {
			res.Replaced = rhead
		}
	}
	lock, err := remote.Lock(ctx, false, "push", o.LockWait)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	if err := sendSnapshot(ctx, local, remote, head, rhead, o, res); err != nil {
		return nil, err
	}
	if err := setRemoteRef(ctx, remote, o.State, head, rtag); err != nil {
		if errors.Is(err, backend.ErrConflict) {
			return nil, fmt.Errorf("%w; pull first, or push --force", err)
		}
		return nil, err
	}
	// Still under the lock, so that no prune rewrites the index the
	// table is checked against. A table is an accelerator for other
	// clients: failing to publish one leaves the push done.
	if published, err := remote.PublishLookupTable(ctx); err == nil {
		res.LookupPublished = published
	}
	return done()
}

// setRemoteRef moves the remote ref by compare-and-swap. The conditional
// write is never repeated blindly (see WithRetry): when one fails without
// a verdict (its answer lost, or a 5xx), the ref is read back. At head,
// the write went through; still where it was, nothing happened and the
// write is made again; anywhere else, the original error stands.
func setRemoteRef(ctx context.Context, remote *archive.Repository, state string, head format.ID, tag string) error {
	p := DefaultRetryPolicy()
	for attempt := 1; ; attempt++ {
		err := remote.SetRef(ctx, state, head, tag)
		if err == nil || errors.Is(err, backend.ErrConflict) || !IsTransient(err) || attempt >= p.Attempts {
			return err
		}
		now, nowTag, rerr := remote.ReadRef(ctx, state)
		switch {
		case rerr == nil && now == head:
			return nil
		case tag == "" && errors.Is(rerr, backend.ErrNotFound):
		case rerr != nil || nowTag != tag:
			return err
		}
		if sleep(ctx, p.delay(attempt)) != nil {
			return err
		}
	}
}

// sendSnapshot copies the blocks and the manifest of one snapshot. rhead
// is the remote's head of the state (zero when it has none).
func sendSnapshot(ctx context.Context, local, remote *archive.Repository, head, rhead format.ID, o PushOptions, res *SyncResult) error {
	data, err := local.LoadManifestBytes(ctx, head)
	if err != nil {
		return err
	}
	m, err := format.DecodeManifest(data)
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", head.Short(), err)
	}
	if _, err := local.LoadIndex(ctx); err != nil {
		return err
	}
	// The lists are walked, not expanded: a snapshot naming one list
	// block a million times costs what it sends, not what it claims.
	lists, err := local.ReadBlockLists(ctx, m)
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", head.Short(), err)
	}
	blocks := m.ListBlocks()
	want := make(map[format.ID]struct{}, len(blocks))
	for _, b := range blocks {
		want[b.ID] = struct{}{}
	}
	for _, b := range lists.Distinct(m) {
		if _, dup := want[b.ID]; !dup {
			want[b.ID] = struct{}{}
			blocks = append(blocks, b)
		}
	}
	atHead := blocksAtRemoteHead(ctx, local, rhead, want)
	have, err := remote.FindBlocks(ctx, want)
	if err != nil {
		return err
	}
	for id := range atHead {
		have[id] = format.Location{}
	}
	var missing []format.Location
	var ids []format.ID
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
	if err := sendBlocks(ctx, local, remote, ids, missing, jobs(o.Jobs), progress.Or(o.Progress), res); err != nil {
		return err
	}
	_, err = remote.PutManifestBytes(ctx, data)
	return err
}

// sendBlocks writes the given blocks of the local store into new packs
// on the remote. A pack wanted whole is sent as it is, checked only
// against its id (the local store's pack trailers are its own); of the
// others, the wanted blocks are read (coalescing ranges), verified and
// repacked.
func sendBlocks(ctx context.Context, src, dst *archive.Repository, ids []format.ID, locs []format.Location, jobs int, sink progress.Sink, res *SyncResult) error {
	return moveBlocks(ctx, dst, ids, locs, jobs, sink, res, func(ctx context.Context, pack format.ID, blocks []archive.BlockAt, w *packSink) error {
		if sent, err := sendWholePack(ctx, src, dst, pack, blocks, w); sent || err != nil {
			sink.Add(int64(len(blocks)), 0)
			return err
		}
		return src.ReadPackBlocks(ctx, pack, blocks, func(c archive.BlockAt, stored, _ []byte) error {
			sink.Add(1, int64(len(stored)))
			return w.add(ctx, c, stored)
		})
	})
}

// moveBlocks writes blocks into new packs on dst with several packs in
// flight: perPack reads the wanted blocks of one source pack into w. An
// index object follows every few packs, so a push or pull that is cut
// off keeps what it finished.
func moveBlocks(ctx context.Context, dst *archive.Repository, ids []format.ID, locs []format.Location, jobs int, sink progress.Sink, res *SyncResult,
	perPack func(ctx context.Context, pack format.ID, blocks []archive.BlockAt, w *packSink) error) error {
	var total int64
	all := make([]archive.BlockAt, len(ids))
	for i, id := range ids {
		all[i] = archive.BlockAt{ID: id, Loc: locs[i]}
		total += int64(locs[i].Stored)
	}
	sink.Phase("transfer", int64(len(ids)), total)
	w := newPackSink(ctx, dst, jobs)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for pack, blocks := range archive.GroupByPack(all) {
		g.Go(func() error { return perPack(gctx, pack, blocks, w) })
	}
	if err := g.Wait(); err != nil {
		w.abort()
		return err
	}
	n, blocks, bytes, err := w.close(ctx)
	res.Packs, res.Blocks, res.Bytes = res.Packs+n, res.Blocks+blocks, res.Bytes+bytes
	return err
}

// blocksAtRemoteHead takes out of want, and returns, the blocks of the
// remote's head snapshot when the local store holds that snapshot (it
// pulled it, or pushed it): the remote has every block of a snapshot a
// ref names (invariant 1), so they need no lookup in its index. The next
// version of a state, pushed by a CI runner with a fresh store, then
// asks the remote's index about its new blocks only, instead of one
// ranged read per unchanged block from the remote's lookup table. Should
// the ref move before push's compare-and-swap, the push fails and its
// manifest is never named by a ref, so nothing refers to a block this
// skipped. A head the local store lacks, or cannot expand, changes nothing.
func blocksAtRemoteHead(ctx context.Context, local *archive.Repository, rhead format.ID, want map[format.ID]struct{}) map[format.ID]struct{} {
	if rhead.IsZero() || !local.HasSnapshot(ctx, rhead) {
		return nil
	}
	m, lists, err := local.LoadManifestLists(ctx, rhead)
	if err != nil {
		return nil
	}
	found := map[format.ID]struct{}{}
	lists.Each(m, func(_ *format.Entry, b format.BlockRef) {
		if _, ok := want[b.ID]; ok {
			found[b.ID] = struct{}{}
			delete(want, b.ID)
		}
	})
	return found
}

// sendWholePack copies a pack of the local store as it is when every block
// in it is wanted (a cold push): no decoding, no repacking. The pack is
// verified by hashing its bytes against its id before it is sent. It
// reports false, and sends nothing, when the pack is not wanted whole or
// the source is not local.
func sendWholePack(ctx context.Context, src, dst *archive.Repository, pack format.ID, blocks []archive.BlockAt, w *packSink) (bool, error) {
	local, ok := backend.As[backend.Local](src.Backend())
	if !ok {
		return false, nil
	}
	name := format.PackName(pack)
	info, err := local.Stat(ctx, name)
	if err != nil {
		return false, err
	}
	entries, err := src.ReadPackTrailer(ctx, pack, info.Size)
	if err != nil || len(entries) != len(blocks) {
		return false, err
	}
	f, err := local.Get(ctx, name)
	if err != nil {
		return false, err
	}
	defer f.Close()
	h := blake3.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, fmt.Errorf("read %s: %w", name, err)
	}
	if format.ID(h.Sum(nil)) != pack {
		return false, &format.IntegrityError{Object: name, Location: src.Location()}
	}
	rs, ok := f.(io.ReadSeeker)
	if !ok {
		return false, nil
	}
	if _, err := rs.Seek(0, io.SeekStart); err != nil {
		return false, err
	}
	if err := dst.Backend().Put(ctx, name, rs, info.Size); err != nil {
		return false, fmt.Errorf("write pack to %s: %w", dst.Location(), err)
	}
	return true, w.addWhole(ctx, pack, entries)
}

// packSink fills packs on dst and uploads them, jobs at a time.
type packSink struct {
	dst     *archive.Repository
	fill    sync.Mutex // guards cur; held while a full pack waits for an upload
	cur     *format.PackBuilder
	mu      sync.Mutex // guards the counts and pending
	g       *errgroup.Group
	gctx    context.Context
	packs   int
	blocks  int64
	bytes   int64
	pending []format.IndexPack
}

func newPackSink(ctx context.Context, dst *archive.Repository, jobs int) *packSink {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	return &packSink{dst: dst, g: g, gctx: gctx}
}

// add appends a block to the pack being filled. A full pack goes to
// upload with fill held: while jobs packs are in flight, the readers
// wait here instead of each filling a pack of its own, so that at most
// jobs+1 packs are in memory. Before, four readers could each hold a full
// pack while four uploaded: a push that repacked peaked at 170-190 MiB.
func (s *packSink) add(ctx context.Context, c archive.BlockAt, stored []byte) error {
	s.fill.Lock()
	defer s.fill.Unlock()
	if s.cur == nil {
		s.cur = format.NewPackBuilder(s.dst.Config().PackTarget())
	}
	s.cur.Add(c.ID, stored, int(c.Loc.Raw), c.Loc.Encoding)
	s.mu.Lock()
	s.blocks++
	s.bytes += int64(len(stored))
	s.mu.Unlock()
	if s.cur.Size() < s.dst.Config().PackTarget() {
		return nil
	}
	full := s.cur
	s.cur = nil
	return s.upload(full)
}

// upload starts writing a full pack; it blocks while jobs packs are in
// flight, which bounds memory.
func (s *packSink) upload(p *format.PackBuilder) error {
	id, data, entries := p.Finish()
	s.g.Go(func() error {
		if err := s.dst.PutPack(s.gctx, id, data); err != nil {
			return err
		}
		format.RecyclePack(data)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.packs++
		s.pending = append(s.pending, format.IndexPack{Pack: id, Entries: entries})
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

// addWhole records a pack copied whole, for the next index object.
func (s *packSink) addWhole(ctx context.Context, pack format.ID, entries []format.PackEntry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.packs++
	s.blocks += int64(len(entries))
	for _, e := range entries {
		s.bytes += int64(e.Stored)
	}
	s.pending = append(s.pending, format.IndexPack{Pack: pack, Entries: entries})
	if len(s.pending) < 8 {
		return nil
	}
	batch := s.pending
	s.pending = nil
	_, err := s.dst.PutIndex(ctx, batch)
	return err
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
