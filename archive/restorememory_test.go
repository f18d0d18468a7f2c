package archive

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// putZeroList stores a one-byte block of zero and a list block naming it
// listEntries times, and returns the list's reference: named n times by
// a manifest, it is a file of n*listEntries zero bytes, written as holes.
func putZeroList(t *testing.T, r *Repository) BlockRef {
	t.Helper()
	zero := []byte{0}
	refs := make([]BlockRef, listEntries)
	for i := range refs {
		refs[i] = BlockRef{ID: Hash(zero), Size: 1}
	}
	return putListOf(t, r, refs, zero)
}

// TestRestoreListBombAllocs: restore expanded every file's list blocks
// before writing anything, so a 3.6 MB manifest naming one list block
// 100,000 times (3.2 million block references, 36 bytes each) cost
// restore over 100 MiB, and the stat cache as much again. Restore walks
// each file's blocks a list block at a time while it writes it: it
// allocates what it writes with, and the stat cache records the file by
// its list blocks. The file comes out right, and a second restore finds
// it identical.
func TestRestoreListBombAllocs(t *testing.T) {
	r, _ := newBoundsRepo(t)
	ctx := context.Background()
	list := putZeroList(t, r)
	const times = 100_000
	id, err := r.PutManifestBytes(ctx, listedManifest(list, times, times*listEntries))
	if err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	o := RestoreOptions{DataDir: filepath.Join(base, "data"), CacheDir: filepath.Join(base, "cache"), Snapshot: id}
	var res *RestoreResult
	alloc := allocated(func() { res, err = r.Restore(ctx, o) })
	if err != nil {
		t.Fatal(err)
	}
	if alloc > 48<<20 && !raceDetector {
		t.Errorf("restore allocated %d MiB for %d block references, want under 48 MiB", alloc>>20, times*listEntries)
	}
	st, err := os.Stat(filepath.Join(o.DataDir, "f"))
	if err != nil || st.Size() != times*listEntries || res.FilesWritten != 1 {
		t.Fatalf("restored %v (%v), %d files written; want one file of %d bytes", st, err, res.FilesWritten, times*listEntries)
	}
	data, err := os.ReadFile(filepath.Join(o.DataDir, "f"))
	if err != nil || !allZero(data) {
		t.Fatalf("restored file is not all zeros: %v", err)
	}
	res, err = r.Restore(ctx, o)
	if err != nil || res.FilesSkipped != 1 || res.FilesWritten != 0 {
		t.Errorf("second restore: %+v, %v; want the file skipped as identical", res, err)
	}
	// The stat cache records the file by its lists alone: a save reads it
	// again instead of taking blocks the cache does not hold.
	if ce := loadStatCache(o.CacheDir, o.DataDir).Files["f"]; ce == nil || len(ce.Blocks) != 0 || len(ce.Lists) != times {
		t.Fatalf("stat cache entry %+v, want the file's %d list references alone", ce, times)
	}
	saved, err := r.Save(ctx, SaveOptions{DataDir: o.DataDir, State: "again", CacheDir: o.CacheDir})
	if err != nil {
		t.Fatal(err)
	}
	m, err := r.LoadManifest(ctx, saved.Snapshot)
	if err != nil || len(m.Entries) != 1 || blocksSize(m.Entries[0].Blocks) != times*listEntries {
		t.Fatalf("saved again: %v, %+v; want the file's %d bytes in its blocks", err, m, times*listEntries)
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
			refs := make([]BlockRef, listEntries)
			for i := range refs {
				refs[i] = BlockRef{ID: Hash([]byte{byte(i)}), Size: tc.blockSize}
			}
			list := BlockRef{ID: Hash([]byte("list")), Size: listEntries * listEntrySize}
			e := Entry{Path: "f", Type: TypeFile, Size: int64(times) * listEntries * int64(tc.blockSize)}
			for range times {
				e.Lists = append(e.Lists, list)
			}
			lists := &BlockLists{lists: map[ID][]BlockRef{list.ID: refs}}
			c := statTree([]Entry{e}, lists, minBlock, nil, []*fileStat{{Size: e.Size, MTime: 1, CTime: 1, Ino: 1}})
			got := c.Files["f"]
			if got == nil || (len(got.Blocks) == times*listEntries) != tc.expanded || len(got.Lists) != times {
				t.Fatalf("recorded %d blocks and %d lists, want expanded %v", len(got.Blocks), len(got.Lists), tc.expanded)
			}
			if !tc.expanded && len(got.Blocks) != 0 {
				t.Errorf("recorded %d blocks of a file recorded by its lists", len(got.Blocks))
			}
		})
	}
}
