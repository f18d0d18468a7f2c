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
	list := encodeList(nil, refs)
	id := Hash(list)
	b := NewPackBuilder(1 << 20)
	b.Add(Hash(zero), zero, len(zero), EncodingRaw)
	b.Add(id, list, len(list), EncodingRaw)
	pack, data, entries := b.Finish()
	ctx := context.Background()
	if err := r.PutPack(ctx, pack, data); err != nil {
		t.Fatal(err)
	}
	if _, err := r.PutIndex(ctx, []IndexPack{{Pack: pack, Entries: entries}}); err != nil {
		t.Fatal(err)
	}
	return BlockRef{ID: id, Size: uint32(len(list))}
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
	if alloc > 48<<20 {
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
}
