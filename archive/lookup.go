package archive

import (
	"context"
	"fmt"

	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/lookup"
)

// Finding blocks in the index, the lookup cache and lookup tables belong
// to package lookup; the repository holds a lookup.Finder and keeps
// these methods so that its callers (push, pull, block lists, verify,
// prune, repair) ask the repository, as for everything else.

// lookupReads is how the repository's Finder reads its objects: with
// the repository's bounds and checks (readVerifiedHint, readAllSized).
type lookupReads struct{ r *Repository }

// ReadVerified implements lookup.Reader.
func (l lookupReads) ReadVerified(ctx context.Context, name string, id format.ID, limit, hint int64) ([]byte, error) {
	if hint > limit { // as listed: refused before it is read
		return nil, oversized(name, l.r.Location(), limit)
	}
	return l.r.readVerifiedHint(ctx, name, id, limit, hint)
}

// ReadAtMost implements lookup.Reader.
func (l lookupReads) ReadAtMost(ctx context.Context, name string, limit, hint int64) ([]byte, error) {
	rc, err := l.r.be.Get(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("read %s from %s: %w", name, l.r.Location(), err)
	}
	defer rc.Close()
	data, err := readAllSized(rc, limit, hint)
	if err != nil {
		return nil, fmt.Errorf("read %s from %s: %w", name, l.r.Location(), err)
	}
	return data, nil
}

// UseLookupCache makes FindBlocks keep a lookup cache of this
// repository's index in dir (for a remote: its directory in the local
// store's cache). Without one, FindBlocks reads every index object on
// every call, which is what a local repository, or a remote opened
// without a cache, does.
func (r *Repository) UseLookupCache(dir string) { r.find.UseLookupCache(dir) }

// SetLookupTableMin sets the index size (in bytes, by listed sizes) from
// which FindBlocks reads, and PublishLookupTable writes, lookup tables
// on this repository; 0 restores lookup.DefaultTableMin. Tests lower it
// to exercise tables on small repositories.
func (r *Repository) SetLookupTableMin(indexBytes int64) { r.find.SetLookupTableMin(indexBytes) }

// FindBlocks looks up the given blocks in the repository's index and
// returns the location of those it holds, reading as little of the
// index as its lookup cache, or a lookup table on the repository,
// allows (lookup.Finder.FindBlocks). Memory follows the size of the
// question, not of the index.
func (r *Repository) FindBlocks(ctx context.Context, want map[format.ID]struct{}) (map[format.ID]format.Location, error) {
	return r.find.FindBlocks(ctx, want)
}

// ListIndexObjects lists index/, sorted by id; a listing cut short by
// the context is an error, never a smaller index.
func (r *Repository) ListIndexObjects(ctx context.Context) ([]lookup.IndexObject, error) {
	return r.find.ListIndexObjects(ctx)
}

// PublishLookupTable uploads this client's lookup cache of the
// repository as a lookup table on it, when that serves readers, and
// reports whether it did (lookup.Finder.PublishLookupTable). Call it
// under a lock of the repository.
func (r *Repository) PublishLookupTable(ctx context.Context) (bool, error) {
	return r.find.PublishLookupTable(ctx)
}

// ListLookupTables lists the lookup tables on the repository, largest
// first, and the ids of every filter listed.
func (r *Repository) ListLookupTables(ctx context.Context) ([]lookup.Table, []format.ID, error) {
	return r.find.ListLookupTables(ctx)
}

// OpenLookupTable reads and checks the header and tables of lookup table
// t, bounded by the listing of the index (maxObjects objects of
// listedBytes in all): what verify checks of a table.
func (r *Repository) OpenLookupTable(ctx context.Context, t lookup.Table, maxObjects int, listedBytes int64) (*lookup.File, error) {
	return r.find.OpenLookupTable(ctx, t, maxObjects, listedBytes)
}

// FetchLookupFilter reads the filter of table t, bounded by its listing
// and the index's, unchecked: CheckLookupFilter checks it.
func (r *Repository) FetchLookupFilter(ctx context.Context, t lookup.Table, listedBytes int64) ([]byte, error) {
	return r.find.FetchLookupFilter(ctx, t, listedBytes)
}

// CheckLookupFilter checks fetched filter bytes against table c.
func (r *Repository) CheckLookupFilter(data []byte, c *lookup.File) (*lookup.Filter, error) {
	return r.find.CheckLookupFilter(data, c)
}

// DropLookupTables deletes every lookup table: prune and repair call it,
// under the exclusive lock, once they have replaced index objects, since
// tables covering those are stale.
func (r *Repository) DropLookupTables(ctx context.Context) error {
	return r.find.DropLookupTables(ctx)
}
