package lookup

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/chunker"
	"github.com/statepack/statepack/remote/backend"
	"github.com/statepack/statepack/remote/dirbackend"
)

// countingBackend counts the index objects read, to tell what a
// FindBlocks answered from its cache.
type countingBackend struct {
	backend.Backend
	indexGets atomic.Int64
}

func (c *countingBackend) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if strings.HasPrefix(name, "index/") {
		c.indexGets.Add(1)
	}
	return c.Backend.Get(ctx, name)
}

// lookupFixture is a repository on a directory backend with index
// objects written straight to it, a lookup cache dir, and the truth: for
// each block, the location FindBlocks must give.
type lookupFixture struct {
	t     *testing.T
	be    *countingBackend
	r     *Finder // with the lookup cache
	dir   string  // the lookup cache directory
	rng   *rand.ChaCha8
	truth map[format.ID]format.Location
}

func newLookupFixture(t *testing.T) *lookupFixture {
	t.Helper()
	dbe, err := dirbackend.New(filepath.Join(t.TempDir(), "remote"), true)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := format.NewConfig(chunker.DefaultParams(), 0)
	if err != nil {
		t.Fatal(err)
	}
	be := &countingBackend{Backend: dbe}
	r, err := Init(context.Background(), be, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := &lookupFixture{t: t, be: be, r: r, dir: filepath.Join(t.TempDir(), "cache"), rng: rand.NewChaCha8([32]byte{42}), truth: map[format.ID]format.Location{}}
	r.UseLookupCache(f.dir)
	return f
}

// randomPacks makes nPacks packs of perPack blocks with random ids.
func (f *lookupFixture) randomPacks(nPacks, perPack int) []format.IndexPack {
	packs := make([]format.IndexPack, nPacks)
	for i := range packs {
		_, _ = f.rng.Read(packs[i].Pack[:])
		packs[i].Entries = make([]format.PackEntry, perPack)
		for j := range packs[i].Entries {
			e := &packs[i].Entries[j]
			_, _ = f.rng.Read(e.ID[:])
			e.Offset, e.Stored, e.Raw, e.Encoding = uint32(j)*1000, 1000, 2000, format.EncodingZstd
		}
	}
	return packs
}

// put writes one index object as another machine's push would, and
// records its entries in the truth where they are the first location of
// their block: objects are put in name order by the tests that rely on
// it, or their blocks are distinct.
func (f *lookupFixture) put(packs []format.IndexPack) format.ID {
	f.t.Helper()
	data := format.EncodeIndex(packs)
	id := format.Hash(data)
	if err := f.be.Put(context.Background(), format.IndexName(id), bytes.NewReader(data), int64(len(data))); err != nil {
		f.t.Fatal(err)
	}
	for _, p := range packs {
		for _, e := range p.Entries {
			if _, dup := f.truth[e.ID]; !dup {
				f.truth[e.ID] = format.Location{Pack: p.Pack, Offset: e.Offset, Stored: e.Stored, Raw: e.Raw, Encoding: e.Encoding}
			}
		}
	}
	return id
}

// remove deletes an index object and the truth of its blocks.
func (f *lookupFixture) remove(id format.ID, packs []format.IndexPack) {
	f.t.Helper()
	if err := f.be.Delete(context.Background(), format.IndexName(id)); err != nil {
		f.t.Fatal(err)
	}
	for _, p := range packs {
		for _, e := range p.Entries {
			delete(f.truth, e.ID)
		}
	}
}

// question is some blocks the index holds (the first and last in id
// order among them) and as many it does not.
func (f *lookupFixture) question(n int) map[format.ID]struct{} {
	ids := slices.SortedFunc(maps.Keys(f.truth), func(a, b format.ID) int { return bytes.Compare(a[:], b[:]) })
	want := map[format.ID]struct{}{}
	if len(ids) > 0 {
		want[ids[0]], want[ids[len(ids)-1]] = struct{}{}, struct{}{}
	}
	for i := 0; i < n && len(ids) > 0; i++ {
		want[ids[f.rng.Uint64()%uint64(len(ids))]] = struct{}{}
	}
	for range n {
		var id format.ID
		_, _ = f.rng.Read(id[:])
		want[id] = struct{}{}
	}
	return want
}

// check asks FindBlocks with and without the cache and compares both
// with the truth.
func (f *lookupFixture) check(want map[format.ID]struct{}) {
	f.t.Helper()
	got, err := f.r.FindBlocks(context.Background(), want)
	if err != nil {
		f.t.Fatalf("FindBlocks: %v", err)
	}
	expect := map[format.ID]format.Location{}
	for id := range want {
		if loc, ok := f.truth[id]; ok {
			expect[id] = loc
		}
	}
	if !maps.Equal(got, expect) {
		f.t.Fatalf("FindBlocks with the cache: %d blocks found, want %d\n%s", len(got), len(expect), diffLocations(got, expect))
	}
	plain, err := Open(context.Background(), f.r.Backend())
	if err != nil {
		f.t.Fatal(err)
	}
	got, err = plain.FindBlocks(context.Background(), want)
	if err != nil || !maps.Equal(got, expect) {
		f.t.Fatalf("FindBlocks without a cache disagrees (%v):\n%s", err, diffLocations(got, expect))
	}
}

func diffLocations(got, want map[format.ID]format.Location) string {
	var b strings.Builder
	for id, w := range want {
		if g, ok := got[id]; !ok || g != w {
			fmt.Fprintf(&b, "  %s: got %+v (%v), want %+v\n", id.Short(), g, ok, w)
		}
	}
	for id, g := range got {
		if _, ok := want[id]; !ok {
			fmt.Fprintf(&b, "  %s: got %+v, not in the index\n", id.Short(), g)
		}
	}
	return b.String()
}

// open opens the fixture's cache file, which must be valid.
func (f *lookupFixture) open() *File {
	f.t.Helper()
	c, err := openLookup(filepath.Join(f.dir, lookupName), repoKey(f.r.Config()))
	if err != nil {
		f.t.Fatalf("the lookup cache is not valid: %v", err)
	}
	f.t.Cleanup(func() { c.Close() })
	return c
}

// coveredIDs is what the cache file covers.
func (c *File) coveredIDs() []format.ID {
	ids := make([]format.ID, c.objects)
	for i := range ids {
		ids[i] = c.object(i)
	}
	return ids
}

func sortedIDs(ids ...format.ID) []format.ID {
	return slices.SortedFunc(slices.Values(ids), func(a, b format.ID) int { return bytes.Compare(a[:], b[:]) })
}

// TestLookupCacheAnswers: whatever the shape of the index, FindBlocks
// with the cache gives exactly what the index holds (the same as without
// a cache), builds the cache on the first call and answers the second
// without reading a single index object.
func TestLookupCacheAnswers(t *testing.T) {
	// crowd puts ids in partition 0x42, a tenth of them sharing their
	// first three bytes: the counting sort and its large groups.
	crowd := func(i int, id *format.ID) {
		id[0] = 0x42
		if i%10 == 0 {
			id[1], id[2] = 0, 1
		}
	}
	for _, tc := range []struct {
		name                    string
		objects, packs, perPack int
		spills                  bool // more entries than the builder holds in memory
		skew                    func(i int, id *format.ID)
	}{
		{name: "one block", objects: 1, packs: 1, perPack: 1},
		{name: "one object", objects: 1, packs: 3, perPack: 50},
		{name: "many small objects", objects: 40, packs: 2, perPack: 7},
		{name: "packs of one block", objects: 3, packs: 500, perPack: 1},
		{name: "spills to disk", objects: 6, packs: 256, perPack: 256, spills: true},
		{name: "a crowded partition", objects: 2, packs: 20, perPack: 250, skew: crowd},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newLookupFixture(t)
			n := 0
			for range tc.objects {
				packs := f.randomPacks(tc.packs, tc.perPack)
				for _, p := range packs {
					for j := range p.Entries {
						if tc.skew != nil {
							tc.skew(n, &p.Entries[j].ID)
						}
						n++
					}
				}
				f.put(packs)
			}
			if spills := len(f.truth)*lookupEntrySize > lookupSpillBytes; spills != tc.spills {
				t.Fatalf("spills %v: the case does not test what it says", spills)
			}
			if tc.skew != nil && len(f.truth) < lookupSmallPartition {
				t.Fatal("the crowded partition is sorted directly, not by counting")
			}
			want := f.question(200)
			f.check(want)
			c := f.open()
			if c.objects != tc.objects || c.entries != len(f.truth) {
				t.Fatalf("cache covers %d objects, %d entries; want %d, %d", c.objects, c.entries, tc.objects, len(f.truth))
			}
			before := f.be.indexGets.Load()
			got, err := f.r.FindBlocks(context.Background(), want)
			if err != nil {
				t.Fatal(err)
			}
			if n := f.be.indexGets.Load() - before; n != 0 {
				t.Fatalf("warm FindBlocks read %d index objects", n)
			}
			for id := range want {
				if _, ok := got[id]; ok != (f.truth[id] != format.Location{}) {
					t.Fatalf("warm FindBlocks: %s found %v", id.Short(), ok)
				}
			}
		})
	}
}

// TestLookupCacheDuplicates: a block indexed in several places gets the
// same location with the cache and without, before and after a merge:
// the first in the order of index object names (the cache's own objects
// first), the first within an object.
func TestLookupCacheDuplicates(t *testing.T) {
	f := newLookupFixture(t)
	shared := f.randomPacks(1, 20)[0].Entries
	// Three objects holding the same 20 blocks in other packs, and one
	// pack holding the same block twice.
	var objs []format.ID
	var data [][]format.IndexPack
	for range 3 {
		packs := f.randomPacks(2, 30)
		packs[1].Entries = append(packs[1].Entries, shared...)
		packs[1].Entries = append(packs[1].Entries, format.PackEntry{ID: shared[0].ID, Offset: 900000, Stored: 5, Raw: 5, Encoding: format.EncodingRaw})
		data = append(data, packs)
		objs = append(objs, format.Hash(format.EncodeIndex(packs)))
	}
	order := []int{0, 1, 2}
	slices.SortFunc(order, func(a, b int) int { return bytes.Compare(objs[a][:], objs[b][:]) })
	for _, i := range order {
		f.put(data[i]) // the truth keeps the first in name order
	}
	want := map[format.ID]struct{}{}
	for _, e := range shared {
		want[e.ID] = struct{}{}
	}
	f.check(want)
	// A later object holding them again, merged into the cache, does not
	// change the answer, nor does a rebuild. It sorts after the others,
	// so that without a cache it comes last too.
	last := slices.MaxFunc(objs, func(a, b format.ID) int { return bytes.Compare(a[:], b[:]) })
	var more []format.IndexPack
	for {
		more = f.randomPacks(1, 1000)
		more[0].Entries = append(more[0].Entries, shared...)
		if id := format.Hash(format.EncodeIndex(more)); bytes.Compare(id[:], last[:]) > 0 {
			break
		}
	}
	f.put(more)
	f.check(want)
	if c := f.open(); c.objects != 4 {
		t.Fatalf("the new object was not merged: cache covers %d objects", c.objects)
	}
	if err := os.Remove(filepath.Join(f.dir, lookupName)); err != nil {
		t.Fatal(err)
	}
	f.check(want)
}

// TestLookupCacheFollowsTheIndex: objects added since the cache was
// built are read (once, then from a kept copy) until they are many
// enough to be merged; an object the cache covers that is gone from the
// listing (a prune rewrote the index) makes it rebuild, and its blocks
// are no longer claimed.
func TestLookupCacheFollowsTheIndex(t *testing.T) {
	f := newLookupFixture(t)
	base := []format.ID{f.put(f.randomPacks(40, 250)), f.put(f.randomPacks(40, 250))}
	f.check(f.question(50))

	small := f.randomPacks(1, 30)
	smallID := f.put(small)
	want := f.question(50)
	for _, e := range small[0].Entries {
		want[e.ID] = struct{}{}
	}
	f.check(want)
	if got := f.open().coveredIDs(); !slices.Equal(got, sortedIDs(base...)) {
		t.Fatalf("a small new object was merged at once: cache covers %d objects", len(got))
	}
	if _, ok := readPendingCopy(f.dir, smallID); !ok {
		t.Fatal("no verified copy kept of the object the cache does not cover")
	}
	before := f.be.indexGets.Load()
	f.check(want) // the check's second, uncached, FindBlocks reads all 3
	if n := f.be.indexGets.Load() - before; n != 3 {
		t.Fatalf("%d index objects read, want 3 (none by the cached FindBlocks)", n)
	}

	big := f.randomPacks(12, 250) // more than 1/8 of the cache
	bigID := f.put(big)
	f.check(want)
	if got := f.open().coveredIDs(); !slices.Equal(got, sortedIDs(append(base, smallID, bigID)...)) {
		t.Fatalf("cache covers %d objects after a large addition, want all 4", len(got))
	}
	if _, err := os.Stat(pendingDir(f.dir)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("copies of merged objects left behind: %v", err)
	}

	// A prune: the index of the two base objects is rewritten as one
	// holding half of their packs.
	var gone []format.IndexPack
	for _, id := range base {
		p, err := f.r.ReadIndexObject(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		gone = append(gone, p...)
	}
	f.remove(base[0], gone)
	f.remove(base[1], nil)
	kept := f.put(gone[20:60])
	want = map[format.ID]struct{}{}
	for _, p := range gone {
		for _, e := range p.Entries[:5] {
			want[e.ID] = struct{}{}
		}
	}
	f.check(want)
	if got := f.open().coveredIDs(); !slices.Equal(got, sortedIDs(kept, smallID, bigID)) {
		t.Fatalf("cache not rebuilt after the index was rewritten: covers %d objects", len(got))
	}

	// Everything gone: no cache, nothing found.
	f.remove(kept, gone[20:60])
	f.remove(smallID, small)
	f.remove(bigID, big)
	f.check(want)
	if _, err := os.Stat(filepath.Join(f.dir, lookupName)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a cache of an index that is gone was kept: %v", err)
	}
}

// lookupLayout locates the parts of a cache file, for the tests that
// damage them.
type lookupLayout struct {
	objects, packs, fanout, entries int64
}

func (c *File) layout() lookupLayout {
	l := lookupLayout{objects: lookupHeaderSize}
	l.packs = l.objects + 32*int64(c.objects)
	l.fanout = l.packs + 32*int64(c.packs)
	l.entries = l.fanout + lookupFanoutSize
	return l
}

// bucketOffset is where the entries of bucket b start in the file.
func (c *File) bucketOffset(b int) int64 {
	return c.layout().entries + int64(c.bucketEnd(b-1))*lookupEntrySize
}

// TestLookupCacheDamage: a cache file damaged anywhere an answer
// depends on is found out, removed and rebuilt, and the answers are
// right; it is never trusted.
func TestLookupCacheDamage(t *testing.T) {
	flip := func(off func(c *File) int64) func(t *testing.T, path string, c *File) {
		return func(t *testing.T, path string, c *File) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			data[off(c)] ^= 0x20
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	resize := func(delta int64) func(t *testing.T, path string, c *File) {
		return func(t *testing.T, path string, c *File) {
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, st.Size()+delta); err != nil {
				t.Fatal(err)
			}
		}
	}
	var wantBucket int // the bucket of a block asked for, set per case
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string, c *File)
	}{
		{"magic", flip(func(*File) int64 { return 1 })},
		{"object count", flip(func(*File) int64 { return 4 })},
		{"pack count", flip(func(*File) int64 { return 9 })},
		{"entry count", flip(func(*File) int64 { return 12 })},
		{"huge object count", func(t *testing.T, path string, c *File) {
			data, _ := os.ReadFile(path)
			binary.LittleEndian.PutUint32(data[4:], 1<<31)
			_ = os.WriteFile(path, data, 0o644)
		}},
		{"repository id", flip(func(*File) int64 { return 20 })},
		{"tables hash", flip(func(*File) int64 { return lookupHashed + 3 })},
		{"covered object", flip(func(c *File) int64 { return c.layout().objects + 5 })},
		{"pack table", flip(func(c *File) int64 { return c.layout().packs + 40 })},
		{"fanout end", flip(func(c *File) int64 { return c.layout().fanout + int64(wantBucket)*lookupFanoutEntry })},
		{"fanout hash", flip(func(c *File) int64 { return c.layout().fanout + int64(wantBucket)*lookupFanoutEntry + 7 })},
		{"entry id", flip(func(c *File) int64 { return c.bucketOffset(wantBucket) + 31 })},
		{"entry pack number", flip(func(c *File) int64 { return c.bucketOffset(wantBucket) + 32 })},
		{"entry offset", flip(func(c *File) int64 { return c.bucketOffset(wantBucket) + 37 })},
		{"last byte", flip(func(c *File) int64 { return c.layout().entries + int64(c.entries)*lookupEntrySize - 1 })},
		{"truncated by a byte", resize(-1)},
		{"truncated by an entry", resize(-lookupEntrySize)},
		{"extended", resize(lookupEntrySize)},
		{"truncated to its header", func(t *testing.T, path string, c *File) { _ = os.Truncate(path, lookupHeaderSize) }},
		{"empty", func(t *testing.T, path string, c *File) { _ = os.Truncate(path, 0) }},
		{"garbage", func(t *testing.T, path string, c *File) {
			data := make([]byte, 4096)
			copy(data, lookupMagic)
			_ = os.WriteFile(path, data, 0o644)
		}},
		{"a directory", func(t *testing.T, path string, c *File) {
			_ = os.Remove(path)
			_ = os.Mkdir(path, 0o755)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newLookupFixture(t)
			for range 3 {
				f.put(f.randomPacks(20, 100))
			}
			want := f.question(30)
			f.check(want)
			// The last block of the last bucket, and the first: damage
			// to either end of the file is reached.
			ids := slices.SortedFunc(maps.Keys(f.truth), func(a, b format.ID) int { return bytes.Compare(a[:], b[:]) })
			want[ids[0]], want[ids[len(ids)-1]] = struct{}{}, struct{}{}
			wantBucket = lookupBucketOf(ids[len(ids)/2])
			want[ids[len(ids)/2]] = struct{}{}
			path := filepath.Join(f.dir, lookupName)
			c, err := openLookup(path, repoKey(f.r.Config()))
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
			tc.damage(t, path, c)
			damaged, _ := os.ReadFile(path)
			f.check(want)
			c2 := f.open()
			rebuilt, _ := os.ReadFile(path)
			if bytes.Equal(rebuilt, damaged) {
				t.Fatal("the damaged cache was not rebuilt")
			}
			if c2.entries != len(f.truth) {
				t.Fatalf("rebuilt cache holds %d entries, want %d", c2.entries, len(f.truth))
			}
		})
	}
}

// forgeClaim rewrites the cache in dir so that it also claims block
// claim, at the location of block like: a whole, valid file, as a bug in
// the builder might write. With stale, the claim's bucket keeps the hash
// it had without the claim, as a byte changed in place on disk would
// leave it.
func forgeClaim(t *testing.T, dir string, repo format.ID, claim, like format.ID, stale bool) {
	t.Helper()
	path := filepath.Join(dir, lookupName)
	c, err := openLookup(path, repo)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	loc := map[format.ID]format.Location{}
	if err := c.find(map[format.ID]struct{}{like: {}}, loc); err != nil || len(loc) != 1 {
		t.Fatalf("the cache does not hold %s: %v", like.Short(), err)
	}
	bucket := lookupBucketOf(claim)
	oldHash := slices.Clone(c.fanout(bucket)[4:])
	b := newLookupBuilder(dir, c)
	rec := b.records()
	l := loc[like]
	rec.packs = append(rec.packs[:0], l.Pack[:]...)
	rec.recs = appendLookupEntry(rec.recs[:0], &lookupEntry{id: claim, offset: l.Offset, stored: l.Stored, raw: l.Raw, encoding: l.Encoding})
	rec.ends = [256]int{}
	for i := int(claim[0]); i < 256; i++ {
		rec.ends[i] = lookupEntrySize
	}
	b.addObject(rec)
	if err := b.finish(func() error { return nil }, c.coveredIDs(), repo, path); err != nil {
		t.Fatal(err)
	}
	if !stale {
		return
	}
	forged, err := openLookup(path, repo)
	if err != nil {
		t.Fatal(err)
	}
	defer forged.Close()
	tables := slices.Clone(forged.tables)
	fan := forged.layout().fanout + int64(bucket)*lookupFanoutEntry
	copy(tables[fan+4:], oldHash)
	sum := lookupTablesHash(tables)
	copy(tables[lookupHashed:], sum[:])
	file, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	if _, err := file.WriteAt(tables, 0); err != nil {
		t.Fatal(err)
	}
}

// TestLookupCacheNeverClaimsDamagedEntries (invariant 1): a cache whose
// bytes claim a block the index does not hold, without the hashes to
// match, is found out: FindBlocks does not report the block (a push
// would skip it and leave the remote's snapshot pointing at nothing).
// The control shows the forgery is one the cache would act on if its
// hashes matched, so the check is what stops it.
func TestLookupCacheNeverClaimsDamagedEntries(t *testing.T) {
	for _, stale := range []bool{true, false} {
		t.Run(fmt.Sprintf("stale bucket hash %v", stale), func(t *testing.T) {
			f := newLookupFixture(t)
			f.put(f.randomPacks(10, 100))
			ids := slices.Collect(maps.Keys(f.truth))
			like := ids[0]
			var absent format.ID
			_, _ = f.rng.Read(absent[:])
			want := map[format.ID]struct{}{absent: {}, like: {}}
			f.check(want) // builds the cache
			forgeClaim(t, f.dir, repoKey(f.r.Config()), absent, like, stale)
			got, err := f.r.FindBlocks(context.Background(), want)
			if err != nil {
				t.Fatal(err)
			}
			_, claimed := got[absent]
			if claimed == stale {
				t.Fatalf("block %s claimed: %v with a stale bucket hash %v", absent.Short(), claimed, stale)
			}
			if got[like] != f.truth[like] {
				t.Fatalf("block %s at %+v, want %+v", like.Short(), got[like], f.truth[like])
			}
		})
	}
}

// TestLookupCacheConcurrent: processes sharing a store (several
// repositories on one cache directory) find blocks while others push
// index objects: every block indexed before a FindBlocks began is found,
// no block that was never indexed is, and the cache left behind is
// valid.
func TestLookupCacheConcurrent(t *testing.T) {
	f := newLookupFixture(t)
	f.put(f.randomPacks(50, 100))
	var mu sync.Mutex
	known := slices.Collect(maps.Keys(f.truth))
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	wg.Go(func() {
		for range 30 {
			mu.Lock()
			packs := f.randomPacks(1+int(f.rng.Uint64()%20), 100)
			mu.Unlock()
			data := format.EncodeIndex(packs)
			if err := f.be.Put(ctx, format.IndexName(format.Hash(data)), bytes.NewReader(data), int64(len(data))); err != nil {
				errs <- err
				return
			}
			mu.Lock()
			for _, p := range packs {
				for _, e := range p.Entries {
					known = append(known, e.ID)
				}
			}
			mu.Unlock()
		}
	})
	for w := range 4 {
		wg.Go(func() {
			r, err := Open(ctx, f.r.Backend())
			if err != nil {
				errs <- err
				return
			}
			r.UseLookupCache(f.dir)
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for range 15 {
				mu.Lock()
				want := map[format.ID]struct{}{}
				for range 40 {
					want[known[rng.IntN(len(known))]] = struct{}{}
				}
				mu.Unlock()
				var absent format.ID
				binary.LittleEndian.PutUint64(absent[:], rng.Uint64())
				want[absent] = struct{}{}
				got, err := r.FindBlocks(ctx, want)
				if err != nil {
					errs <- err
					return
				}
				if _, ok := got[absent]; ok {
					errs <- fmt.Errorf("absent block %s claimed", absent.Short())
					return
				}
				if len(got) != len(want)-1 {
					errs <- fmt.Errorf("found %d of %d blocks indexed before the call", len(got), len(want)-1)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	f.open()
	entries, err := os.ReadDir(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".lookup-") {
			t.Fatalf("temporary file %s left behind", e.Name())
		}
	}
}

// TestLookupCacheCancelled: a FindBlocks cancelled while it builds the
// cache fails with the context's error, leaves no temporary file and no
// cache built from part of the index.
func TestLookupCacheCancelled(t *testing.T) {
	f := newLookupFixture(t)
	for range 8 {
		f.put(f.randomPacks(64, 256))
	}
	for _, after := range []int64{1, 4, 7} {
		ctx, cancel := context.WithCancel(context.Background())
		cb := &cancelAfter{Backend: f.r.Backend(), n: after, cancel: cancel}
		r, err := Open(ctx, cb)
		if err != nil {
			t.Fatal(err)
		}
		r.UseLookupCache(f.dir)
		_, err = r.FindBlocks(ctx, f.question(10))
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled after %d objects: %v", after, err)
		}
		entries, _ := os.ReadDir(f.dir)
		for _, e := range entries {
			t.Fatalf("cancelled after %d objects, %s left in the cache directory", after, e.Name())
		}
	}
	f.check(f.question(10))
}

// cancelAfter cancels a context when the n-th index object is read.
type cancelAfter struct {
	backend.Backend
	n      int64
	reads  atomic.Int64
	cancel func()
}

func (c *cancelAfter) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if strings.HasPrefix(name, "index/") && c.reads.Add(1) == c.n {
		c.cancel()
	}
	return c.Backend.Get(ctx, name)
}

// TestLookupCacheBeyondBounds: an index whose ids crowd one bucket past
// what a lookup may read (only a hostile writer gets there) is not
// cached, and FindBlocks still answers from the index objects.
func TestLookupCacheBeyondBounds(t *testing.T) {
	f := newLookupFixture(t)
	packs := f.randomPacks(300, 250)
	for _, p := range packs {
		for j := range p.Entries {
			p.Entries[j].ID[0], p.Entries[j].ID[1] = 7, 7
		}
	}
	f.put(packs[:150])
	f.put(packs[150:])
	f.check(f.question(20))
	if _, err := os.Stat(filepath.Join(f.dir, lookupName)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a cache with a bucket of %d entries was written: %v", len(f.truth), err)
	}
}

// TestLookupCacheInvalidEntries: an index entry that fails the index's
// checks is never cached. Asked for while its object is read, it is an
// error naming the object, as without a cache; once the object is
// cached, the block is not found (a push sends it again, a pull reports
// it missing).
func TestLookupCacheInvalidEntries(t *testing.T) {
	f := newLookupFixture(t)
	good := f.randomPacks(3, 10)
	f.put(good)
	bad := f.randomPacks(1, 3)
	bad[0].Entries[1].Encoding = 9
	data := format.EncodeIndex(bad)
	if err := f.be.Put(context.Background(), format.IndexName(format.Hash(data)), bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	delete(f.truth, bad[0].Entries[1].ID)
	for _, e := range []format.PackEntry{bad[0].Entries[0], bad[0].Entries[2]} {
		f.truth[e.ID] = format.Location{Pack: bad[0].Pack, Offset: e.Offset, Stored: e.Stored, Raw: e.Raw, Encoding: e.Encoding}
	}
	f.check(f.question(10))
	if c := f.open(); c.entries != len(f.truth) {
		t.Fatalf("cache holds %d entries, want the %d valid ones", c.entries, len(f.truth))
	}
	invalid := map[format.ID]struct{}{bad[0].Entries[1].ID: {}}
	if found, err := f.r.FindBlocks(context.Background(), invalid); err != nil || len(found) != 0 {
		t.Fatalf("asking the cache for the invalid entry: %v %v", found, err)
	}
	if err := os.Remove(filepath.Join(f.dir, lookupName)); err != nil {
		t.Fatal(err)
	}
	_, err := f.r.FindBlocks(context.Background(), invalid)
	if err == nil || !strings.Contains(err.Error(), "index "+format.Hash(data).Short()) {
		t.Fatalf("asking for the invalid entry while building: %v", err)
	}
}

// TestLookupCacheHeaderBounds: counts in a cache file's header are
// checked against the bounds and the file's size before anything is
// allocated from them.
func TestLookupCacheHeaderBounds(t *testing.T) {
	repo := format.Hash([]byte("repo"))
	for _, tc := range []struct {
		name                    string
		objects, packs, entries uint32
		size                    int
		wantIn                  string
	}{
		{"too many objects", 1 << 30, 0, 0, lookupHeaderSize, "claims"},
		{"too many packs", 0, maxLookupTableIDs + 1, 0, lookupHeaderSize, "claims"},
		{"entries past the end", 1, 1, 1 << 31, lookupHeaderSize + 64 + lookupFanoutSize, "header says"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := make([]byte, tc.size)
			copy(hdr, lookupMagic)
			binary.LittleEndian.PutUint32(hdr[4:], tc.objects)
			binary.LittleEndian.PutUint32(hdr[8:], tc.packs)
			binary.LittleEndian.PutUint32(hdr[12:], tc.entries)
			copy(hdr[16:], repo[:])
			path := filepath.Join(t.TempDir(), lookupName)
			if err := os.WriteFile(path, hdr, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := openLookup(path, repo)
			if !errors.Is(err, errLookupDamaged) || !strings.Contains(err.Error(), tc.wantIn) {
				t.Fatalf("got %v, want damage (%s)", err, tc.wantIn)
			}
		})
	}
}
