package restorer

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/chunker"
	"github.com/statepack/statepack/remote/dirbackend"
)

// newBoundsRepo (as archive's bounds tests have it) returns an empty repository on a directory backend, and
// the directory.
func newBoundsRepo(t *testing.T) (*archive.Repository, string) { return newBoundsRepoFor(t) }

// newBoundsRepoFor is newBoundsRepo for a test, benchmark or fuzz target.
func newBoundsRepoFor(t testing.TB) (*archive.Repository, string) {
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

// putListOf stores the list block of refs, with extra blocks beside it in
// one pack, and returns the list's reference.
func putListOf(t *testing.T, r *archive.Repository, refs []format.BlockRef, extra ...[]byte) format.BlockRef {
	t.Helper()
	list := format.EncodeList(nil, refs)
	id := format.Hash(list)
	b := format.NewPackBuilder(1 << 20)
	for _, x := range extra {
		b.Add(format.Hash(x), x, len(x), format.EncodingRaw)
	}
	b.Add(id, list, len(list), format.EncodingRaw)
	pack, data, entries := b.Finish()
	ctx := context.Background()
	if err := r.PutPack(ctx, pack, data); err != nil {
		t.Fatal(err)
	}
	if _, err := r.PutIndex(ctx, []format.IndexPack{{Pack: pack, Entries: entries}}); err != nil {
		t.Fatal(err)
	}
	return format.BlockRef{ID: id, Size: uint32(len(list))}
}

// listedManifest is a manifest of one file of size bytes whose blocks
// are in list named times.
func listedManifest(list format.BlockRef, times int, size int64) []byte {
	lists := make([]format.BlockRef, times)
	for i := range lists {
		lists[i] = list
	}
	return format.EncodeManifest(&format.Manifest{Version: format.ManifestV2, State: "s", Entries: []format.Entry{
		{Path: "f", Type: format.TypeFile, Mode: 0o644, Size: size, Lists: lists},
	}})
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
