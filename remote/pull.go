package remote

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/internal/progress"
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
	case err != nil && !errors.Is(err, archive.ErrNotFound):
		return nil, err
	case err == nil && !o.Force:
		ok, err := remote.IsAncestor(ctx, lhead, rhead)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("local state '%s' is at %s, which %s does not contain (%w); push it first, or pull --force to replace it",
				state, lhead.Short(), remote.Location(), ErrNotFastForward)
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
	m, err := archive.DecodeManifest(data)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s on %s: %w", rhead.Short(), remote.Location(), err)
	}
	if err := receiveBlocks(ctx, local, remote, m, o, res); err != nil {
		return nil, err
	}
	if _, err := local.PutManifestBytes(ctx, data); err != nil {
		return nil, err
	}
	if err := local.SetRef(ctx, state, rhead, ltag); err != nil {
		return nil, err
	}
	return done()
}

// findState returns the first of names that exists on the remote.
func findState(ctx context.Context, remote *archive.Repository, names []string) (string, archive.ID, error) {
	for _, name := range names {
		id, _, err := remote.ReadRef(ctx, name)
		if err == nil {
			return name, id, nil
		}
		if !errors.Is(err, archive.ErrNotFound) {
			return "", archive.ID{}, err
		}
	}
	what := fmt.Sprintf("state '%s'", names[0])
	if len(names) > 1 {
		what = fmt.Sprintf("state '%s' (nor its fallbacks '%s')", names[0], strings.Join(names[1:], "', '"))
	}
	return "", archive.ID{}, &archive.NotFoundError{What: what, Where: remote.Location()}
}

// receiveBlocks copies the blocks of m that the local store lacks: first
// the list blocks of its large files, which name the rest, then the rest.
func receiveBlocks(ctx context.Context, local, remote *archive.Repository, m *archive.Manifest, o PullOptions, res *SyncResult) error {
	if _, err := local.LoadIndex(ctx); err != nil {
		return err
	}
	if err := receive(ctx, local, remote, m.ListBlocks(), o, res); err != nil {
		return err
	}
	if err := local.ExpandLists(ctx, m); err != nil {
		return fmt.Errorf("block lists of state '%s': %w", m.State, err)
	}
	blocks, _ := blockSet(m, false)
	return receive(ctx, local, remote, blocks, o, res)
}

// receive copies the given blocks that the local store lacks, verified.
func receive(ctx context.Context, local, remote *archive.Repository, blocks []archive.BlockRef, o PullOptions, res *SyncResult) error {
	lidx := local.Index()
	var need []archive.BlockRef
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
	want := make(map[archive.ID]struct{}, len(need))
	for _, b := range need {
		want[b.ID] = struct{}{}
	}
	where, err := remote.FindBlocks(ctx, want)
	if err != nil {
		return err
	}
	ids := make([]archive.ID, 0, len(need))
	locs := make([]archive.Location, 0, len(need))
	for _, b := range need {
		loc, ok := where[b.ID]
		if !ok || loc.Raw != b.Size {
			return fmt.Errorf("snapshot on %s is incomplete: block %s is not in its index; nothing was changed locally (run `statepack verify --remote`)", remote.Location(), b.ID.Short())
		}
		ids = append(ids, b.ID)
		locs = append(locs, loc)
	}
	return copyBlocks(ctx, remote, local, ids, locs, false, jobs(o.Jobs), progress.Or(o.Progress), res)
}
