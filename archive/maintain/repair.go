package maintain

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/internal/progress"
	"github.com/statepack/statepack/remote/backend"
)

// RepairReport says what repair rebuilt and what could not be saved.
type RepairReport struct {
	PacksRead     int            `json:"packs_read"`
	PacksDamaged  []string       `json:"packs_damaged"`
	BlocksKept    int            `json:"blocks_kept"`
	BlocksLost    int            `json:"blocks_lost"`
	BlocksSalvage int            `json:"blocks_salvaged"` // moved out of damaged packs
	IndexesBefore int            `json:"indexes_replaced"`
	Snapshots     []SnapshotLoss `json:"snapshots_damaged"`
}

// SnapshotLoss names a snapshot that lost content, and which files.
type SnapshotLoss struct {
	Snapshot string   `json:"snapshot"`
	State    string   `json:"state,omitempty"`
	Error    string   `json:"error,omitempty"` // the manifest itself is unreadable
	Files    []string `json:"files,omitempty"` // files with missing blocks
}

// Repair rebuilds the index from the packs themselves: every pack is read
// whole and every block re-hashed; blocks that verify are kept (good blocks
// of a damaged pack move to a new pack), the rest are dropped. A new index
// replaces all old ones, then damaged packs and unreadable snapshots are
// deleted. It runs under the exclusive lock.
func Repair(ctx context.Context, r *archive.Repository, sink progress.Sink, lockWait time.Duration) (*RepairReport, error) {
	sink = progress.Or(sink)
	lock, err := r.Lock(ctx, true, "repair", lockWait)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	rep := &RepairReport{}
	packs := map[format.ID]int64{}
	if err := r.Backend().List(ctx, "packs/", func(oi backend.ObjectInfo) error {
		if id, err := format.ParseID(oi.Name[strings.LastIndexByte(oi.Name, '/')+1:]); err == nil {
			packs[id] = oi.Size
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list packs of %s: %w", r.Location(), err)
	}
	var oldIndexes []string
	if err := r.Backend().List(ctx, "index/", func(oi backend.ObjectInfo) error { oldIndexes = append(oldIndexes, oi.Name); return nil }); err != nil {
		return nil, err
	}
	rep.IndexesBefore = len(oldIndexes)
	sink.Phase("repair", int64(len(packs)), 0)
	newIndex, damaged, err := rescuePacks(ctx, r, packs, rep, sink)
	if err != nil {
		return nil, err
	}
	if err := replaceIndex(ctx, r, newIndex, oldIndexes); err != nil {
		return nil, err
	}
	for _, id := range damaged {
		if err := r.Backend().Delete(ctx, format.PackName(id)); err != nil {
			return nil, err
		}
	}
	return rep, checkSnapshotsAfterRepair(ctx, r, rep)
}

// rescuePacks reads every pack and returns the index of what verified and
// the packs to delete. Packs are streamed, one block at a time, so memory
// does not grow with a pack's size, which a listing of a damaged or
// hostile repository may put anywhere; good blocks of a damaged pack are
// read again and moved to salvage packs.
func rescuePacks(ctx context.Context, r *archive.Repository, packs map[format.ID]int64, rep *RepairReport, sink progress.Sink) ([]format.IndexPack, []format.ID, error) {
	var out []format.IndexPack
	var damaged []format.ID
	salvage := r.NewPackWriter(ctx, archive.PackWriterOptions{}) // good blocks of damaged packs
	defer salvage.Abort()
	for id, size := range packs {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		rep.PacksRead++
		sink.Add(1, size)
		entries, good, intact, err := scanPack(ctx, r, id, size)
		if err != nil {
			return nil, nil, err
		}
		rep.BlocksLost += len(entries) - len(good)
		if intact && len(good) == len(entries) && len(entries) > 0 {
			out = append(out, format.IndexPack{Pack: id, Entries: good})
			rep.BlocksKept += len(good)
			continue
		}
		rep.PacksDamaged = append(rep.PacksDamaged, format.PackName(id))
		damaged = append(damaged, id)
		for _, e := range good {
			stored, err := r.ReadRange(ctx, format.PackName(id), int64(e.Offset), int64(e.Stored))
			if err != nil {
				return nil, nil, err
			}
			if _, err := r.DecodeBlock(e.ID, e.At(id), stored, nil); err != nil {
				rep.BlocksLost++ // changed since the scan
				continue
			}
			if err := salvage.Add(e.ID, stored, int(e.Raw), e.Encoding); err != nil {
				return nil, nil, err
			}
			rep.BlocksSalvage++
			rep.BlocksKept++
		}
	}
	saved, err := salvage.Close(ctx)
	if err != nil {
		return nil, nil, err
	}
	return append(out, saved...), damaged, nil
}

// scanPack reads a pack's trailer, then the pack from start to end,
// hashing it and decoding each block as it comes. It returns the
// trailer's entries, those whose blocks verify, and whether the pack
// matches its id. A pack too small or too large to be one, or whose
// trailer does not parse, has no entries; only a failure to read is an
// error.
func scanPack(ctx context.Context, r *archive.Repository, id format.ID, size int64) (entries, good []format.PackEntry, intact bool, err error) {
	if size < format.PackFooterSize || size > format.MaxPackSize {
		return nil, nil, false, nil
	}
	entries, err = r.ReadPackTrailer(ctx, id, size)
	if errors.Is(err, format.ErrCorrupt) {
		return nil, nil, false, nil
	}
	if err != nil {
		return nil, nil, false, err
	}
	var raw []byte
	_, intact, err = streamPack(ctx, r, id, size, entries, func(e format.PackEntry, stored []byte) {
		var bad error
		if raw, bad = r.DecodeBlock(e.ID, e.At(id), stored, raw); bad == nil {
			good = append(good, e)
		}
	})
	if err != nil {
		return nil, nil, false, err
	}
	return entries, good, intact, nil
}

func replaceIndex(ctx context.Context, r *archive.Repository, packs []format.IndexPack, old []string) error {
	r.ResetIndex()
	keep, err := r.PutIndex(ctx, packs)
	if err != nil {
		return err
	}
	if err := r.SyncWrites(); err != nil {
		return fmt.Errorf("flush %s: %w", r.Location(), err)
	}
	for _, name := range old {
		if !slices.Contains(keep, name) {
			if err := r.Backend().Delete(ctx, name); err != nil {
				return err
			}
		}
	}
	// Lookup tables go too: those covering the deleted objects are stale
	// (readers check, but they may name the damaged packs deleted next),
	// and any that verify reported damaged are dropped here. The next
	// push from a store whose cache covers the index publishes anew.
	return r.DropLookupTables(ctx)
}

// checkSnapshotsAfterRepair reports which snapshots lost what, and deletes
// snapshots whose manifest cannot be read.
func checkSnapshotsAfterRepair(ctx context.Context, r *archive.Repository, rep *RepairReport) error {
	snaps, err := r.Snapshots(ctx)
	if err != nil {
		return err
	}
	for _, id := range snaps {
		m, lists, err := r.LoadManifestLists(ctx, id)
		if err != nil {
			rep.Snapshots = append(rep.Snapshots, SnapshotLoss{Snapshot: id.String(), Error: err.Error()})
			if err := r.Backend().Delete(ctx, format.SnapshotName(id)); err != nil {
				return err
			}
			continue
		}
		var files []string
		lists.Each(m, func(e *format.Entry, b format.BlockRef) {
			if !r.Index().Has(b.ID) && (len(files) == 0 || files[len(files)-1] != e.Path) {
				files = append(files, e.Path)
			}
		})
		if len(files) > 0 {
			rep.Snapshots = append(rep.Snapshots, SnapshotLoss{Snapshot: id.String(), State: m.State, Files: files})
		}
	}
	sort.Slice(rep.Snapshots, func(i, j int) bool { return rep.Snapshots[i].Snapshot < rep.Snapshots[j].Snapshot })
	return nil
}
