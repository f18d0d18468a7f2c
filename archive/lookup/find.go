package lookup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/remote/backend"
)

// indexReadJobs is how many index objects FindBlocks reads at once.
const indexReadJobs = 4

// Finder answers which blocks one repository holds, and where, from its
// index objects, a local lookup cache of them, or a lookup table
// published on the repository. archive.Repository holds one and hands
// its FindBlocks and lookup-table methods to it.
type Finder struct {
	be   backend.Backend
	cfg  format.Config
	read Reader

	mu        sync.Mutex // guards lookupDir and tableMin
	lookupDir string     // where FindBlocks keeps its lookup cache; "" for none
	tableMin  int64      // index size from which lookup tables are used; 0: the default
}

// Reader reads whole objects of the repository a Finder looks in. The
// repository provides it, so that objects are read with its bounds and
// checks, in one place, while the Finder lists, range-reads, writes and
// deletes through the backend itself.
type Reader interface {
	// ReadVerified reads object name, at most limit bytes, and checks
	// that it hashes to id (invariant 2). hint is its size as a listing
	// gave it (-1 for none): it presizes the buffer, and a hint over
	// limit refuses the object before it is read (invariant 5).
	ReadVerified(ctx context.Context, name string, id format.ID, limit, hint int64) ([]byte, error)
	// ReadAtMost reads object name, unverified (it carries its own
	// hash), and returns at most limit+1 of its bytes, so that the
	// caller tells an object over limit from one of limit bytes. hint
	// is as for ReadVerified, but only presizes.
	ReadAtMost(ctx context.Context, name string, limit, hint int64) ([]byte, error)
}

// NewFinder returns a Finder of the blocks of the repository with config
// cfg on be, reading its index objects through read. It keeps no cache
// until UseLookupCache gives it a directory.
func NewFinder(be backend.Backend, cfg format.Config, read Reader) *Finder {
	return &Finder{be: be, cfg: cfg, read: read}
}

// IndexObject is one object of a listing of index/.
type IndexObject struct {
	ID   format.ID
	size int64 // as listed; only an estimate of its entries
}

// UseLookupCache makes FindBlocks keep a lookup cache of this
// repository's index in dir (for a remote: its directory in the local
// store's cache). Without one, FindBlocks reads every index object on
// every call, which is what a local repository, or a remote opened
// without a cache, does.
func (f *Finder) UseLookupCache(dir string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookupDir = dir
}

// settings returns the cache directory ("" for none) and the index size
// from which lookup tables are used, as set now.
func (f *Finder) settings() (dir string, tableMin int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if tableMin = f.tableMin; tableMin == 0 {
		tableMin = DefaultTableMin
	}
	return f.lookupDir, tableMin
}

func (f *Finder) lookupCacheDir() string { dir, _ := f.settings(); return dir }

func (f *Finder) lookupTableMin() int64 { _, m := f.settings(); return m }

// KeepIndexCopy keeps a verified copy of index object id, which the
// repository has just written, in the lookup cache directory (when there
// is one): the next FindBlocks lists it as an object its cache does not
// cover, and need not fetch back what was just written.
func (f *Finder) KeepIndexCopy(id format.ID, data []byte) {
	if dir := f.lookupCacheDir(); dir != "" {
		writePendingCopy(dir, id, data)
	}
}

// FindBlocks looks up the given blocks in the repository's index and
// returns the location of those it holds. Memory follows the size of the
// question, not of the repository's index, which is how a small push to
// a remote with millions of blocks stays small.
//
// Without a lookup cache, it reads every index object, a few at a time,
// and keeps only the entries asked for. With one, it lists the index,
// answers from the cache for the objects the cache covers, reads only
// the others, and builds, merges or rebuilds the cache as the listing
// requires. When there is no usable cache, a lookup table published on
// the repository (table.go) that passes every check answers
// instead, with ranged reads of its buckets, and no cache is built.
// Either way, of several locations of one block, the one from the first
// index object in name order (the cache's or table's own objects first)
// is returned.
func (f *Finder) FindBlocks(ctx context.Context, want map[format.ID]struct{}) (map[format.ID]format.Location, error) {
	found := make(map[format.ID]format.Location, len(want))
	if len(want) == 0 {
		return found, nil
	}
	listed, err := f.ListIndexObjects(ctx)
	if err != nil {
		return nil, err
	}
	if dir := f.lookupCacheDir(); dir != "" {
		err = f.findCached(ctx, dir, listed, want, found)
	} else if ok, terr := f.findInTable(ctx, "", listed, want, found); ok || terr != nil {
		err = terr
	} else {
		err = f.scanForBlocks(ctx, listed, f.readIndexData, want, found, nil)
	}
	if err != nil {
		return nil, err
	}
	return found, nil
}

// ListIndexObjects lists index/, sorted by id. A listing cut short by
// the context must not pass for the whole index: a block missed there
// is a block push believes absent (harmless) but also one a cache would
// be built without.
func (f *Finder) ListIndexObjects(ctx context.Context) ([]IndexObject, error) {
	var names []backend.ObjectInfo
	if err := f.be.List(ctx, "index/", func(oi backend.ObjectInfo) error { names = append(names, oi); return nil }); err != nil {
		return nil, fmt.Errorf("list index of %s: %w", f.be.Location(), err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	listed := make([]IndexObject, 0, len(names))
	for _, oi := range names {
		id, err := format.ParseID(strings.TrimPrefix(oi.Name, "index/"))
		if err != nil {
			return nil, fmt.Errorf("%s: unexpected object %s", f.be.Location(), oi.Name)
		}
		listed = append(listed, IndexObject{ID: id, size: oi.Size})
	}
	slices.SortFunc(listed, func(a, b IndexObject) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	return slices.CompactFunc(listed, func(a, b IndexObject) bool { return a.ID == b.ID }), nil
}

// indexReader reads one listed index object, verified against its id.
type indexReader func(ctx context.Context, o IndexObject) ([]byte, error)

// readIndexData reads a listed index object from the repository.
func (f *Finder) readIndexData(ctx context.Context, o IndexObject) ([]byte, error) {
	return f.read.ReadVerified(ctx, format.IndexName(o.ID), o.ID, format.MaxIndexObjectSize, o.size)
}

// pendingReader reads index objects for the lookup cache in dir: from
// the verified copy it keeps of an object it has not merged yet, else
// from the repository, keeping a copy when keep is set (for objects read
// on every call until they are merged).
func (f *Finder) pendingReader(dir string, keep bool) indexReader {
	return func(ctx context.Context, o IndexObject) ([]byte, error) {
		if data, ok := readPendingCopy(dir, o.ID); ok {
			return data, nil
		}
		data, err := f.readIndexData(ctx, o)
		if err == nil && keep {
			writePendingCopy(dir, o.ID, data)
		}
		return data, err
	}
}

// eachIndexObject reads the given index objects, indexReadJobs at a
// time, each verified against its id and passed to work in the
// goroutine that read it; then it hands the results to use one at a time
// in the order given: "the first location seen" then means the same in
// every run, and a cache built from them numbers its packs in that
// order. At most indexReadJobs+1 objects are held at once.
func eachIndexObject[T any](ctx context.Context, objs []IndexObject, read indexReader, work func(id format.ID, data []byte) (T, error), use func(T) error) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	type result struct {
		v   T
		err error
	}
	queue := make(chan chan result, indexReadJobs)
	wg.Go(func() {
		defer close(queue)
		for _, o := range objs {
			ch := make(chan result, 1)
			select {
			case queue <- ch:
			case <-ctx.Done():
				return
			}
			wg.Go(func() {
				var res result
				data, err := read(ctx, o)
				if err == nil {
					res.v, err = work(o.ID, data)
				}
				res.err = err
				ch <- res
			})
		}
	})
	done := 0
	for ch := range queue {
		res := <-ch
		if res.err != nil {
			return res.err
		}
		if err := use(res.v); err != nil {
			return err
		}
		done++
	}
	if done < len(objs) {
		return ctx.Err()
	}
	return nil
}

// objectScan is what one index object contributes: the wanted entries
// in it, in its order, and when a cache is being built, its records.
type objectScan struct {
	hits []objectHit
	recs *objectRecords
}

type objectHit struct {
	id  format.ID
	loc format.Location
}

// scanForBlocks reads the given index objects and adds to found the
// wanted blocks it lacks, and feeds every object to b when b is not nil.
// An entry asked for that fails the index's checks is an error naming
// its object, as is a malformed object.
func (f *Finder) scanForBlocks(ctx context.Context, objs []IndexObject, read indexReader, want map[format.ID]struct{}, found map[format.ID]format.Location, b *lookupBuilder) error {
	work := func(id format.ID, data []byte) (objectScan, error) {
		var s objectScan
		var counts [256]int
		err := format.ScanIndex(data, func(pack format.ID, raw []byte) error {
			if b != nil && validIndexEntry(raw) {
				counts[raw[0]]++
			}
			if _, ok := want[format.ID(raw[:32])]; !ok {
				return nil
			}
			var e format.PackEntry
			if err := format.DecodeEntry(&e, raw); err != nil {
				return err
			}
			s.hits = append(s.hits, objectHit{e.ID, e.At(pack)})
			return nil
		})
		if err != nil {
			return s, fmt.Errorf("%s: index %s: %w", f.be.Location(), id.Short(), err)
		}
		if b != nil {
			s.recs = b.records()
			s.recs.fill(data, &counts)
		}
		return s, nil
	}
	use := func(s objectScan) error {
		for _, h := range s.hits {
			if _, dup := found[h.id]; !dup {
				found[h.id] = h.loc
			}
		}
		if s.recs != nil {
			b.addObject(s.recs)
		}
		return nil
	}
	return eachIndexObject(ctx, objs, read, work, use)
}

// findCached answers from the lookup cache in dir. A cache that is
// missing, damaged, made for another repository or covering an object
// that is no longer listed (the index was rewritten) is rebuilt from all
// listed objects; one that covers part of the listing answers for that
// part, and the rest is read, and merged into a new cache when it has
// grown large.
func (f *Finder) findCached(ctx context.Context, dir string, listed []IndexObject, want map[format.ID]struct{}, found map[format.ID]format.Location) error {
	path := filepath.Join(dir, lookupName)
	c, err := openLookup(path, repoKey(f.cfg))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			_ = os.Remove(path) // damaged: never trusted, rebuilt now
		}
		return f.findColdCached(ctx, dir, listed, want, found)
	}
	uncovered, ok := c.Covers(listed)
	if !ok {
		// Stale: the index was rewritten. Removed now, since a table
		// may answer instead of a rebuild that would replace it.
		c.Close()
		_ = os.Remove(path)
		return f.findColdCached(ctx, dir, listed, want, found)
	}
	if err := c.find(want, found); err != nil {
		c.Close()
		clear(found)
		_ = os.Remove(path)
		return f.findColdCached(ctx, dir, listed, want, found)
	}
	defer c.Close()
	switch {
	case len(uncovered) == 0:
		return nil
	case shouldMerge(c.entries, uncovered):
		return f.buildLookup(ctx, dir, uncovered, want, found, c)
	default:
		return f.scanForBlocks(ctx, uncovered, f.pendingReader(dir, true), want, found, nil)
	}
}

// findColdCached answers when the cache in dir cannot: from a lookup
// table on the repository when one serves, which leaves the cache
// unbuilt (building it reads the whole index, which the table is there
// to spare a cold client; a client with a cache, or one that finds no
// table that serves, builds and publishes it), else by building the
// cache from every listed object.
func (f *Finder) findColdCached(ctx context.Context, dir string, listed []IndexObject, want map[format.ID]struct{}, found map[format.ID]format.Location) error {
	if ok, err := f.findInTable(ctx, dir, listed, want, found); ok || err != nil {
		return err
	}
	return f.buildLookup(ctx, dir, listed, want, found, nil)
}

// shouldMerge: the objects a cache of entries entries does not cover
// are read on every call, so they are merged in once they are many, or
// hold (by their listed sizes) more than a million entries or an eighth
// of the cache's. A lookup table on the repository that should be merged
// is not used, and is replaced when push publishes (table.go).
func shouldMerge(cacheEntries int, uncovered []IndexObject) bool {
	if len(uncovered) > mergeMaxObjects {
		return true
	}
	var size int64
	for _, o := range uncovered {
		size += max(o.size, 0)
	}
	entries := size / format.PackEntrySize
	return entries > mergeMinEntries || entries > int64(cacheEntries/8)
}

// buildLookup reads objs, answering for want as it goes, and writes a
// cache of them (on top of base's, when merging). The answers do not
// depend on the cache being written: a cache that cannot be (a full
// disk, an index beyond the bounds) is left out, and only a cancelled
// context fails the call.
func (f *Finder) buildLookup(ctx context.Context, dir string, objs []IndexObject, want map[format.ID]struct{}, found map[format.ID]format.Location, base *File) error {
	path := filepath.Join(dir, lookupName)
	if len(objs) == 0 && base == nil {
		_ = os.Remove(path) // a cache of an index that is no longer there
		return nil
	}
	b := newLookupBuilder(dir, base)
	if err := f.scanForBlocks(ctx, objs, f.pendingReader(dir, false), want, found, b); err != nil {
		b.cleanup()
		return err
	}
	err := b.finish(ctx.Err, coveredAfter(base, objs), repoKey(f.cfg), path)
	switch {
	case err == nil:
		// Every listed object is covered now: the copies of those that
		// were not are done with (and any of objects since deleted).
		_ = os.RemoveAll(pendingDir(dir))
	case ctx.Err() != nil:
		return ctx.Err()
	case base != nil && errors.Is(err, errLookupDamaged):
		_ = os.Remove(path) // damage found while merging: rebuilt next time
	}
	return nil
}

// coveredAfter is the sorted set of objects a cache covers once objs
// (sorted, none covered yet) are added to base's.
func coveredAfter(base *File, objs []IndexObject) []format.ID {
	n := len(objs)
	if base != nil {
		n += base.objects
	}
	ids := make([]format.ID, 0, n)
	for _, o := range objs {
		ids = append(ids, o.ID)
	}
	if base != nil {
		for i := range base.objects {
			ids = append(ids, base.object(i))
		}
		slices.SortFunc(ids, func(a, b format.ID) int { return bytes.Compare(a[:], b[:]) })
	}
	return ids
}
