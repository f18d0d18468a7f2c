package lookup

import (
	"context"
	"encoding/binary"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/remote/backend"
)

// tableSpy wraps a fixture's backend to count the ranged reads of lookup
// tables and to run a hook before each.
type tableSpy struct {
	backend.Backend
	ranges atomic.Int64
	bytes  atomic.Int64
	before func(name string, off, n int64)
}

func (s *tableSpy) GetRange(ctx context.Context, name string, off, n int64) (io.ReadCloser, error) {
	if strings.HasPrefix(name, lookupTablePrefix) {
		s.ranges.Add(1)
		s.bytes.Add(n)
		if s.before != nil {
			s.before(name, off, n)
		}
	}
	return s.Backend.GetRange(ctx, name, off, n)
}

// publish makes sure the fixture's client has a cache of the whole index
// and publishes it as the repository's table, which must happen.
func (f *lookupFixture) publish() format.ID {
	f.t.Helper()
	f.r.SetLookupTableMin(1)
	if _, err := f.r.FindBlocks(context.Background(), map[format.ID]struct{}{{}: {}}); err != nil {
		f.t.Fatal(err)
	}
	ok, err := f.r.PublishLookupTable(context.Background())
	if err != nil || !ok {
		f.t.Fatalf("publish: %v %v", ok, err)
	}
	return f.tables()[0]
}

// tables lists the tables on the fixture's repository.
func (f *lookupFixture) tables() []format.ID {
	f.t.Helper()
	ts, _, err := f.r.ListLookupTables(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	var ids []format.ID
	for _, t := range ts {
		ids = append(ids, t.ID)
	}
	return ids
}

// tablePath is where table id is in the fixture's directory backend.
func (f *lookupFixture) tablePath(id format.ID) string {
	d, _ := backend.As[backend.Local](f.be.Backend)
	return filepath.Join(d.Root(), filepath.FromSlash(TableName(id)))
}

// cold opens the fixture's repository as a client with no cache of its
// own would: with an empty cache directory (or none when dir is "").
func (f *lookupFixture) cold(dir string) (*Finder, *tableSpy) {
	f.t.Helper()
	spy := &tableSpy{Backend: f.be}
	r, err := Open(context.Background(), spy)
	if err != nil {
		f.t.Fatal(err)
	}
	r.SetLookupTableMin(1)
	if dir != "" {
		r.UseLookupCache(dir)
	}
	return r, spy
}

// answer is what the truth says FindBlocks must return for want.
func (f *lookupFixture) answer(want map[format.ID]struct{}) map[format.ID]format.Location {
	expect := map[format.ID]format.Location{}
	for id := range want {
		if loc, ok := f.truth[id]; ok {
			expect[id] = loc
		}
	}
	return expect
}

// TestLookupTableAnswers: a client without a cache answers FindBlocks
// from the published table and the index objects it does not cover,
// exactly as the index would, reading no covered index object and
// building no cache of its own.
func TestLookupTableAnswers(t *testing.T) {
	for _, tc := range []struct {
		name           string
		objects        int
		packs, perPack int  // per object; 10 of 100 when 0
		uncovered      int  // index objects written after the table
		noCache        bool // a remote opened without a cache directory
	}{
		{name: "covers the index", objects: 4},
		{name: "two objects uncovered", objects: 4, uncovered: 2},
		{name: "no cache directory", objects: 3, uncovered: 1, noCache: true},
		{name: "one object", objects: 1},
		// More packs than openLookupTable guesses from the listing: its
		// tables take a second read.
		{name: "packs of one block", objects: 3, perPack: 1, packs: 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newLookupFixture(t)
			if tc.packs == 0 {
				tc.packs, tc.perPack = 10, 100
			}
			for range tc.objects {
				f.put(f.randomPacks(tc.packs, tc.perPack))
			}
			f.publish()
			for range tc.uncovered {
				f.put(f.randomPacks(2, 50))
			}
			want := f.question(40)
			dir := filepath.Join(t.TempDir(), "cold")
			if tc.noCache {
				dir = ""
			}
			r, spy := f.cold(dir)
			before := f.be.indexGets.Load()
			got, err := r.FindBlocks(context.Background(), want)
			if err != nil {
				t.Fatal(err)
			}
			if expect := f.answer(want); !maps.Equal(got, expect) {
				t.Fatalf("answers from the table differ from the index:\n%s", diffLocations(got, expect))
			}
			if n := f.be.indexGets.Load() - before; n != int64(tc.uncovered) {
				t.Errorf("read %d index objects, want only the %d uncovered", n, tc.uncovered)
			}
			if spy.ranges.Load() == 0 {
				t.Error("the table was not read")
			}
			if dir != "" {
				if _, err := os.Stat(filepath.Join(dir, lookupName)); err == nil {
					t.Error("a cold client built a cache of the whole index")
				}
				// The uncovered objects are kept: asked again, nothing
				// but the table is read.
				before = f.be.indexGets.Load()
				if _, err := r.FindBlocks(context.Background(), want); err != nil {
					t.Fatal(err)
				}
				if n := f.be.indexGets.Load() - before; n != 0 {
					t.Errorf("second call read %d index objects", n)
				}
			}
		})
	}
}

// TestLookupTableCoalesces: wanted buckets close together are read in
// one request, so a large question does not cost a request per bucket.
func TestLookupTableCoalesces(t *testing.T) {
	f := newLookupFixture(t)
	for range 2 {
		f.put(f.randomPacks(20, 200))
	}
	f.publish()
	want := f.question(2000) // 8,000 entries: the whole table is a few spans
	r, spy := f.cold(t.TempDir())
	got, err := r.FindBlocks(context.Background(), want)
	if err != nil {
		t.Fatal(err)
	}
	if expect := f.answer(want); !maps.Equal(got, expect) {
		t.Fatalf("answers differ:\n%s", diffLocations(got, expect))
	}
	// Header, tables, then the entries (under 400 KiB) in one or two.
	if n := spy.ranges.Load(); n > 4 {
		t.Errorf("%d ranged reads of the table for 8,000 entries", n)
	}
}

// rehashTable recomputes the tables hash of a table's bytes after a
// test changed them, as a writer that meant it would, and returns it.
func rehashTable(t *testing.T, data []byte) format.ID {
	t.Helper()
	objects := int(binary.LittleEndian.Uint32(data[4:]))
	packs := int(binary.LittleEndian.Uint32(data[8:]))
	n := lookupHeaderSize + 32*(objects+packs) + lookupFanoutSize
	sum := lookupTablesHash(data[:n])
	copy(data[lookupHashed:], sum[:])
	return format.ID(sum)
}

// TestLookupTableFallback (invariants 1 and 5): a table that is damaged,
// misnamed, made for another repository, stale (it covers an index
// object no longer listed: a prune rewrote the index, and it may name
// deleted packs), due for a merge, hostile in its counts, or deleted
// while it is read, is not used: FindBlocks reads the index instead, so
// its answers are the index's. The control forges a claim with matching
// hashes, which a table would be trusted with: it shows the other cases
// are caught by the checks, not by luck.
func TestLookupTableFallback(t *testing.T) {
	rewrite := func(change func(f *lookupFixture, data []byte) []byte, rename bool) func(f *lookupFixture, id format.ID) {
		return func(f *lookupFixture, id format.ID) {
			path := f.tablePath(id)
			data, err := os.ReadFile(path)
			if err != nil {
				f.t.Fatal(err)
			}
			data = change(f, data)
			if rename {
				id = rehashTable(f.t, data)
				_ = os.Remove(path)
				path = f.tablePath(id)
			}
			if err := os.WriteFile(path, data, 0o644); err != nil {
				f.t.Fatal(err)
			}
		}
	}
	flip := func(off func(c *File) int64) func(f *lookupFixture, data []byte) []byte {
		return func(f *lookupFixture, data []byte) []byte {
			c := f.open()
			data[off(c)] ^= 0x20
			return data
		}
	}
	for _, tc := range []struct {
		name    string
		spoil   func(f *lookupFixture, id format.ID)
		marked  bool // the client notes the table as damaged
		trusted bool // control: the table is used
	}{
		{name: "bucket damaged", marked: true, spoil: rewrite(flip(func(c *File) int64 {
			return c.layout().entries + int64(c.entries)*lookupEntrySize - 1
		}), false)},
		{name: "fanout damaged", spoil: rewrite(flip(func(c *File) int64 { return c.layout().fanout + 7 }), false)},
		{name: "covered list damaged", spoil: rewrite(flip(func(c *File) int64 { return c.layout().objects + 3 }), false)},
		{name: "truncated", spoil: rewrite(func(f *lookupFixture, data []byte) []byte { return data[:len(data)-1] }, false)},
		{name: "extended", spoil: rewrite(func(f *lookupFixture, data []byte) []byte { return append(data, 0) }, false)},
		{name: "misnamed", spoil: func(f *lookupFixture, id format.ID) {
			other := id
			other[0] ^= 1
			if err := os.Rename(f.tablePath(id), f.tablePath(other)); err != nil {
				f.t.Fatal(err)
			}
		}},
		{name: "another repository", spoil: rewrite(func(f *lookupFixture, data []byte) []byte {
			data[20] ^= 1
			return data
		}, true)},
		{name: "hostile object count", spoil: rewrite(func(f *lookupFixture, data []byte) []byte {
			binary.LittleEndian.PutUint32(data[4:], 1<<31)
			return data
		}, false)},
		{name: "stale: a covered object was deleted", spoil: func(f *lookupFixture, id format.ID) {
			c := f.open()
			victim := c.object(0)
			c.Close()
			data, err := f.r.readIndexData(context.Background(), IndexObject{ID: victim})
			if err != nil {
				f.t.Fatal(err)
			}
			packs, err := format.DecodeIndex(data)
			if err != nil {
				f.t.Fatal(err)
			}
			f.remove(victim, packs)
		}},
		{name: "due for a merge", spoil: func(f *lookupFixture, id format.ID) {
			for range 2 {
				f.put(f.randomPacks(10, 100)) // more than an eighth of the table
			}
		}},
		{name: "control: forged with matching hashes", trusted: true, spoil: func(f *lookupFixture, id format.ID) {
			forgeTableClaim(f, id)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newLookupFixture(t)
			for range 4 {
				f.put(f.randomPacks(10, 100))
			}
			id := f.publish()
			tc.spoil(f, id)
			want := f.question(40)
			var claim format.ID
			copy(claim[:], "claimed")
			want[claim] = struct{}{}
			dir := filepath.Join(t.TempDir(), "cold")
			r, _ := f.cold(dir)
			got, err := r.FindBlocks(context.Background(), want)
			if err != nil {
				t.Fatal(err)
			}
			if tc.trusted {
				if _, ok := got[claim]; !ok {
					t.Fatal("the forged table was not used: the control proves nothing")
				}
				return
			}
			if expect := f.answer(want); !maps.Equal(got, expect) {
				t.Fatalf("answers with a spoilt table differ from the index:\n%s", diffLocations(got, expect))
			}
			if _, err := os.Stat(filepath.Join(dir, lookupName)); err != nil {
				t.Errorf("the client did not fall back to reading the index into a cache: %v", err)
			}
			if _, err := os.Stat(filepath.Join(dir, lookupDamagedMark)); (err == nil) != tc.marked {
				t.Errorf("damage mark present: %v, want %v", err == nil, tc.marked)
			}
			plain, _ := f.cold("")
			if got, err := plain.FindBlocks(context.Background(), want); err != nil || !maps.Equal(got, f.answer(want)) {
				t.Fatalf("without a cache: %v\n%s", err, diffLocations(got, f.answer(want)))
			}
		})
	}
}

// forgeTableClaim replaces table id with one that also claims the block
// named "claimed", with every hash matching: what a buggy or hostile
// writer could publish.
func forgeTableClaim(f *lookupFixture, id format.ID) {
	f.t.Helper()
	dir := f.t.TempDir()
	data, err := os.ReadFile(f.tablePath(id))
	if err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, lookupName), data, 0o644); err != nil {
		f.t.Fatal(err)
	}
	var claim format.ID
	copy(claim[:], "claimed")
	like := slices.Collect(maps.Keys(f.truth))[0]
	forgeClaim(f.t, dir, repoKey(f.r.Config()), claim, like, false)
	forged, err := os.ReadFile(filepath.Join(dir, lookupName))
	if err != nil {
		f.t.Fatal(err)
	}
	_ = os.Remove(f.tablePath(id))
	if err := os.WriteFile(f.tablePath(format.ID(forged[lookupHashed:lookupHeaderSize])), forged, 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// TestLookupTableDeletedWhileRead: a reader whose table is deleted (a
// publisher replaced it) between opening it and reading its buckets
// falls back to the index and answers right.
func TestLookupTableDeletedWhileRead(t *testing.T) {
	f := newLookupFixture(t)
	for range 3 {
		f.put(f.randomPacks(10, 100))
	}
	id := f.publish()
	r, spy := f.cold(t.TempDir())
	tablesEnd := f.open().layout().entries
	spy.before = func(name string, off, n int64) {
		if off >= tablesEnd {
			_ = os.Remove(f.tablePath(id))
		}
	}
	want := f.question(30)
	got, err := r.FindBlocks(context.Background(), want)
	if err != nil {
		t.Fatal(err)
	}
	if expect := f.answer(want); !maps.Equal(got, expect) {
		t.Fatalf("answers differ:\n%s", diffLocations(got, expect))
	}
	if _, err := os.Stat(f.tablePath(id)); err == nil {
		t.Fatal("the hook did not delete the table: the test proves nothing")
	}
}

// TestPublishLookupTable: when push publishes, and what it replaces.
func TestPublishLookupTable(t *testing.T) {
	ctx := context.Background()
	t.Run("no cache, nothing to publish", func(t *testing.T) {
		f := newLookupFixture(t)
		f.put(f.randomPacks(5, 50))
		f.r.SetLookupTableMin(1)
		if ok, err := f.r.PublishLookupTable(ctx); ok || err != nil {
			t.Fatalf("published without a cache: %v %v", ok, err)
		}
	})
	t.Run("an index below the size where tables pay", func(t *testing.T) {
		f := newLookupFixture(t)
		f.put(f.randomPacks(5, 50))
		f.check(f.question(5)) // builds the cache
		if ok, err := f.r.PublishLookupTable(ctx); ok || err != nil {
			t.Fatalf("published a table for a tiny index: %v %v", ok, err)
		}
	})
	t.Run("once, then again only when due", func(t *testing.T) {
		f := newLookupFixture(t)
		for range 4 {
			f.put(f.randomPacks(10, 100))
		}
		first := f.publish()
		if ok, err := f.r.PublishLookupTable(ctx); ok || err != nil {
			t.Fatalf("published again over a table that serves: %v %v", ok, err)
		}
		f.put(f.randomPacks(1, 10)) // uncovered, but not enough to merge
		f.check(f.question(5))
		if ok, _ := f.r.PublishLookupTable(ctx); ok {
			t.Fatal("published for one small uncovered object")
		}
		for range 3 {
			f.put(f.randomPacks(10, 100))
		}
		f.check(f.question(5)) // the client's cache merges them
		if ok, err := f.r.PublishLookupTable(ctx); !ok || err != nil {
			t.Fatalf("did not replace a table due for a merge: %v %v", ok, err)
		}
		if got := f.tables(); len(got) != 1 || got[0] == first {
			t.Fatalf("tables after replacing %s: %v", first.Short(), got)
		}
	})
	t.Run("a stale cache is not published", func(t *testing.T) {
		f := newLookupFixture(t)
		var packs []format.IndexPack
		var victim format.ID
		for i := range 3 {
			p := f.randomPacks(10, 100)
			id := f.put(p)
			if i == 0 {
				victim, packs = id, p
			}
		}
		f.publish()
		for _, id := range f.tables() {
			_ = os.Remove(f.tablePath(id))
		}
		f.remove(victim, packs)
		if ok, _ := f.r.PublishLookupTable(ctx); ok {
			t.Fatal("published a cache that covers a deleted index object")
		}
	})
	t.Run("a table marked damaged is rewritten", func(t *testing.T) {
		f := newLookupFixture(t)
		for range 3 {
			f.put(f.randomPacks(10, 100))
		}
		id := f.publish()
		c := f.open()
		data, _ := os.ReadFile(f.tablePath(id))
		data[len(data)-1] ^= 1 // a bucket: publish's own check does not see it
		_ = os.WriteFile(f.tablePath(id), data, 0o644)
		if ok, _ := f.r.PublishLookupTable(ctx); ok {
			t.Fatal("republished before any reader found the damage")
		}
		markLookupDamaged(f.dir, id)
		if ok, err := f.r.PublishLookupTable(ctx); !ok || err != nil {
			t.Fatalf("did not rewrite a damaged table: %v %v", ok, err)
		}
		fixed, _ := os.ReadFile(f.tablePath(id))
		if int64(len(fixed)) != c.size || fixed[len(fixed)-1] == data[len(data)-1] {
			t.Fatal("the damaged table is still there")
		}
		if _, err := os.Stat(filepath.Join(f.dir, lookupDamagedMark)); err == nil {
			t.Error("the damage mark outlived the fix")
		}
	})
}

// TestLookupFilter: the filter holds every id of its table, rules out
// nearly all others, and is refused when it fails a check.
func TestLookupFilter(t *testing.T) {
	f := newLookupFixture(t)
	for range 3 {
		f.put(f.randomPacks(20, 200))
	}
	f.check(f.question(5))
	c := f.open()
	data, err := buildLookupFilter(c)
	if err != nil {
		t.Fatal(err)
	}
	filter, err := decodeLookupFilter(data, c)
	if err != nil {
		t.Fatal(err)
	}
	for id := range f.truth {
		if !filter.mayHold(id) {
			t.Fatalf("the filter rules out %s, which the table holds", id.Short())
		}
	}
	passed := 0
	for range 100_000 {
		var id format.ID
		_, _ = f.rng.Read(id[:])
		if filter.mayHold(id) {
			passed++
		}
	}
	if passed > 2000 {
		t.Errorf("%d of 100,000 absent ids pass the filter; want about 1%%", passed)
	}
	rehash := func(b []byte) []byte {
		sum := format.Hash(b[:len(b)-32])
		copy(b[len(b)-32:], sum[:])
		return b
	}
	other := f.open()
	other.tables = slices.Clone(other.tables)
	other.tables[lookupHashed] ^= 1
	for _, tc := range []struct {
		name  string
		bytes func() []byte
		table *File
	}{
		{"a bit flipped", func() []byte { b := slices.Clone(data); b[lookupFilterHeader+9] ^= 4; return b }, c},
		{"truncated", func() []byte { return data[:len(data)-1] }, c},
		{"empty", func() []byte { return nil }, c},
		{"another table", func() []byte { return data }, other},
		{"k of 0", func() []byte { b := slices.Clone(data); binary.LittleEndian.PutUint32(b[4:], 0); return rehash(b) }, c},
		{"m beyond its bits", func() []byte { b := slices.Clone(data); binary.LittleEndian.PutUint64(b[8:], 1<<40); return rehash(b) }, c},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeLookupFilter(tc.bytes(), tc.table); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// TestLookupFilterSparesReads: ids the table does not hold cost no
// bucket read, so a push of new blocks reads the table's tables, its
// filter and little else, whether the filter comes in one read or, as a
// large one does, in parallel ranged reads.
func TestLookupFilterSparesReads(t *testing.T) {
	for _, tc := range []struct {
		name        string
		part        int64
		filterReads int64 // ranged reads of the filter
	}{
		{"one read", lookupFilterPart, 0},
		{"in parts", 1 << 10, lookupFilterParts},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setFilterPart(t, tc.part)
			f := newLookupFixture(t)
			for range 4 {
				f.put(f.randomPacks(40, 250)) // 40,000 entries: 2 MiB of buckets
			}
			f.publish()
			want := map[format.ID]struct{}{}
			for range 500 {
				var id format.ID
				_, _ = f.rng.Read(id[:])
				want[id] = struct{}{}
			}
			dir := t.TempDir()
			r, spy := f.cold(dir)
			var filterReads atomic.Int64
			spy.before = func(name string, off, n int64) {
				if strings.HasSuffix(name, lookupFilterSuffix) {
					filterReads.Add(1)
				}
			}
			got, err := r.FindBlocks(context.Background(), want)
			if err != nil || len(got) != 0 {
				t.Fatalf("found %d absent blocks: %v", len(got), err)
			}
			if n := filterReads.Load(); n != tc.filterReads {
				t.Errorf("%d ranged reads of the filter, want %d", n, tc.filterReads)
			}
			if _, err := os.Stat(filepath.Join(dir, lookupDamagedMark)); err == nil {
				t.Error("the filter as read failed its checks")
			}
			// Header and tables, then at most a few spans for false positives.
			if n := spy.ranges.Load() - filterReads.Load(); n > 2+10 {
				t.Errorf("%d ranged reads of the table for 500 absent ids", n)
			}
		})
	}
}

// TestLookupFilterDamaged: a filter that fails its checks is done
// without (every id looked up in its bucket, answers right) and noted
// for republishing; one forged to rule everything out, hashes matching,
// can only hide blocks (push would send them again), never claim one.
func TestLookupFilterDamaged(t *testing.T) {
	for _, tc := range []struct {
		name   string
		spoil  func(data []byte) []byte
		marked bool
		forged bool
	}{
		{name: "a bit flipped", marked: true, spoil: func(b []byte) []byte { b[lookupFilterHeader+3] ^= 1; return b }},
		{name: "truncated", marked: true, spoil: func(b []byte) []byte { return b[:len(b)/2] }},
		{name: "forged: rules out everything", forged: true, spoil: func(b []byte) []byte {
			clear(b[lookupFilterHeader : len(b)-32])
			sum := format.Hash(b[:len(b)-32])
			copy(b[len(b)-32:], sum[:])
			return b
		}},
	} {
		for _, read := range []struct {
			name string
			part int64
		}{{"one read", lookupFilterPart}, {"in parts", 1 << 10}} {
			t.Run(tc.name+"/"+read.name, func(t *testing.T) {
				setFilterPart(t, read.part)
				lookupFilterDamagedCase(t, tc.spoil, tc.marked, tc.forged)
			})
		}
	}
}

// setFilterPart sets the size above which filters are read in parts,
// for one test.
func setFilterPart(t *testing.T, part int64) {
	old := lookupFilterPart
	lookupFilterPart = part
	t.Cleanup(func() { lookupFilterPart = old })
}

// lookupFilterDamagedCase publishes a table, spoils its filter and asks
// a cold client about blocks the table holds.
func lookupFilterDamagedCase(t *testing.T, spoil func([]byte) []byte, marked, forged bool) {
	f := newLookupFixture(t)
	for range 3 {
		f.put(f.randomPacks(10, 100))
	}
	id := f.publish()
	path := f.tablePath(id) + lookupFilterSuffix
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, spoil(data), 0o644); err != nil {
		t.Fatal(err)
	}
	want := f.question(30)
	dir := t.TempDir()
	r, _ := f.cold(dir)
	got, err := r.FindBlocks(context.Background(), want)
	if err != nil {
		t.Fatal(err)
	}
	expect := f.answer(want)
	if forged {
		for id, loc := range got {
			if expect[id] != loc {
				t.Fatalf("a forged filter made FindBlocks claim %s", id.Short())
			}
		}
		return
	}
	if !maps.Equal(got, expect) {
		t.Fatalf("answers differ:\n%s", diffLocations(got, expect))
	}
	if _, err := os.Stat(filepath.Join(dir, lookupName)); err == nil {
		t.Error("a damaged filter made the client read the whole index")
	}
	if _, err := os.Stat(filepath.Join(dir, lookupDamagedMark)); (err == nil) != marked {
		t.Errorf("damage mark: %v, want %v", err == nil, marked)
	}
}

// TestStaleCacheGivesWayToTable: a client whose cache covers an index
// object that is gone (the remote was pruned since) removes it and asks
// the remote's table, which a client with a fresh cache published.
func TestStaleCacheGivesWayToTable(t *testing.T) {
	f := newLookupFixture(t)
	var victim format.ID
	var victimPacks []format.IndexPack
	for i := range 4 {
		p := f.randomPacks(10, 100)
		if id := f.put(p); i == 0 {
			victim, victimPacks = id, p
		}
	}
	stale, _ := f.cold(t.TempDir())
	if _, err := stale.FindBlocks(context.Background(), map[format.ID]struct{}{{}: {}}); err != nil {
		t.Fatal(err)
	}
	f.remove(victim, victimPacks)
	f.publish() // f's own cache is rebuilt without the victim, then published
	before := f.be.indexGets.Load()
	want := f.question(30)
	got, err := stale.FindBlocks(context.Background(), want)
	if err != nil {
		t.Fatal(err)
	}
	if expect := f.answer(want); !maps.Equal(got, expect) {
		t.Fatalf("answers differ:\n%s", diffLocations(got, expect))
	}
	if n := f.be.indexGets.Load() - before; n != 0 {
		t.Errorf("read %d index objects: the table did not answer", n)
	}
	if _, err := os.Stat(filepath.Join(stale.lookupCacheDir(), lookupName)); err == nil {
		t.Error("the stale cache was kept")
	}
}
