package restorer

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/saver"
	"github.com/statepack/statepack/archive/scan"
	"github.com/statepack/statepack/archive/statcache"
)

// putZeroList stores a one-byte block of zero and a list block naming it
// format.ListEntries times, and returns the list's reference: named n
// times by a manifest, it is a file of n*format.ListEntries zero bytes,
// written as holes.
func putZeroList(t *testing.T, r *archive.Repository) format.BlockRef {
	t.Helper()
	zero := []byte{0}
	refs := make([]format.BlockRef, format.ListEntries)
	for i := range refs {
		refs[i] = format.BlockRef{ID: format.Hash(zero), Size: 1}
	}
	return putListOf(t, r, refs, zero)
}

// TestRestoreListBombAllocs: a 3.6 MB manifest naming one list block
// 100,000 times (3.2 million block references, 36 bytes each) would cost
// over 100 MiB, and the stat cache as much again, if restore expanded
// every file's list blocks before writing anything. Restore walks
// each file's blocks a list block at a time while it writes it: it
// allocates what it writes with, and the stat cache records the file by
// its list blocks. The file comes out right, and a second restore finds
// it identical.
func TestRestoreListBombAllocs(t *testing.T) {
	r, _ := newBoundsRepo(t)
	ctx := context.Background()
	list := putZeroList(t, r)
	const times = 100_000
	id, err := r.PutManifestBytes(ctx, listedManifest(list, times, times*format.ListEntries))
	if err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	o := Options{DataDir: filepath.Join(base, "data"), CacheDir: filepath.Join(base, "cache"), Snapshot: id}
	var res *Result
	alloc := allocated(func() { res, err = Restore(ctx, r, o) })
	if err != nil {
		t.Fatal(err)
	}
	if alloc > 48<<20 && !raceDetector {
		t.Errorf("restore allocated %d MiB for %d block references, want under 48 MiB", alloc>>20, times*format.ListEntries)
	}
	st, err := os.Stat(filepath.Join(o.DataDir, "f"))
	if err != nil || st.Size() != times*format.ListEntries || res.FilesWritten != 1 {
		t.Fatalf("restored %v (%v), %d files written; want one file of %d bytes", st, err, res.FilesWritten, times*format.ListEntries)
	}
	data, err := os.ReadFile(filepath.Join(o.DataDir, "f"))
	if err != nil || !format.AllZero(data) {
		t.Fatalf("restored file is not all zeros: %v", err)
	}
	res, err = Restore(ctx, r, o)
	if err != nil || res.FilesSkipped != 1 || res.FilesWritten != 0 {
		t.Errorf("second restore: %+v, %v; want the file skipped as identical", res, err)
	}
	// The stat cache records the file by its lists alone: a save reads it
	// again instead of taking blocks the cache does not hold.
	if ce := statcache.LoadStatCache(o.CacheDir, o.DataDir).Files["f"]; ce == nil || len(ce.Blocks) != 0 || len(ce.Lists) != times {
		t.Fatalf("stat cache entry %+v, want the file's %d list references alone", ce, times)
	}
	saved, err := saver.Save(ctx, r, saver.Options{DataDir: o.DataDir, State: "again", CacheDir: o.CacheDir})
	if err != nil {
		t.Fatal(err)
	}
	m, err := r.LoadManifest(ctx, saved.Snapshot)
	if err != nil || len(m.Entries) != 1 || format.BlocksSize(m.Entries[0].Blocks) != times*format.ListEntries {
		t.Fatalf("saved again: %v, %+v; want the file's %d bytes in its blocks", err, m, times*format.ListEntries)
	}
}

// TestStatTreeRecordsWhatRestoreDid: the stat cache records a restored
// list file's blocks expanded when they are cut as the repository cuts
// (the next save then reads nothing), and by its list blocks alone when
// they are far smaller than that and beyond statCacheBlocks: a list of
// one-byte blocks named 40,000 times would cost the cache 46 MB for a
// file of 1.3 MB.
func TestStatTreeRecordsWhatRestoreDid(t *testing.T) {
	const times = 40_000
	const minBlock = 16 << 10
	for _, tc := range []struct {
		name      string
		blockSize uint32
		expanded  bool
	}{
		{"blocks of 64 KiB", 64 << 10, true},
		{"blocks of one byte", 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			refs := make([]format.BlockRef, format.ListEntries)
			for i := range refs {
				refs[i] = format.BlockRef{ID: format.Hash([]byte{byte(i)}), Size: tc.blockSize}
			}
			list := format.BlockRef{ID: format.Hash([]byte("list")), Size: format.ListEntries * format.ListEntrySize}
			e := format.Entry{Path: "f", Type: format.TypeFile, Size: int64(times) * format.ListEntries * int64(tc.blockSize)}
			for range times {
				e.Lists = append(e.Lists, list)
			}
			lists := &format.BlockLists{Lists: map[format.ID][]format.BlockRef{list.ID: refs}}
			c := statTree([]format.Entry{e}, lists, minBlock, nil, []*scan.FileStat{{Size: e.Size, MTime: 1, CTime: 1, Ino: 1}})
			got := c.Files["f"]
			if got == nil || (len(got.Blocks) == times*format.ListEntries) != tc.expanded || len(got.Lists) != times {
				t.Fatalf("recorded %d blocks and %d lists, want expanded %v", len(got.Blocks), len(got.Lists), tc.expanded)
			}
			if !tc.expanded && len(got.Blocks) != 0 {
				t.Errorf("recorded %d blocks of a file recorded by its lists", len(got.Blocks))
			}
		})
	}
}
