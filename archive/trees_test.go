package archive_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/restorer"
	"github.com/statepack/statepack/archive/saver"
	"github.com/statepack/statepack/archive/scan"
	"github.com/statepack/statepack/internal/treetest"
	"github.com/statepack/statepack/remote/dirbackend"
)

// fastTempDir is a temp dir on tmpfs when the machine has one: trees of
// 100,000 files are bound by file system metadata, not by statepack.
func fastTempDir(t *testing.T) string {
	t.Helper()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		dir, err := os.MkdirTemp("/dev/shm", "statepack-test-")
		if err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

// TestManySmallFiles: 100,000 small files in a few hundred directories
// round-trip exactly, and a second save reads none of them.
func TestManySmallFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("100,000 files")
	}
	skipUnderRace(t)
	ctx := context.Background()
	base := fastTempDir(t)
	be, _ := dirbackend.New(filepath.Join(base, "store"), true)
	r, err := archive.OpenOrInit(ctx, be)
	if err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(base, "store", "cache")
	src := filepath.Join(base, "src")
	for d := 0; d < 250; d++ {
		dir := filepath.Join(src, fmt.Sprintf("d%03d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for f := 0; f < 400; f++ {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d", f)), []byte(fmt.Sprintf("file %d/%d", d, f)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := treetest.MustRead(t, src)
	res := save(t, r, cache, src, "many")
	if res.Files != 100000 {
		t.Fatalf("saved %d files", res.Files)
	}
	dst := filepath.Join(base, "dst")
	restore(t, r, cache, dst, res.Snapshot)
	treetest.AssertEqual(t, want, treetest.MustRead(t, dst))
}

// TestSparseHugeFile: a file larger than 4 GiB, mostly a hole, is saved as
// a handful of blocks and restored sparse and exact.
func TestSparseHugeFile(t *testing.T) {
	if testing.Short() {
		t.Skip("4 GiB of holes")
	}
	skipUnderRace(t)
	r, cache := testRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	_ = os.MkdirAll(src, 0o755)
	p := filepath.Join(src, "huge.db")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	const size = 4<<30 + 12345
	for _, off := range []int64{0, 1 << 30, 4<<30 + 7, size - 5, 2<<30 - 2} {
		if _, err := f.WriteAt([]byte("data!"), off); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	want := treetest.MustRead(t, src)
	res := save(t, r, cache, src, "sparse")
	if res.StoredBytes > 1<<20 {
		t.Fatalf("stored %d bytes for a file of holes", res.StoredBytes)
	}
	dst := filepath.Join(t.TempDir(), "dst")
	restore(t, r, cache, dst, res.Snapshot)
	treetest.AssertEqual(t, want, treetest.MustRead(t, dst))
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(dst, "huge.db"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Blocks*512 > 64<<20 {
		t.Fatalf("restored file uses %d bytes on disk: not sparse", st.Blocks*512)
	}
}

// TestSpecialFilesSkipped: sockets, FIFOs and devices are left out with a
// warning naming them.
func TestSpecialFilesSkipped(t *testing.T) {
	r, cache := testRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	treetest.Write(t, src, map[string]treetest.Spec{"f": {Content: "x"}})
	if err := syscall.Mkfifo(filepath.Join(src, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	res := save(t, r, cache, src, "s")
	if res.Files != 1 || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "pipe") {
		t.Fatalf("want one warning naming the FIFO: %+v", res)
	}
}

// TestIncludeExcludeAndOnly: globs choose what is saved; restore --only
// touches the chosen paths and leaves the rest of DATA_DIR alone.
func TestIncludeExcludeAndOnly(t *testing.T) {
	ctx := context.Background()
	r, cache := testRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	treetest.Write(t, src, map[string]treetest.Spec{
		"api_states/sqs/a/store.state": {Content: "sqs"},
		"api_states/sns/a/store.state": {Content: "sns"},
		"dynamodb/db.sqlite":           {Content: "db"},
		"tmp/cache.bin":                {Content: "tmp"},
	})
	res, err := saver.Save(ctx, r, saver.Options{DataDir: src, State: "s", CacheDir: cache,
		Filter: scan.Filter{Include: []string{"api_states/**", "dynamodb"}, Exclude: []string{"api_states/sns"}}})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := r.LoadManifest(ctx, res.Snapshot)
	var paths []string
	for _, e := range m.Entries {
		paths = append(paths, e.Path)
	}
	got := strings.Join(paths, ",")
	want := "api_states,api_states/sqs,api_states/sqs/a,api_states/sqs/a/store.state,dynamodb,dynamodb/db.sqlite"
	if got != want {
		t.Fatalf("saved %s\nwant  %s", got, want)
	}
	full := save(t, r, cache, src, "full")
	// Change two services, restore only sqs: sns keeps its change.
	treetest.Write(t, src, map[string]treetest.Spec{"api_states/sqs/a/store.state": {Content: "sqs changed"}, "api_states/sns/a/store.state": {Content: "sns changed"}})
	if _, err := restorer.Restore(ctx, r, restorer.Options{DataDir: src, Snapshot: full.Snapshot, CacheDir: cache, Only: scan.Filter{Include: []string{"api_states/sqs"}}}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{"api_states/sqs/a/store.state": "sqs", "api_states/sns/a/store.state": "sns changed", "tmp/cache.bin": "tmp"} {
		data, _ := os.ReadFile(filepath.Join(src, p))
		if string(data) != want {
			t.Errorf("%s = %q, want %q", p, data, want)
		}
	}
}
