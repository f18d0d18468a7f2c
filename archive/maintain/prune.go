package maintain

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/internal/progress"
	"github.com/statepack/statepack/remote/backend"
)

// ForgetOptions choose which versions of a state to keep.
type ForgetOptions struct {
	KeepLast   int           // keep this many newest versions (at least 1 unless All)
	KeepWithin time.Duration // also keep versions newer than this
	All        bool          // remove the state entirely
	LockWait   time.Duration
}

// ForgetResult lists what forget removed.
type ForgetResult struct {
	State   string      `json:"state"`
	Kept    []format.ID `json:"-"`
	Removed []format.ID `json:"-"`
}

// Forget removes older versions of a state. Their blocks stay until prune.
// It runs under the exclusive lock so that a concurrent push never loses
// the parent it is building on.
func Forget(ctx context.Context, r *archive.Repository, state string, o ForgetOptions) (*ForgetResult, error) {
	if !o.All && o.KeepLast < 1 && o.KeepWithin <= 0 {
		return nil, errors.New("forget needs --keep-last N (N >= 1), --keep-within DURATION or --all")
	}
	lock, err := r.Lock(ctx, true, "forget", o.LockWait)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	head, _, err := r.ReadRef(ctx, state)
	if err != nil {
		return nil, err
	}
	hist, err := r.History(ctx, head, 0)
	if err != nil {
		return nil, err
	}
	res := &ForgetResult{State: state}
	now := time.Now()
	for i, h := range hist {
		// The head is always kept unless the whole state goes: a ref must
		// never point at a forgotten snapshot.
		keep := !o.All && (i == 0 || i < o.KeepLast || o.KeepWithin > 0 && now.Sub(h.Manifest.Created) <= o.KeepWithin)
		if keep && len(res.Removed) == 0 {
			res.Kept = append(res.Kept, h.ID)
		} else {
			res.Removed = append(res.Removed, h.ID)
		}
	}
	if o.All {
		if err := r.DeleteRef(ctx, state); err != nil {
			return nil, err
		}
	}
	for _, id := range res.Removed {
		if err := r.Backend().Delete(ctx, format.SnapshotName(id)); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// PruneOptions tune prune.
type PruneOptions struct {
	// RepackBelow: packs whose live share is below this fraction are
	// rewritten with only their live blocks.
	RepackBelow float64
	Progress    progress.Sink
	LockWait    time.Duration
}

// PruneResult reports what prune reclaimed.
type PruneResult struct {
	SnapshotsRemoved int   `json:"snapshots_removed"`
	PacksRemoved     int   `json:"packs_removed"`
	PacksRepacked    int   `json:"packs_repacked"`
	PacksWritten     int   `json:"packs_written"`
	BytesFreed       int64 `json:"bytes_freed"`
	BlocksKept       int   `json:"blocks_kept"`
}

// Prune removes what no state references: snapshots unreachable from any
// ref, and blocks only they used. It holds the exclusive lock, so no save
// or push is between writing a pack and moving its ref (invariant 1). New
// packs and the new index are written before anything is deleted.
func Prune(ctx context.Context, r *archive.Repository, o PruneOptions) (*PruneResult, error) {
	if o.RepackBelow == 0 {
		o.RepackBelow = 0.5
	}
	lock, err := r.Lock(ctx, true, "prune", o.LockWait)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	if _, err := r.LoadIndex(ctx); err != nil {
		return nil, fmt.Errorf("prune needs a readable index (run `statepack verify --repair` first): %w", err)
	}
	res := &PruneResult{}
	live, err := liveBlocks(ctx, r, res)
	if err != nil {
		return nil, err
	}
	plan, err := planPrune(ctx, r, live, o.RepackBelow)
	if err != nil {
		return nil, err
	}
	return res, executePrune(ctx, r, plan, live, res, progress.Or(o.Progress))
}

// liveBlocks walks every state's history and returns the blocks it uses;
// snapshots that no state reaches are deleted.
func liveBlocks(ctx context.Context, r *archive.Repository, res *PruneResult) (map[format.ID]struct{}, error) {
	states, err := r.States(ctx)
	if err != nil {
		return nil, err
	}
	reach := map[format.ID]bool{}
	live := map[format.ID]struct{}{}
	for _, s := range states {
		head, _, err := r.ReadRef(ctx, s)
		if err != nil {
			return nil, err
		}
		hist, err := r.History(ctx, head, 0)
		if err != nil {
			return nil, fmt.Errorf("state '%s': %w", s, err)
		}
		for _, h := range hist {
			reach[h.ID] = true
			// Walked, not expanded: memory follows the live blocks.
			lists, err := r.ReadBlockLists(ctx, h.Manifest)
			if err != nil {
				return nil, fmt.Errorf("snapshot %s: %w", h.ID.Short(), err)
			}
			lists.Each(h.Manifest, func(_ *format.Entry, b format.BlockRef) { live[b.ID] = struct{}{} })
		}
	}
	snaps, err := r.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	for _, id := range snaps {
		if !reach[id] {
			if err := r.Backend().Delete(ctx, format.SnapshotName(id)); err != nil {
				return nil, err
			}
			res.SnapshotsRemoved++
		}
	}
	return live, nil
}

type prunePlan struct {
	keep    map[format.ID][]format.PackEntry // packs kept as they are, with their live entries
	repack  map[format.ID][]format.PackEntry // packs whose live entries move to new packs
	drop    []format.ID                      // packs to delete at the end
	indexes []string                         // index objects to delete at the end
	sizes   map[format.ID]int64
}

func planPrune(ctx context.Context, r *archive.Repository, live map[format.ID]struct{}, repackBelow float64) (*prunePlan, error) {
	p := &prunePlan{keep: map[format.ID][]format.PackEntry{}, repack: map[format.ID][]format.PackEntry{}, sizes: map[format.ID]int64{}}
	liveBytes := map[format.ID]int64{}
	dead := map[format.ID]int{} // entries no snapshot uses, per pack
	all := map[format.ID][]format.PackEntry{}
	_ = r.Index().Each(func(id format.ID, l format.Location) error {
		e := format.PackEntry{ID: id, Offset: l.Offset, Stored: l.Stored, Raw: l.Raw, Encoding: l.Encoding}
		if _, ok := live[id]; ok {
			all[l.Pack] = append(all[l.Pack], e)
			liveBytes[l.Pack] += int64(l.Stored)
		} else {
			dead[l.Pack]++
			if _, seen := all[l.Pack]; !seen {
				all[l.Pack] = nil
			}
		}
		return nil
	})
	err := r.Backend().List(ctx, "packs/", func(oi backend.ObjectInfo) error {
		id, err := format.ParseID(oi.Name[strings.LastIndexByte(oi.Name, '/')+1:])
		if err != nil {
			return nil
		}
		p.sizes[id] = oi.Size
		entries, indexed := all[id]
		switch {
		case !indexed || len(entries) == 0:
			p.drop = append(p.drop, id)
		case dead[id] > 0 && float64(liveBytes[id]) < repackBelow*float64(oi.Size):
			// Only a pack with blocks to drop: one whose blocks all live
			// (small ones look sparse beside their trailer entries)
			// would be rewritten as itself on every prune.
			p.repack[id] = entries
			p.drop = append(p.drop, id)
		default:
			p.keep[id] = entries
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list packs of %s: %w", r.Location(), err)
	}
	for id := range all {
		if _, ok := p.sizes[id]; !ok && len(all[id]) > 0 {
			return nil, fmt.Errorf("pack %s is indexed but missing from %s; run `statepack verify` first", id.Short(), r.Location())
		}
	}
	err = r.Backend().List(ctx, "index/", func(oi backend.ObjectInfo) error { p.indexes = append(p.indexes, oi.Name); return nil })
	return p, err
}

func executePrune(ctx context.Context, r *archive.Repository, p *prunePlan, live map[format.ID]struct{}, res *PruneResult, sink progress.Sink) error {
	var newIndex []format.IndexPack
	for id, entries := range p.keep {
		newIndex = append(newIndex, format.IndexPack{Pack: id, Entries: entries})
	}
	sink.Phase("prune", int64(len(p.repack)), 0)
	moved, err := repack(ctx, r, p.repack, sink)
	if err != nil {
		return err
	}
	res.PacksWritten = len(moved)
	res.PacksRepacked = len(p.repack)
	newIndex = append(newIndex, moved...)
	names, err := r.PutIndex(ctx, newIndex)
	if err != nil {
		return err
	}
	if err := r.SyncWrites(); err != nil {
		return fmt.Errorf("flush %s: %w", r.Location(), err)
	}
	replaced := false
	for _, name := range p.indexes {
		if !slices.Contains(names, name) {
			if err := r.Backend().Delete(ctx, name); err != nil {
				return err
			}
			replaced = true
		}
	}
	if replaced {
		// Lookup tables covering the deleted objects are stale: readers
		// would ignore them, but they could name packs deleted below.
		if err := r.DropLookupTables(ctx); err != nil {
			return err
		}
	}
	written := map[format.ID]bool{}
	for _, ip := range moved {
		written[ip.Pack] = true
	}
	for _, id := range p.drop {
		if written[id] {
			// Repacking can produce a pack identical to a dropped one (an
			// orphan from an interrupted prune): same bytes, same id. It is
			// live again and must stay.
			continue
		}
		if err := r.Backend().Delete(ctx, format.PackName(id)); err != nil {
			return err
		}
		res.PacksRemoved++
		res.BytesFreed += p.sizes[id]
	}
	for _, ip := range newIndex {
		res.BlocksKept += len(ip.Entries)
	}
	r.ResetIndex()
	if dir, ok := backend.As[backend.Local](r.Backend()); ok {
		_ = dir.RemoveTemp(time.Hour)
	}
	return nil
}

// repack copies the live blocks of the given packs into new packs, as
// stored: nothing is decompressed or recompressed, but each block is
// verified on the way.
func repack(ctx context.Context, r *archive.Repository, packs map[format.ID][]format.PackEntry, sink progress.Sink) ([]format.IndexPack, error) {
	w := r.NewPackWriter(ctx, archive.PackWriterOptions{})
	defer w.Abort()
	var raw []byte
	for pack, entries := range packs {
		for _, e := range entries {
			loc := e.At(pack)
			stored, err := r.ReadStored(ctx, loc, nil)
			if err != nil {
				return nil, err
			}
			if raw, err = r.DecodeBlock(e.ID, loc, stored, raw); err != nil {
				return nil, fmt.Errorf("repack %s: %w", format.PackName(pack), err)
			}
			if err := w.Add(e.ID, stored, int(e.Raw), e.Encoding); err != nil {
				return nil, err
			}
		}
		sink.Add(1, 0)
	}
	return w.Close(ctx)
}
