package lookup

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/remote/backend"
	"golang.org/x/sync/errgroup"
)

// Lookup tables on a repository: the lookup cache file (cache.go),
// published as an object lookup/<id> of the repository it describes, so
// that a client without a cache of its own (a fresh CI runner) answers
// FindBlocks with a few ranged reads instead of reading every index
// object. The format is the cache file's, byte for byte (doc.go), so
// publishing uploads the local file and reading goes through the same
// checks. A table is only ever an accelerator: the index objects stay
// the truth, every table is checked against their listing (it must cover
// only listed objects) and against its hashes, and a table that fails
// anything is not used: FindBlocks falls back to reading the index, so a
// damaged table never makes push skip a block (invariant 1).

const (
	// lookupTablePrefix is where tables live on a repository.
	lookupTablePrefix = "lookup/"
	// lookupTableCandidates is how many tables a reader tries, largest
	// first: normally there is one; two when publishers raced.
	lookupTableCandidates = 2
	// lookupTableListMax bounds the table names kept from a listing (a
	// remote is untrusted input).
	lookupTableListMax = 1024
	// lookupTableJobs is how many ranged reads of buckets run at once.
	lookupTableJobs = 8
	// lookupTableGap: wanted buckets closer than this are read in one
	// request, since a request costs about as much as reading this many
	// more bytes (a few milliseconds of latency at S3 bandwidths).
	lookupTableGap = 256 << 10
	// lookupTableSpan bounds one coalesced read (one bucket may exceed
	// it, up to maxLookupBucket entries), and so memory: jobs × span.
	lookupTableSpan = 4 << 20
	// DefaultTableMin is the size of a repository's index (by the
	// listed sizes of its objects) from which FindBlocks uses, and push
	// publishes, a lookup table. Below it reading the whole index costs
	// less than a table's fixed part (a 1.25 MiB fanout, two reads) plus
	// its bucket reads: at 64 MiB the index holds 1.5 million blocks.
	DefaultTableMin = 64 << 20
	// lookupDamagedMark, in the cache directory, names a table whose
	// bucket failed its check, so that the next publish replaces it (its
	// tables, which publish checks, may be intact).
	lookupDamagedMark = "lookup-damaged"
)

// TableName is the object name of the table whose tables hash (header
// bytes 48-80) is id.
func TableName(id format.ID) string { return lookupTablePrefix + id.String() }

// SetLookupTableMin sets the index size (in bytes, by listed sizes) from
// which FindBlocks reads, and PublishLookupTable writes, lookup tables
// on this repository; 0 restores DefaultTableMin. Tests lower it
// to exercise tables on small repositories.
func (f *Finder) SetLookupTableMin(indexBytes int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tableMin = indexBytes
}

// IndexBytes is the listed size of an index listing: what bounds a lookup
// table's claims (OpenLookupTable) and its filter's (FetchLookupFilter).
func IndexBytes(listed []IndexObject) int64 {
	var n int64
	for _, o := range listed {
		n += min(max(o.size, 0), format.MaxIndexObjectSize) // larger ones are refused when read
	}
	return n
}

// Table is one lookup table as listed: its tables hash (its name), its
// size and its filter's size (0: none listed), all untrusted until
// OpenLookupTable and CheckLookupFilter have checked what they read.
type Table struct {
	ID         format.ID
	Size       int64
	FilterSize int64
}

// ListLookupTables lists lookup/: the tables, largest first (the one
// covering the most, as a rule), and the ids of every filter listed,
// whether its table is or not. Other names are left alone.
func (f *Finder) ListLookupTables(ctx context.Context) ([]Table, []format.ID, error) {
	var out []Table
	filters := map[format.ID]int64{}
	err := f.be.List(ctx, lookupTablePrefix, func(oi backend.ObjectInfo) error {
		name := strings.TrimPrefix(oi.Name, lookupTablePrefix)
		if len(out)+len(filters) >= lookupTableListMax {
			return nil
		}
		if id, err := format.ParseID(strings.TrimSuffix(name, lookupFilterSuffix)); err == nil && strings.HasSuffix(name, lookupFilterSuffix) {
			filters[id] = oi.Size
		} else if id, err := format.ParseID(name); err == nil {
			out = append(out, Table{ID: id, Size: oi.Size})
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list lookup tables of %s: %w", f.be.Location(), err)
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	for i := range out {
		out[i].FilterSize = filters[out[i].ID]
	}
	slices.SortFunc(out, func(a, b Table) int {
		if a.Size != b.Size {
			return cmp.Compare(b.Size, a.Size)
		}
		return bytes.Compare(a.ID[:], b.ID[:])
	})
	ids := slices.Collect(maps.Keys(filters))
	slices.SortFunc(ids, func(a, b format.ID) int { return bytes.Compare(a[:], b[:]) })
	return out, ids, nil
}

// rangeReader reads an object by ranged GETs, one per ReadAt, except
// for what its head, read ahead, already holds.
type rangeReader struct {
	ctx  context.Context
	be   backend.Backend
	name string
	head []byte // the object's first bytes
}

// ReadAt implements io.ReaderAt.
func (t *rangeReader) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	if off < int64(len(t.head)) {
		if n = copy(p, t.head[off:]); n == len(p) {
			return n, nil
		}
	}
	rc, err := t.be.GetRange(t.ctx, t.name, off+int64(n), int64(len(p)-n))
	if err != nil {
		return n, err
	}
	defer rc.Close()
	m, err := io.ReadFull(rc, p[n:])
	return n + m, err
}

// Close implements io.Closer: nothing is held open.
func (*rangeReader) Close() error { return nil }

// tableBounds is what a lookup table on a repository may claim when
// objects index objects of listedBytes in all are listed: it covers
// only listed objects, and holds only their entries (45 bytes each in
// an index object) of their packs (36 bytes more each). Claims past
// that are refused before the tables are read (invariant 5).
func tableBounds(objects int, listedBytes int64) lookupBounds {
	return lookupBounds{objects: objects, packs: listedBytes/(32+4+format.PackEntrySize) + 1, entries: listedBytes / format.PackEntrySize}
}

// OpenLookupTable reads and verifies a table's header and tables, as
// openLookup does a cache file's, and checks that its name is its tables
// hash. A table covering more objects than maxObjects (those listed) is
// refused before its tables are read: it is stale. The tables are read
// in one request when their size, which only the header tells, is at
// most guessed from the listing (its objects and, from listedBytes, its
// packs at 256 blocks each or more); else the header's read is followed
// by one for the rest: one round trip saved, which on S3 is most of the
// cost of a small read.
func (f *Finder) OpenLookupTable(ctx context.Context, t Table, maxObjects int, listedBytes int64) (*File, error) {
	name := TableName(t.ID)
	loc := f.be.Location() + ": " + name
	packs := listedBytes/format.PackEntrySize/256 + 64
	guess := min(int64(lookupHeaderSize)+32*(int64(maxObjects)+packs)+lookupFanoutSize, t.Size, int64(maxLookupTableIDs)*32+lookupFanoutSize)
	rr := &rangeReader{ctx: ctx, be: f.be, name: name}
	if guess > 0 {
		head := make([]byte, guess)
		if _, err := rr.ReadAt(head, 0); err != nil {
			return nil, lookupDamaged(loc, "read: %v", err)
		}
		rr.head = head
	}
	c, err := readLookup(rr, t.Size, loc, repoKey(f.cfg), tableBounds(maxObjects, listedBytes))
	rr.head = nil // copied into the tables
	if err != nil {
		return nil, err
	}
	if c.id() != t.ID {
		return nil, lookupDamaged(loc, "its tables hash to %s", c.id().Short())
	}
	return c, nil
}

// id is the tables hash: a table's name on a repository.
func (c *File) id() format.ID { return format.ID(c.tables[lookupHashed:lookupHeaderSize]) }

// findInTable answers FindBlocks from a lookup table on the repository,
// for a client whose own cache cannot (absent, damaged or stale): the
// table's buckets holding wanted ids, then the listed index objects the
// table does not cover, in full (kept under dir's pending/ when dir is
// set, like the cache's). It reports false, with found untouched, when
// no table is usable: none, below the size where tables pay, stale (it
// covers an object no longer listed: prune or repair rewrote the index,
// and its entries may name deleted packs), due for a merge (it leaves
// too much uncovered: reading the index once, and publishing, is
// better), or failing a check. Only a cancelled context and errors
// reading the uncovered index objects, which reading the index would
// meet too, are errors.
func (f *Finder) findInTable(ctx context.Context, dir string, listed []IndexObject, want map[format.ID]struct{}, found map[format.ID]format.Location) (bool, error) {
	if len(listed) == 0 || IndexBytes(listed) < f.lookupTableMin() {
		return false, nil
	}
	tables, _, err := f.ListLookupTables(ctx)
	if err != nil {
		return false, ctx.Err()
	}
	for _, t := range tables[:min(len(tables), lookupTableCandidates)] {
		c, filter, err := f.openTableAndFilter(ctx, t, listed)
		if err != nil {
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			continue
		}
		uncovered, ok := c.Covers(listed)
		if !ok || shouldMerge(c.entries, uncovered) {
			continue
		}
		ask, err := f.filterWanted(ctx, dir, t, c, filter, want)
		if err != nil {
			return false, err
		}
		if err := c.findRanges(ctx, ask, found); err != nil {
			clear(found)
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			if dir != "" && errors.Is(err, errLookupDamaged) {
				markLookupDamaged(dir, t.ID)
			}
			continue
		}
		read := f.readIndexData
		if dir != "" {
			read = f.pendingReader(dir, true)
		}
		return true, f.scanForBlocks(ctx, uncovered, read, want, found, nil)
	}
	return false, nil
}

// fetchedFilter is a filter's bytes as read, or why they could not be.
type fetchedFilter struct {
	data []byte
	err  error
}

// openTableAndFilter opens table t and, at the same time, reads its
// filter when one is listed: the two largest reads of a cold lookup
// overlap.
func (f *Finder) openTableAndFilter(ctx context.Context, t Table, listed []IndexObject) (*File, *fetchedFilter, error) {
	if t.FilterSize == 0 {
		c, err := f.OpenLookupTable(ctx, t, len(listed), IndexBytes(listed))
		return c, nil, err
	}
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := make(chan *fetchedFilter, 1)
	go func() {
		data, err := f.FetchLookupFilter(fctx, t, IndexBytes(listed))
		ch <- &fetchedFilter{data, err}
	}()
	c, err := f.OpenLookupTable(ctx, t, len(listed), IndexBytes(listed))
	if err != nil {
		cancel()
		<-ch
		return nil, nil, err
	}
	return c, <-ch, nil
}

// filterWanted narrows want to the ids table c may hold, by its filter.
// Without a filter, or with one that fails its checks (noted as damage
// in dir, so that it is republished), every id is looked up in its
// bucket: slower, and as right. Only a cancelled context is an error.
func (f *Finder) filterWanted(ctx context.Context, dir string, t Table, c *File, fetched *fetchedFilter, want map[format.ID]struct{}) (map[format.ID]struct{}, error) {
	if fetched == nil {
		return want, nil
	}
	var filter *Filter
	err := fetched.err
	if err == nil {
		filter, err = f.CheckLookupFilter(fetched.data, c)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if dir != "" && errors.Is(err, errLookupDamaged) {
			markLookupDamaged(dir, t.ID)
		}
		return want, nil
	}
	ask := make(map[format.ID]struct{}, len(want)/8)
	for id := range want {
		if filter.mayHold(id) {
			ask[id] = struct{}{}
		}
	}
	return ask, nil
}

// bucketWant is one bucket to read and the wanted ids that fall in it.
type bucketWant struct {
	b   int
	ids []format.ID
}

// lookupSpan is one ranged read: the bytes [off, end) of the file, which
// hold whole buckets.
type lookupSpan struct {
	off, end int64
	buckets  []bucketWant
}

// findRanges is find for a table read by ranged requests: the buckets
// holding wanted ids are coalesced into spans (neighbours closer than
// lookupTableGap, up to lookupTableSpan) and read lookupTableJobs at a
// time, each bucket checked against its fanout sum before it is
// searched. Memory is the spans in flight, not the table.
func (c *File) findRanges(ctx context.Context, want map[format.ID]struct{}, found map[format.ID]format.Location) error {
	ids := make([]format.ID, 0, len(want))
	for id := range want {
		if _, ok := found[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b format.ID) int { return bytes.Compare(a[:], b[:]) })
	base := int64(len(c.tables))
	var spans []lookupSpan
	for i := 0; i < len(ids); {
		b := lookupBucketOf(ids[i])
		j := i + 1
		for j < len(ids) && lookupBucketOf(ids[j]) == b {
			j++
		}
		start, end := c.bucketEnd(b-1), c.bucketEnd(b)
		if start == end {
			i = j // an empty bucket: none of these ids is there
			continue
		}
		off, stop := base+int64(start)*lookupEntrySize, base+int64(end)*lookupEntrySize
		if n := len(spans); n > 0 && off-spans[n-1].end <= lookupTableGap && stop-spans[n-1].off <= lookupTableSpan {
			spans[n-1].end = stop
			spans[n-1].buckets = append(spans[n-1].buckets, bucketWant{b, ids[i:j]})
		} else {
			spans = append(spans, lookupSpan{off: off, end: stop, buckets: []bucketWant{{b, ids[i:j]}}})
		}
		i = j
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(lookupTableJobs)
	for _, sp := range spans {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			buf := make([]byte, sp.end-sp.off)
			if _, err := c.f.ReadAt(buf, sp.off); err != nil {
				return fmt.Errorf("lookup table %s: read %d bytes at %d: %w", c.path, len(buf), sp.off, err)
			}
			var hits []objectHit
			for _, bw := range sp.buckets {
				from := base + int64(c.bucketEnd(bw.b-1))*lookupEntrySize - sp.off
				to := base + int64(c.bucketEnd(bw.b))*lookupEntrySize - sp.off
				data := buf[from:to]
				if sum := lookupBucketSum(bw.b, data); !bytes.Equal(sum[:], c.fanout(bw.b)[4:]) {
					return lookupDamaged(c.path, "bucket %04x does not match its hash", bw.b)
				}
				for _, id := range bw.ids {
					loc, ok, err := c.search(data, id)
					if err != nil {
						return err
					}
					if ok {
						hits = append(hits, objectHit{id, loc})
					}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for _, h := range hits {
				found[h.id] = h.loc
			}
			return nil
		})
	}
	return g.Wait()
}

// markLookupDamaged notes, in the cache directory, that table id failed
// a bucket check. Failing to note it only delays its replacement.
func markLookupDamaged(dir string, id format.ID) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return
	}
	_ = os.WriteFile(filepath.Join(dir, lookupDamagedMark), []byte(id.String()+"\n"), 0o644)
}

// markedDamaged reports whether the cache directory notes table id as
// damaged.
func markedDamaged(dir string, id format.ID) bool {
	data, err := os.ReadFile(filepath.Join(dir, lookupDamagedMark))
	return err == nil && strings.TrimSpace(string(data)) == id.String()
}

// PublishLookupTable uploads this client's lookup cache of the
// repository as a table on it (lookup/<tables hash>), so that clients
// without a cache find blocks with a few ranged reads, and deletes the
// tables it replaces. It publishes only what serves: a cache that covers
// only listed index objects and leaves too little uncovered to be due
// for a merge, on an index past SetLookupTableMin, and only when no
// table on the repository serves already (none, stale, damaged, or due
// for a merge itself). So a table is rewritten about as often as a
// client's cache is merged, not on every push. It reports whether it
// published.
//
// Call it under a lock of the repository (push holds a shared one):
// prune and repair, which rewrite the index and delete stale tables,
// take the exclusive lock, so the cache checked here stays valid until
// the upload is done. A table is written whole or not at all (Put is
// atomic). A reader that opened a table this deletes loses its ranged
// reads (not found) and falls back to reading the index: slower, never
// wrong. Two clients publishing at once each delete only the tables they
// listed before their upload, so at least one new table survives.
func (f *Finder) PublishLookupTable(ctx context.Context) (bool, error) {
	dir := f.lookupCacheDir()
	if dir == "" {
		return false, nil
	}
	c, err := openLookup(filepath.Join(dir, lookupName), repoKey(f.cfg))
	if err != nil {
		// No cache (a cold client: nothing to publish, and no request
		// made), or a damaged one, rebuilt by the next FindBlocks.
		return false, nil
	}
	defer c.Close()
	listed, err := f.ListIndexObjects(ctx)
	if err != nil {
		return false, err
	}
	if len(listed) == 0 || IndexBytes(listed) < f.lookupTableMin() {
		return false, nil
	}
	uncovered, ok := c.Covers(listed)
	if !ok || shouldMerge(c.entries, uncovered) {
		return false, nil
	}
	tables, filters, err := f.ListLookupTables(ctx)
	if err != nil {
		return false, err
	}
	damaged := false
	for _, t := range tables[:min(len(tables), lookupTableCandidates)] {
		if markedDamaged(dir, t.ID) {
			damaged = true
			continue
		}
		if f.tableServes(ctx, t, listed) {
			return false, nil
		}
		if err := ctx.Err(); err != nil {
			return false, err
		}
	}
	// The filter first: a reader that lists the table finds its filter.
	id := c.id()
	filter, err := buildLookupFilter(c)
	if err != nil {
		return false, nil // the cache is damaged: the next FindBlocks rebuilds it
	}
	if err := f.be.Put(ctx, FilterName(id), bytes.NewReader(filter), int64(len(filter))); err != nil {
		return false, fmt.Errorf("publish lookup filter to %s: %w", f.be.Location(), err)
	}
	if err := f.be.Put(ctx, TableName(id), io.NewSectionReader(c.f, 0, c.size), c.size); err != nil {
		return false, fmt.Errorf("publish lookup table to %s: %w", f.be.Location(), err)
	}
	if damaged {
		_ = os.Remove(filepath.Join(dir, lookupDamagedMark))
	}
	// Tables before filters, so that no reader finds a table whose
	// filter it cannot read (it would do without, but slower).
	var names []string
	for _, t := range tables {
		if t.ID != id { // the same id was rewritten in place
			names = append(names, TableName(t.ID))
		}
	}
	for _, fid := range filters {
		if fid != id {
			names = append(names, FilterName(fid))
		}
	}
	for _, name := range names {
		if err := f.be.Delete(ctx, name); err != nil {
			return true, fmt.Errorf("delete replaced lookup table from %s: %w", f.be.Location(), err)
		}
	}
	return true, nil
}

// tableServes reports whether readers would use table t with this
// listing: it has a filter, its header and tables verify and it is
// neither stale nor due for a merge. (Damage to its buckets or filter
// shows only to a reader, which marks it.)
func (f *Finder) tableServes(ctx context.Context, t Table, listed []IndexObject) bool {
	if t.FilterSize == 0 {
		return false
	}
	c, err := f.OpenLookupTable(ctx, t, len(listed), IndexBytes(listed))
	if err != nil {
		return false
	}
	uncovered, ok := c.Covers(listed)
	return ok && !shouldMerge(c.entries, uncovered)
}

// DropLookupTables deletes every lookup table: prune and repair call it,
// under the exclusive lock, once they have replaced index objects, since
// tables covering those are stale. Readers would find that out from the
// listing anyway; deleting them frees the space and the reads.
func (f *Finder) DropLookupTables(ctx context.Context) error {
	var names []string
	if err := f.be.List(ctx, lookupTablePrefix, func(oi backend.ObjectInfo) error { names = append(names, oi.Name); return nil }); err != nil {
		return fmt.Errorf("list lookup tables of %s: %w", f.be.Location(), err)
	}
	for _, name := range names {
		if err := f.be.Delete(ctx, name); err != nil {
			return fmt.Errorf("delete stale lookup table from %s: %w", f.be.Location(), err)
		}
	}
	return nil
}
