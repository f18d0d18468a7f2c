package transfer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/remote/backend"
)

// Push sends the head snapshot of a state to the remote: the blocks the
// remote lacks (copied as stored, never recompressed), in new packs, then
// an index, the manifest, and last the ref, by compare-and-swap (DESIGN.md
// invariants 1, 6 and 7). A push cut off anywhere can be run again.
func Push(ctx context.Context, local, remote *archive.Repository, o PushOptions) (*Result, error) {
	start, before := time.Now(), requests(remote)
	head, _, err := local.ReadRef(ctx, o.State)
	if err != nil {
		return nil, err
	}
	res := &Result{State: o.State, Snapshot: head}
	done := func() (*Result, error) {
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
	copied, err := archive.Copy(ctx, local, remote, head, archive.CopyOptions{Local: archive.SrcLocal, Jobs: o.Jobs, Progress: o.Progress, DstHead: rhead})
	if err != nil {
		return nil, err
	}
	res.add(copied)
	if err := remote.SetRef(ctx, o.State, head, rtag); err != nil {
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
