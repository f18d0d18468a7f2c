package transfer

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
	"github.com/statepack/statepack/remote/backend"
)

// Pull fetches the head of a state (or of the first fallback present) from
// the remote: the manifest, then the blocks the local store lacks by ranged
// reads coalesced per pack, each verified before it is stored; then the
// local index, the manifest, and last the local ref.
func Pull(ctx context.Context, local, remote *archive.Repository, o PullOptions) (*Result, error) {
	start, before := time.Now(), requests(remote)
	state, rhead, err := findState(ctx, remote, append([]string{o.State}, o.Fallbacks...))
	if err != nil {
		return nil, err
	}
	res := &Result{State: state, Snapshot: rhead}
	done := func() (*Result, error) {
		res.Requests, res.Duration = requests(remote)-before, time.Since(start)
		if res.Restore != nil {
			res.RestoreDuration = res.Duration
		}
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
	feed := &scatterFeed{local: local, id: rhead, opts: o.Restore}
	copied, err := archive.Copy(ctx, remote, local, rhead, archive.CopyOptions{Local: archive.DstLocal, Jobs: o.Jobs, Progress: o.Progress, Receive: feed.start})
	scatter := feed.result(err)
	if scatter != nil {
		// Files reach their final names only once the snapshot is
		// recorded locally (Finish, below); until then a failure undoes
		// the restore.
		defer scatter.Abort()
	}
	if err != nil {
		return nil, err
	}
	res.add(copied)
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

// PullAndRestore pulls as Pull does and restores the snapshot into
// ro.DataDir: as the blocks arrive when Pull can (an empty DATA_DIR),
// else afterwards from the local store, with the backup a restore takes
// first. A failure of that restore is a *RestoreFailedError: the state
// was pulled.
func PullAndRestore(ctx context.Context, local, remote *archive.Repository, o PullOptions, ro restorer.Options) (*Result, error) {
	o.Restore = &ro
	res, err := Pull(ctx, local, remote, o)
	if err != nil || res.Restore != nil {
		return res, err
	}
	start := time.Now()
	ro.Snapshot = res.Snapshot
	if res.Restore, err = restorer.Restore(ctx, local, ro); err != nil {
		return res, &RestoreFailedError{State: res.State, Err: err}
	}
	res.RestoreDuration = time.Since(start)
	return res, nil
}

// RestoreFailedError: PullAndRestore pulled the state, then could not
// restore it into DATA_DIR. The problem is local (DATA_DIR's), not the
// remote's.
type RestoreFailedError struct {
	State string
	Err   error
}

func (e *RestoreFailedError) Error() string { return e.Err.Error() }

// Unwrap gives the restore's error to errors.Is and errors.As.
func (e *RestoreFailedError) Unwrap() error { return e.Err }

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
	switch len(names) {
	case 1:
	case 2:
		what = fmt.Sprintf("state '%s' (nor its fallback '%s')", names[0], names[1])
	default:
		what = fmt.Sprintf("state '%s' (nor its fallbacks '%s')", names[0], strings.Join(names[1:], "', '"))
	}
	return "", format.ID{}, &archive.NotFoundError{What: what, Where: remote.Location()}
}

// scatterFeed starts a scatter restore once the snapshot's list blocks
// are in the local store (when the pull asked for a restore and the
// scatter applies) and hands it the received blocks until a write fails;
// from then on it drops them, and the pull drops the scatter.
type scatterFeed struct {
	local  *archive.Repository
	id     format.ID
	opts   *restorer.Options
	s      *restorer.ScatterRestore
	failed atomic.Bool
}

// start is archive.CopyOptions.Receive. A DATA_DIR the scatter cannot
// prepare does not fail the pull: it ends as it would without a
// restore, and the caller's restore reports the problem in its own
// words, or succeeds if it was passing.
func (f *scatterFeed) start(ctx context.Context, m *format.Manifest, lists *format.BlockLists) (func(format.ID, []byte), error) {
	if f.opts == nil || !restorer.ScatterFits(m) {
		return nil, nil
	}
	if err := lists.Expand(m); err != nil { // the scatter writes each file's blocks in order
		return nil, fmt.Errorf("block lists of state '%s': %w", m.State, err)
	}
	ro := *f.opts
	ro.Snapshot = f.id
	s, err := restorer.StartScatterRestore(ctx, f.local, f.id, m, ro)
	if err != nil || s == nil {
		return nil, nil
	}
	// Make what the pull relied on so far durable while DATA_DIR is
	// still clean: the flush before the ref then needs only what the
	// pull writes, not the DATA_DIR files a syncfs would wait for.
	if err := f.local.SettleReads(); err != nil {
		s.Abort()
		return nil, err
	}
	f.s = s
	return f.write, nil
}

func (f *scatterFeed) write(id format.ID, raw []byte) {
	if f.failed.Load() {
		return
	}
	if f.s.Write(id, raw) != nil {
		f.failed.Store(true)
	}
}

// result is the scatter to finish after the copy ended with err: none
// when the copy failed or a write did (both undo it).
func (f *scatterFeed) result(err error) *restorer.ScatterRestore {
	if f.s == nil {
		return nil
	}
	if err != nil || f.failed.Load() {
		f.s.Abort()
		return nil
	}
	return f.s
}
