package remote

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/restorer"
	"github.com/statepack/statepack/internal/progress"
	"github.com/statepack/statepack/remote/backend"
)

// Pull fetches the head of a state (or of the first fallback present) from
// the remote: the manifest, then the blocks the local store lacks by ranged
// reads coalesced per pack, each verified before it is stored; then the
// local index, the manifest, and last the local ref.
func Pull(ctx context.Context, local, remote *archive.Repository, o PullOptions) (*SyncResult, error) {
	start, before := time.Now(), requests(remote)
	state, rhead, err := findState(ctx, remote, append([]string{o.State}, o.Fallbacks...))
	if err != nil {
		return nil, err
	}
	res := &SyncResult{State: state, Snapshot: rhead}
	done := func() (*SyncResult, error) {
		res.Requests, res.Duration = requests(remote)-before, time.Since(start)
		return res, nil
	}
	lhead, ltag, err := local.ReadRef(ctx, state)
	switch {
	case err == nil && lhead == rhead && local.HasSnapshot(ctx, rhead):
		res.UpToDate = true
		return done()
	case replaceDamagedRef(err, ltag, o.Force):
		// --force over a local ref that holds no snapshot id.
	case err != nil && !errors.Is(err, backend.ErrNotFound):
		return nil, withForceHint(err, ltag)
	case err == nil && !o.Force:
		ok, err := remote.IsAncestor(ctx, lhead, rhead)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("local state '%s' is at %s, which %s does not contain (%w); push it first, or pull --force to replace it",
				state, lhead.Short(), remote.Location(), ErrNotFastForward)
		}
	case err == nil && lhead != rhead:
		// --force: say what it drops, so that it can be got back.
		if ok, aerr := remote.IsAncestor(ctx, lhead, rhead); aerr != nil || !ok {
			res.Replaced = lhead
		}
	}
	lock, err := local.Lock(ctx, false, "pull", o.LockWait)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	data, err := remote.LoadManifestBytes(ctx, rhead)
	if err != nil {
		return nil, err
	}
	m, err := format.DecodeManifest(data)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s on %s: %w", rhead.Short(), remote.Location(), err)
	}
	scatter, err := receiveBlocks(ctx, local, remote, rhead, m, o, res)
	if err != nil {
		return nil, err
	}
	if scatter != nil {
		// Files reach their final names only once the snapshot is
		// recorded locally (Finish, below); until then a failure undoes
		// the restore.
		defer scatter.Abort()
	}
	if _, err := local.PutManifestBytes(ctx, data); err != nil {
		return nil, err
	}
	if err := local.SetRef(ctx, state, rhead, ltag); err != nil {
		return nil, err
	}
	if scatter != nil {
		if res.Restore, err = scatter.Finish(ctx); err != nil {
			return nil, err
		}
	}
	return done()
}

// findState returns the first of names that exists on the remote.
func findState(ctx context.Context, remote *archive.Repository, names []string) (string, format.ID, error) {
	for _, name := range names {
		id, _, err := remote.ReadRef(ctx, name)
		if err == nil {
			return name, id, nil
		}
		if !errors.Is(err, backend.ErrNotFound) {
			return "", format.ID{}, err
		}
	}
	what := fmt.Sprintf("state '%s'", names[0])
	if len(names) > 1 {
		what = fmt.Sprintf("state '%s' (nor its fallbacks '%s')", names[0], strings.Join(names[1:], "', '"))
	}
	return "", format.ID{}, &archive.NotFoundError{What: what, Where: remote.Location()}
}

// receiveBlocks copies the blocks of m that the local store lacks: first
// the list blocks of its large files, which name the rest, then the rest.
// With o.Restore, and a DATA_DIR the scatter applies to, the second part
// also writes each block into the restored files as it arrives; the
// ScatterRestore returned must then be finished or aborted.
func receiveBlocks(ctx context.Context, local, remote *archive.Repository, id format.ID, m *format.Manifest, o PullOptions, res *SyncResult) (*restorer.ScatterRestore, error) {
	if _, err := local.LoadIndex(ctx); err != nil {
		return nil, err
	}
	if err := receive(ctx, local, remote, m.ListBlocks(), o, res, nil); err != nil {
		return nil, err
	}
	lists, err := local.ReadBlockLists(ctx, m)
	scatter := o.Restore != nil && restorer.ScatterFits(m)
	if err == nil && scatter {
		err = lists.Expand(m) // the scatter writes each file's blocks in order
	}
	if err != nil {
		return nil, fmt.Errorf("block lists of state '%s': %w", m.State, err)
	}
	// A DATA_DIR the scatter cannot prepare or write does not fail the
	// pull: the scatter is dropped (and undone), the pull ends as it would
	// without --restore, and the caller's restore reports the problem in
	// its own words, or succeeds if it was passing.
	var feed *scatterFeed
	if scatter {
		ro := *o.Restore
		ro.Snapshot = id
		if s, err := restorer.StartScatterRestore(ctx, local, id, m, ro); err == nil && s != nil {
			feed = &scatterFeed{s: s}
		}
	}
	if feed != nil {
		// Make what the pull relied on so far durable while DATA_DIR is
		// still clean: the flush before the ref then needs only what the
		// pull writes, not the DATA_DIR files a syncfs would wait for.
		if err := local.SettleReads(); err != nil {
			feed.s.Abort()
			return nil, err
		}
	}
	// Not expanded unless restoring: a manifest naming one list block
	// many times costs what the pull reads, not what it claims.
	err = receive(ctx, local, remote, lists.Distinct(m), o, res, feed)
	if feed == nil {
		return nil, err
	}
	if err != nil || feed.failed.Load() {
		feed.s.Abort()
		if err != nil {
			return nil, err
		}
		return nil, nil
	}
	return feed.s, nil
}

// scatterFeed hands received blocks to a scatter restore until a write
// fails; from then on it drops them, and receiveBlocks drops the scatter.
type scatterFeed struct {
	s      *restorer.ScatterRestore
	failed atomic.Bool
}

func (f *scatterFeed) write(id format.ID, raw []byte) {
	if f == nil || f.failed.Load() {
		return
	}
	if f.s.Write(id, raw) != nil {
		f.failed.Store(true)
	}
}

// receive copies the given blocks that the local store lacks, verified,
// handing each to scatter too when it is not nil.
func receive(ctx context.Context, local, remote *archive.Repository, blocks []format.BlockRef, o PullOptions, res *SyncResult, scatter *scatterFeed) error {
	lidx := local.Index()
	var need []format.BlockRef
	for _, b := range blocks {
		if lidx.Has(b.ID) {
			res.SkippedBlocks++
			res.SkippedBytes += int64(b.Size)
		} else {
			need = append(need, b)
		}
	}
	if len(need) == 0 {
		return nil
	}
	want := make(map[format.ID]struct{}, len(need))
	for _, b := range need {
		want[b.ID] = struct{}{}
	}
	where, err := remote.FindBlocks(ctx, want)
	if err != nil {
		return err
	}
	ids := make([]format.ID, 0, len(need))
	locs := make([]format.Location, 0, len(need))
	for _, b := range need {
		loc, ok := where[b.ID]
		if !ok || loc.Raw != b.Size {
			return fmt.Errorf("snapshot on %s is incomplete: block %s is not in its index; nothing was changed locally (run `statepack verify --remote`)", remote.Location(), b.ID.Short())
		}
		ids = append(ids, b.ID)
		locs = append(locs, loc)
	}
	return pullBlocks(ctx, remote, local, ids, locs, jobs(o.Jobs), progress.Or(o.Progress), res, scatter)
}

// pullBlocks copies blocks from the remote into the local store and
// hands each block's verified plaintext to scatter (when set) on its
// way: the one decode and hash that reading does serves both the store
// and the restore. A remote's pack is untrusted, its trailer included, so
// every block of it is decoded and verified. A pack wanted whole (a cold
// pull) is stored as it came once it, its trailer and every block in it
// check (ReadPackFrom): no copy into a new pack, and no pack buffer held
// for it; other blocks go into new local packs.
func pullBlocks(ctx context.Context, src, dst *archive.Repository, ids []format.ID, locs []format.Location, jobs int, sink progress.Sink, res *SyncResult, scatter *scatterFeed) error {
	return moveBlocks(ctx, dst, ids, locs, jobs, sink, res, func(ctx context.Context, pack format.ID, blocks []archive.BlockAt, w *packSink) error {
		return src.ReadPackFrom(ctx, pack, blocks, archive.PackReceiver{
			Block: func(c archive.BlockAt, stored, raw []byte) error {
				scatter.write(c.ID, raw)
				sink.Add(1, int64(len(stored)))
				return nil
			},
			Keep: func(data []byte, entries []format.PackEntry) error {
				if err := dst.PutPack(ctx, pack, data); err != nil {
					return err
				}
				return w.addWhole(ctx, pack, entries)
			},
			Add: func(c archive.BlockAt, stored []byte) error { return w.add(ctx, c, stored) },
		})
	})
}
