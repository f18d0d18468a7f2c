package lookup_test

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/lookup"
	"github.com/statepack/statepack/chunker"
	"github.com/statepack/statepack/remote/dirbackend"
)

// newBoundsRepo returns an empty repository on a directory backend, and
// the directory.
func newBoundsRepo(t *testing.T) (*archive.Repository, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	be, err := dirbackend.New(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := format.NewConfig(chunker.DefaultParams(), 0)
	if err != nil {
		t.Fatal(err)
	}
	r, err := archive.Init(context.Background(), be, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r, dir
}

// allocated returns the bytes fn allocates.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// sparseObject makes object name in the directory repository dir a
// sparse file of size bytes ending with tail.
func sparseObject(t *testing.T, dir, name string, size int64, tail []byte) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, size); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(tail, size-int64(len(tail))); err != nil {
		t.Fatal(err)
	}
}

// TestLookupTableClaimsBounded: a lookup table on a repository holds
// only entries of the index objects listed, so its header may claim no
// more packs or entries than those hold, and its filter no more bits
// than those entries need: a table claiming 2 million packs (64 MiB of
// tables) beside an index of one small object, with a listed 16 MiB
// filter, is refused from its header and the listing, having allocated
// little of either.
func TestLookupTableClaimsBounded(t *testing.T) {
	r, dir := newBoundsRepo(t)
	ctx := context.Background()
	block := format.PackEntry{ID: format.Hash([]byte("block")), Stored: 8, Raw: 8}
	names, err := r.PutIndex(ctx, []format.IndexPack{{Pack: format.Hash([]byte("pack")), Entries: []format.PackEntry{block}}})
	if err != nil {
		t.Fatal(err)
	}
	object, err := format.ParseID(strings.TrimPrefix(names[0], "index/"))
	if err != nil {
		t.Fatal(err)
	}
	const packs = lookup.MaxLookupTableIDs - 1
	hdr := make([]byte, lookup.LookupHeaderSize, lookup.LookupHeaderSize+32)
	copy(hdr, lookup.LookupMagic)
	binary.LittleEndian.PutUint32(hdr[4:], 1)
	binary.LittleEndian.PutUint32(hdr[8:], packs)
	key := lookup.RepoKey(r.Config())
	copy(hdr[16:], key[:])
	table := format.Hash([]byte("a hostile table"))
	copy(hdr[lookup.LookupHashed:], table[:])
	hdr = append(hdr, object[:]...)
	sparseObject(t, dir, lookup.TableName(table), lookup.LookupHeaderSize+32*(1+packs)+lookup.LookupFanoutSize, nil)
	f, err := os.OpenFile(filepath.Join(dir, filepath.FromSlash(lookup.TableName(table))), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(hdr, 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	sparseObject(t, dir, lookup.FilterName(table), 16<<20, nil)

	r2, err := archive.Open(ctx, r.Backend())
	if err != nil {
		t.Fatal(err)
	}
	r2.SetLookupTableMin(1)
	var found map[format.ID]format.Location
	alloc := allocated(func() { found, err = r2.FindBlocks(ctx, map[format.ID]struct{}{block.ID: {}}) })
	if _, ok := found[block.ID]; err != nil || !ok {
		t.Fatalf("FindBlocks: %v, found %v", err, found)
	}
	if alloc > 4<<20 {
		t.Errorf("allocated %d MiB refusing a table that claims %d packs", alloc>>20, packs)
	}
}
