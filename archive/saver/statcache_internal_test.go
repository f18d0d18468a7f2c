package saver

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/statcache"
	"github.com/statepack/statepack/remote/dirbackend"
)

// TestDamagedStatCacheIsNotTrusted: a stat cache entry whose blocks do
// not add up to the file's size (two restores at once left one) is not
// used; the file is read, and the snapshot's blocks add up to its size.
func TestDamagedStatCacheIsNotTrusted(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	be, err := dirbackend.New(filepath.Join(base, "store"), true)
	if err != nil {
		t.Fatal(err)
	}
	r, err := archive.OpenOrInit(ctx, be)
	if err != nil {
		t.Fatal(err)
	}
	cache, dir := filepath.Join(base, "cache"), filepath.Join(base, "data")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"long": "ten bytes!", "short": "five!"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Save(ctx, r, Options{DataDir: dir, State: "s", CacheDir: cache}); err != nil {
		t.Fatal(err)
	}
	c := statcache.LoadStatCache(cache, dir)
	if c == nil || c.Files["long"] == nil || c.Files["short"] == nil {
		t.Fatalf("no stat cache recorded: %+v", c)
	}
	c.Files["long"].Blocks = c.Files["short"].Blocks
	if err := statcache.SaveStatCache(cache, dir, c); err != nil {
		t.Fatal(err)
	}
	res, err := Save(ctx, r, Options{DataDir: dir, State: "s", CacheDir: cache})
	if err != nil {
		t.Fatalf("save with a damaged stat cache: %v", err)
	}
	m, err := r.LoadManifest(ctx, res.Snapshot)
	if err != nil {
		t.Fatalf("the snapshot saved with a damaged stat cache: %v", err)
	}
	if err := CheckFileSizes(m.Entries); err != nil || res.FilesRead != 1 {
		t.Fatalf("files read %d, sizes: %v", res.FilesRead, err)
	}
}

// TestCheckFileSizes: a manifest whose file's blocks do not add up to
// its size is refused before commit, naming the file.
func TestCheckFileSizes(t *testing.T) {
	ok := []format.Entry{{Path: "d", Type: format.TypeDir}, {Path: "d/f", Type: format.TypeFile, Size: 7, Blocks: []format.BlockRef{{Size: 3}, {Size: 4}}}, {Path: "e", Type: format.TypeFile}}
	if err := CheckFileSizes(ok); err != nil {
		t.Fatal(err)
	}
	bad := append(ok, format.Entry{Path: "grew", Type: format.TypeFile, Size: 9, Blocks: []format.BlockRef{{Size: 3}}})
	if err := CheckFileSizes(bad); err == nil || !strings.Contains(err.Error(), "grew: its blocks add up to 3 bytes but it is 9 bytes long") {
		t.Fatalf("got %v", err)
	}
}
