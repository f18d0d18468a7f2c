package archive

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDamagedStatCacheIsNotTrusted: a stat cache entry whose blocks do
// not add up to the file's size (two restores at once left one) is not
// used; the file is read, and the snapshot's blocks add up to its size.
func TestDamagedStatCacheIsNotTrusted(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	be, err := NewDirBackend(filepath.Join(base, "store"), true)
	if err != nil {
		t.Fatal(err)
	}
	r, err := OpenOrInit(ctx, be)
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
	if _, err := r.Save(ctx, SaveOptions{DataDir: dir, State: "s", CacheDir: cache}); err != nil {
		t.Fatal(err)
	}
	c := loadStatCache(cache, dir)
	if c == nil || c.Files["long"] == nil || c.Files["short"] == nil {
		t.Fatalf("no stat cache recorded: %+v", c)
	}
	c.Files["long"].Blocks = c.Files["short"].Blocks
	if err := saveStatCache(cache, dir, c); err != nil {
		t.Fatal(err)
	}
	res, err := r.Save(ctx, SaveOptions{DataDir: dir, State: "s", CacheDir: cache})
	if err != nil {
		t.Fatalf("save with a damaged stat cache: %v", err)
	}
	m, err := r.LoadManifest(ctx, res.Snapshot)
	if err != nil {
		t.Fatalf("the snapshot saved with a damaged stat cache: %v", err)
	}
	if err := checkFileSizes(m.Entries); err != nil || res.FilesRead != 1 {
		t.Fatalf("files read %d, sizes: %v", res.FilesRead, err)
	}
}

// TestCheckFileSizes: a manifest whose file's blocks do not add up to
// its size is refused before commit, naming the file.
func TestCheckFileSizes(t *testing.T) {
	ok := []Entry{{Path: "d", Type: TypeDir}, {Path: "d/f", Type: TypeFile, Size: 7, Blocks: []BlockRef{{Size: 3}, {Size: 4}}}, {Path: "e", Type: TypeFile}}
	if err := checkFileSizes(ok); err != nil {
		t.Fatal(err)
	}
	bad := append(ok, Entry{Path: "grew", Type: TypeFile, Size: 9, Blocks: []BlockRef{{Size: 3}}})
	if err := checkFileSizes(bad); err == nil || !strings.Contains(err.Error(), "grew: its blocks add up to 3 bytes but it is 9 bytes long") {
		t.Fatalf("got %v", err)
	}
}

// TestFlockHolderIn reads the holder of a DATA_DIR lock from /proc/locks.
func TestFlockHolderIn(t *testing.T) {
	locks := "1: POSIX  ADVISORY  WRITE 77 08:01:1234 0 EOF\n" +
		"2: FLOCK  ADVISORY  WRITE 4242 08:01:1234 0 EOF\n" +
		"2: -> FLOCK  ADVISORY  WRITE 99 08:01:1234 0 EOF\n" +
		"3: FLOCK  ADVISORY  WRITE 55 08:01:999 0 EOF\n"
	dev := uint64(8<<8 | 1)
	for _, tc := range []struct {
		ino  uint64
		want int
	}{{1234, 4242}, {999, 55}, {1, 0}} {
		if got := flockHolderIn(locks, dev, tc.ino); got != tc.want {
			t.Errorf("inode %d: holder %d, want %d", tc.ino, got, tc.want)
		}
	}
}
