package restorer

import (
	"context"
	"slices"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/saver"
	"github.com/statepack/statepack/archive/scan"
	"github.com/statepack/statepack/archive/statcache"
)

// ChangeKind classifies one path of a diff.
type ChangeKind string

// Kinds of change, as printed and in JSON.
const (
	Added    ChangeKind = "added"
	Removed  ChangeKind = "removed"
	Modified ChangeKind = "modified"
)

// Change is one path that differs between two trees.
type Change struct {
	Path    string     `json:"path"`
	Kind    ChangeKind `json:"kind"`
	Type    string     `json:"type"`
	OldSize int64      `json:"old_size"`
	NewSize int64      `json:"new_size"`
	What    []string   `json:"what,omitempty"` // for modified: content, type, mode, owner, mtime, target
}

// diffTrees compares two sorted entry lists.
func diffTrees(a, b []format.Entry) []Change {
	var out []Change
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || i < len(a) && a[i].Path < b[j].Path:
			out = append(out, Change{Path: a[i].Path, Kind: Removed, Type: a[i].Type.String(), OldSize: a[i].Size})
			i++
		case i == len(a) || b[j].Path < a[i].Path:
			out = append(out, Change{Path: b[j].Path, Kind: Added, Type: b[j].Type.String(), NewSize: b[j].Size})
			j++
		default:
			if what := entryDiff(&a[i], &b[j]); len(what) > 0 {
				out = append(out, Change{Path: a[i].Path, Kind: Modified, Type: b[j].Type.String(), OldSize: a[i].Size, NewSize: b[j].Size, What: what})
			}
			i++
			j++
		}
	}
	return out
}

func entryDiff(a, b *format.Entry) []string {
	var what []string
	if a.Type != b.Type {
		return []string{"type"}
	}
	if a.Size != b.Size || !sameBlocks(a, b) {
		what = append(what, "content")
	}
	if a.Target != b.Target {
		what = append(what, "target")
	}
	if a.Mode != b.Mode {
		what = append(what, "mode")
	}
	if a.UID != b.UID || a.GID != b.GID {
		what = append(what, "owner")
	}
	if a.MTime != b.MTime && a.Type != format.TypeDir {
		what = append(what, "mtime")
	}
	return what
}

// sameBlocks reports whether two entries have the same blocks. One whose
// blocks are in list blocks not expanded (restore's snapshot) compares
// its list blocks, which name the same blocks when they are the same.
func sameBlocks(a, b *format.Entry) bool {
	if len(a.Lists) > 0 && len(b.Lists) > 0 && (len(a.Blocks) == 0 || len(b.Blocks) == 0) {
		return slices.Equal(a.Lists, b.Lists)
	}
	return slices.Equal(a.Blocks, b.Blocks)
}

// Diff compares two snapshots.
func Diff(ctx context.Context, r *archive.Repository, from, to format.ID) ([]Change, error) {
	// Once, for both manifests' block lists (else each would scan the
	// index objects on its own).
	if _, err := r.LoadIndex(ctx); err != nil {
		return nil, err
	}
	// The lists are walked, never expanded (adoptLists): a snapshot
	// naming one list block a million times costs what it reads.
	a, la, err := r.LoadManifestLists(ctx, from)
	if err != nil {
		return nil, err
	}
	b, lb, err := r.LoadManifestLists(ctx, to)
	if err != nil {
		return nil, err
	}
	adoptLists(a.Entries, la, b.Entries)
	adoptLists(b.Entries, lb, a.Entries)
	return diffTrees(a.Entries, b.Entries), nil
}

// DiffDataDir compares a snapshot with the directory on disk. Files the
// stat cache cannot vouch for are read and chunked to compare content.
func DiffDataDir(ctx context.Context, r *archive.Repository, snap format.ID, dataDir, cacheDir string) ([]Change, error) {
	m, lists, err := r.LoadManifestLists(ctx, snap)
	if err != nil {
		return nil, err
	}
	root, err := saver.CheckDataDir(dataDir)
	if err != nil {
		return nil, err
	}
	cur, err := currentEntries(ctx, r, root, cacheDir)
	if err != nil {
		return nil, err
	}
	adoptLists(m.Entries, lists, cur)
	return diffTrees(m.Entries, cur), nil
}

// currentEntries describes DATA_DIR as a manifest would, hashing only the
// files whose stat changed since the stat cache recorded them.
func currentEntries(ctx context.Context, r *archive.Repository, root, cacheDir string) ([]format.Entry, error) {
	found, err := scan.ScanTree(root, scan.Filter{}, func(string) {})
	if err != nil {
		return nil, err
	}
	cache := statcache.LoadStatCache(cacheDir, root)
	var sp *saver.Splitters // made on the first file to hash, reused for the rest
	for i := range found {
		e := &found[i]
		if e.Type != format.TypeFile {
			continue
		}
		if ce, ok := cache.Fresh(e.Path, e.Stat); ok {
			e.Blocks = ce.Blocks
			continue
		}
		if sp == nil {
			if sp, err = saver.NewSplitters(r.Config().Chunker); err != nil {
				return nil, err
			}
		}
		blocks, err := hashFile(ctx, r, root, e.Path, sp)
		if err != nil {
			return nil, err
		}
		e.Blocks = blocks
	}
	out := make([]format.Entry, len(found))
	for i := range found {
		out[i] = found[i].Entry
	}
	return out, nil
}

// DataDirChanges summarises how DATA_DIR differs from the snapshot it was
// last saved as or restored from. Only files whose stat changed since are
// read, so status stays cheap when little changed.
func DataDirChanges(ctx context.Context, r *archive.Repository, dataDir, cacheDir string) (origin format.ID, state string, changes []Change, err error) {
	root, err := saver.CheckDataDir(dataDir)
	if err != nil {
		return format.ID{}, "", nil, err
	}
	cache := statcache.LoadStatCache(cacheDir, root)
	if cache == nil || cache.Snapshot.IsZero() {
		return format.ID{}, "", nil, nil
	}
	m, lists, err := r.LoadManifestLists(ctx, cache.Snapshot)
	if err != nil {
		return cache.Snapshot, cache.State, nil, err
	}
	cur, err := currentEntries(ctx, r, root, cacheDir)
	if err != nil {
		return cache.Snapshot, cache.State, nil, err
	}
	adoptLists(m.Entries, lists, cur)
	return cache.Snapshot, cache.State, diffTrees(m.Entries, cur), nil
}

// CountChanges returns how many paths were added, removed and modified.
func CountChanges(cs []Change) (added, removed, modified int) {
	for _, c := range cs {
		switch c.Kind {
		case Added:
			added++
		case Removed:
			removed++
		default:
			modified++
		}
	}
	return
}
