package restorer

import (
	"context"
	"path"
	"slices"
	"strings"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/saver"
	"github.com/statepack/statepack/archive/scan"
	"github.com/statepack/statepack/archive/statcache"
)

// Origin is where DATA_DIR's content came from, as its stat cache
// records it: one snapshot (Snapshot), or after partial restores a base
// snapshot (zero when none is known) with some paths of other snapshots
// restored over it (Partial, oldest first).
type Origin struct {
	Snapshot  format.ID
	State     string
	Base      format.ID
	BaseState string
	Partial   []statcache.PartialRestore
}

// Whole reports whether DATA_DIR was wholly one snapshot.
func (o *Origin) Whole() bool { return !o.Snapshot.IsZero() }

// DataDirOrigin says where DATA_DIR's content came from and how it
// differs from that since: from the snapshot it was last saved as or
// restored from, or after partial restores from that base with each
// partial restore's paths taken from its snapshot (where no base is
// known, only the restored paths are compared). Only files whose stat
// changed since are read. It returns nil when statepack has no record of
// DATA_DIR. This is for status alone: save and restore trust only
// StatCache.Snapshot and each file's stat.
func DataDirOrigin(ctx context.Context, r *archive.Repository, dataDir, cacheDir string) (*Origin, []Change, error) {
	root, err := saver.CheckDataDir(dataDir)
	if err != nil {
		return nil, nil, err
	}
	cache := statcache.LoadStatCache(cacheDir, root)
	if cache == nil || cache.Snapshot.IsZero() && len(cache.Partial) == 0 {
		return nil, nil, nil
	}
	o := &Origin{Snapshot: cache.Snapshot, State: cache.State, Base: cache.Base, BaseState: cache.BaseState, Partial: cache.Partial}
	base := o.Base
	if o.Whole() {
		base = o.Snapshot
	}
	want, sources, err := expectedTree(ctx, r, base, o.Partial)
	if err != nil {
		return o, nil, err
	}
	cur, err := currentEntries(ctx, r, root, cacheDir)
	if err != nil {
		return o, nil, err
	}
	for _, src := range sources {
		adoptLists(src.m.Entries, src.lists, cur)
	}
	if base.IsZero() {
		// What lies outside the restored paths was never recorded.
		filters := make([]scan.Filter, len(o.Partial))
		for i, p := range o.Partial {
			filters[i] = scan.Filter{Include: p.Include, Exclude: p.Exclude}
		}
		want, cur = selectAny(want, filters), selectAny(cur, filters)
	}
	return o, diffTrees(want, cur), nil
}

// manifestLists is a snapshot with its block lists, not expanded.
type manifestLists struct {
	m     *format.Manifest
	lists *format.BlockLists
}

// expectedTree is what DATA_DIR holds after the partial restores, as a
// restore leaves it: base's entries (none when base is zero), then for
// each partial restore the paths its filter selects (with their parents)
// replaced by those its snapshot has. It returns the snapshots read, for
// adoptLists.
func expectedTree(ctx context.Context, r *archive.Repository, base format.ID, partial []statcache.PartialRestore) ([]format.Entry, []manifestLists, error) {
	var sources []manifestLists
	load := func(id format.ID) (*format.Manifest, error) {
		m, lists, err := r.LoadManifestLists(ctx, id)
		if err != nil {
			return nil, err
		}
		sources = append(sources, manifestLists{m, lists})
		return m, nil
	}
	if len(partial) > 0 {
		// Once, for every manifest's block lists (else each would scan
		// the index objects on its own).
		if _, err := r.LoadIndex(ctx); err != nil {
			return nil, nil, err
		}
	}
	var tree []format.Entry
	if !base.IsZero() {
		m, err := load(base)
		if err != nil {
			return nil, nil, err
		}
		tree = m.Entries
	}
	for _, p := range partial {
		m, err := load(p.Snapshot)
		if err != nil {
			return nil, nil, err
		}
		f := scan.Filter{Include: p.Include, Exclude: p.Exclude}
		tree = overlay(tree, selectEntries(m.Entries, f), f)
	}
	return tree, sources, nil
}

// overlay is tree after a restore through filter f of the entries
// restored: what f selects in tree (and the parents of that) is
// replaced by restored, kept sorted by path.
func overlay(tree, restored []format.Entry, f scan.Filter) []format.Entry {
	gone := map[string]bool{}
	for _, e := range selectEntries(tree, f) {
		gone[e.Path] = true
	}
	for _, e := range restored {
		gone[e.Path] = true
	}
	out := slices.DeleteFunc(slices.Clone(tree), func(e format.Entry) bool { return gone[e.Path] })
	out = append(out, restored...)
	slices.SortFunc(out, func(a, b format.Entry) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// selectAny keeps the entries any of filters selects, plus their
// parents.
func selectAny(entries []format.Entry, filters []scan.Filter) []format.Entry {
	need := map[string]bool{}
	for _, e := range entries {
		if slices.ContainsFunc(filters, func(f scan.Filter) bool { return f.Selected(e.Path) }) {
			need[e.Path] = true
			for d := path.Dir(e.Path); d != "."; d = path.Dir(d) {
				need[d] = true
			}
		}
	}
	return slices.DeleteFunc(slices.Clone(entries), func(e format.Entry) bool { return !need[e.Path] })
}
