package transfer_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/maintain"
	"github.com/statepack/statepack/archive/restorer"
	"github.com/statepack/statepack/archive/transfer"
	"github.com/statepack/statepack/internal/treetest"
	"github.com/statepack/statepack/remote/backend"
	"github.com/statepack/statepack/remote/dirbackend"
)

// awkwardTree is what a restore must get exactly right: modes, a
// read-only directory, empty directories, symlinks (one dangling), an
// empty file, a file of zeros, the same content in several files, large
// files whose block lists live in list blocks, a page-cut SQLite
// database, and more files than the scatter restore keeps open.
func awkwardTree() map[string]treetest.Spec {
	files := map[string]treetest.Spec{
		"api_states/sqs/us-east-1/store.pkl": {Content: bigContent(1, 3<<20)},
		"api_states/s3/copy-a.bin":           {Content: bigContent(2, 1<<20)},
		"api_states/s3/copy-b.bin":           {Content: bigContent(2, 1<<20), Mode: 0o600},
		"dynamodb/orders.db":                 {Content: treetest.SQLite(600, 7)},
		"bin/run.sh":                         {Content: "#!/bin/sh\necho hi\n", Mode: 0o755},
		"empty.txt":                          {Content: ""},
		"zeros.bin":                          {Content: string(make([]byte, 700<<10))},
		"locked/inside.txt":                  {Content: "read-only parent"},
		"locked":                             {Dir: true, Mode: 0o555},
		"empty/dir/deep":                     {Dir: true},
		"link-to-store":                      {Link: "api_states/sqs/us-east-1/store.pkl"},
		"dangling":                           {Link: "../nowhere"},
	}
	for i := range 80 {
		files["s3/objects/"+string(rune('a'+i%26))+"/"+strings.Repeat("x", 1+i/26)] = treetest.Spec{Content: bigContent(byte(10+i), 5000+i*331)}
	}
	return files
}

// writeSparse adds a file with data, a 6 MiB hole and data again.
func writeSparse(t *testing.T, root string) {
	t.Helper()
	f, err := os.Create(filepath.Join(root, "sparse.img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte(bigContent(3, 300<<10)), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte(bigContent(4, 200<<10)), 300<<10+6<<20); err != nil {
		t.Fatal(err)
	}
}

// allocated is the bytes a file occupies on disk.
func allocated(t *testing.T, p string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

// indexedBlocks lists every block id a repository's index knows.
func indexedBlocks(t *testing.T, r *archive.Repository) []string {
	t.Helper()
	if _, err := r.LoadIndex(context.Background()); err != nil {
		t.Fatal(err)
	}
	var ids []string
	m, err := r.LoadManifest(context.Background(), mustHead(t, r, "ci"))
	if err != nil {
		t.Fatal(err)
	}
	m.AllBlocks(func(_ *format.Entry, b format.BlockRef) {
		if !r.Index().Has(b.ID) {
			t.Errorf("block %s of the snapshot is not in %s", b.ID.Short(), r.Location())
		}
	})
	for _, b := range m.ListBlocks() {
		if !r.Index().Has(b.ID) {
			t.Errorf("list block %s is not in %s", b.ID.Short(), r.Location())
		}
	}
	m.AllBlocks(func(_ *format.Entry, b format.BlockRef) { ids = append(ids, b.ID.String()) })
	slices.Sort(ids)
	return slices.Compact(ids)
}

func mustHead(t *testing.T, r *archive.Repository, state string) format.ID {
	t.Helper()
	id, _, err := r.ReadRef(context.Background(), state)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func restoreOpts(s *store) *restorer.Options {
	return &restorer.Options{DataDir: s.data, CacheDir: s.cache}
}

// TestPullRestoreScatter: pull --restore into a missing DATA_DIR restores
// while it receives, and ends exactly where pull then restore ends: the
// same tree (sparse holes included), the same state and blocks in the
// store, a stat cache that makes the next restore a no-op, no marker.
func TestPullRestoreScatter(t *testing.T) { forEachRemote(t, testPullRestoreScatter) }

func testPullRestoreScatter(t *testing.T, newRemote func(*testing.T) *archive.Repository) {
	ctx := context.Background()
	a, rem := newStore(t), newRemote(t)
	treetest.Write(t, a.data, awkwardTree())
	writeSparse(t, a.data)
	a.savePush(t, rem, "ci")
	want := treetest.MustRead(t, a.data)

	// The fast path: a fresh store, DATA_DIR missing.
	b := newStore(t)
	res, err := transfer.Pull(ctx, b.repo, rem, transfer.PullOptions{State: "ci", Restore: restoreOpts(b)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Restore == nil {
		t.Fatal("pull into a missing DATA_DIR did not restore as it received")
	}
	treetest.AssertEqual(t, want, treetest.MustRead(t, b.data))
	// Into an empty store the pull relied on nothing it did not write:
	// its ref waited for its own objects, not a syncfs of the DATA_DIR
	// files it wrote.
	if syncs, fsyncs := b.repo.Backend().(*dirbackend.Backend).FlushCounts(); syncs != 0 || fsyncs == 0 {
		t.Errorf("pull --restore into an empty store: %d syncfs and %d fsyncs, want none and some", syncs, fsyncs)
	}
	if n := allocated(t, filepath.Join(b.data, "sparse.img")); n > 2<<20 {
		t.Errorf("sparse.img takes %d bytes on disk: its hole was written", n)
	}
	if n := allocated(t, filepath.Join(b.data, "zeros.bin")); n > 0 {
		t.Errorf("zeros.bin takes %d bytes on disk: its zero blocks were written", n)
	}
	if _, ok := restorer.InterruptedRestore(b.cache, b.data); ok {
		t.Error("the restore marker is still there")
	}
	files := 0
	for _, n := range want {
		if n.Type == "file" {
			files++
		}
	}
	if res.Restore.FilesWritten != files || res.Restore.Resumed {
		t.Errorf("restore result %+v, want %d files written", res.Restore, files)
	}

	// The old way: pull, then restore.
	c := newStore(t)
	cres, err := transfer.Pull(ctx, c.repo, rem, transfer.PullOptions{State: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	if cres.Restore != nil {
		t.Fatal("pull without Restore restored")
	}
	if _, err := restorer.Restore(ctx, c.repo, restorer.Options{DataDir: c.data, Snapshot: cres.Snapshot, CacheDir: c.cache}); err != nil {
		t.Fatal(err)
	}
	treetest.AssertEqual(t, treetest.MustRead(t, c.data), treetest.MustRead(t, b.data))
	if res.Blocks != cres.Blocks || res.Bytes != cres.Bytes || res.Snapshot != cres.Snapshot {
		t.Errorf("pull --restore received %d blocks (%d bytes) of %s; pull alone %d (%d) of %s",
			res.Blocks, res.Bytes, res.Snapshot.Short(), cres.Blocks, cres.Bytes, cres.Snapshot.Short())
	}
	if got, old := indexedBlocks(t, b.repo), indexedBlocks(t, c.repo); !slices.Equal(got, old) {
		t.Errorf("the store after pull --restore indexes %d blocks, after pull %d", len(got), len(old))
	}
	if v, err := maintain.Verify(ctx, b.repo, maintain.VerifyOptions{ReadData: true}); err != nil || len(v.Problems) > 0 {
		t.Errorf("verify the store after pull --restore: %v %+v", err, v)
	}

	// The stat cache it recorded makes a restore (and a save) a no-op.
	again, err := restorer.Restore(ctx, b.repo, restorer.Options{DataDir: b.data, Snapshot: res.Snapshot, CacheDir: b.cache})
	if err != nil {
		t.Fatal(err)
	}
	if again.FilesWritten != 0 || again.Backup != nil {
		t.Errorf("restore after pull --restore wrote %d files (backup %+v), want none", again.FilesWritten, again.Backup)
	}

	// A DATA_DIR that holds something: Pull leaves the restore to the
	// caller, who may reuse or back up what is there.
	d := newStore(t)
	treetest.Write(t, d.data, map[string]treetest.Spec{"mine.txt": {Content: "unsaved"}})
	dres, err := transfer.Pull(ctx, d.repo, rem, transfer.PullOptions{State: "ci", Restore: restoreOpts(d)})
	if err != nil {
		t.Fatal(err)
	}
	if dres.Restore != nil {
		t.Error("pull restored into a DATA_DIR that was not empty")
	}
	if _, err := os.Stat(filepath.Join(d.data, "mine.txt")); err != nil {
		t.Errorf("pull touched the DATA_DIR it did not restore: %v", err)
	}
}

// TestPullRestoreScatterReusesLocalBlocks: a store that has the previous
// version pulls the next one into an empty DATA_DIR: the blocks it
// receives go straight to the files, the ones it had are read from its
// packs.
func TestPullRestoreScatterReusesLocalBlocks(t *testing.T) {
	ctx := context.Background()
	a, rem := newStore(t), dirRemote(t)
	treetest.Write(t, a.data, awkwardTree())
	a.savePush(t, rem, "ci")
	b := newStore(t)
	if _, err := transfer.Pull(ctx, b.repo, rem, transfer.PullOptions{State: "ci"}); err != nil {
		t.Fatal(err)
	}
	treetest.Write(t, a.data, map[string]treetest.Spec{
		"api_states/sqs/us-east-1/store.pkl": {Content: bigContent(1, 2<<20) + bigContent(9, 1<<20)},
		"new/file.bin":                       {Content: bigContent(11, 400<<10)},
	})
	a.savePush(t, rem, "ci")
	if err := os.MkdirAll(b.data, 0o755); err != nil { // empty, not missing
		t.Fatal(err)
	}
	// A new process on the store: what the first pull wrote is another's.
	be, err := dirbackend.New(b.repo.Backend().(*dirbackend.Backend).Root(), false)
	if err != nil {
		t.Fatal(err)
	}
	if b.repo, err = archive.Open(ctx, be); err != nil {
		t.Fatal(err)
	}
	res, err := transfer.Pull(ctx, b.repo, rem, transfer.PullOptions{State: "ci", Restore: restoreOpts(b)})
	if err != nil {
		t.Fatal(err)
	}
	// It relied on the store's index: one syncfs made that durable before
	// DATA_DIR was written (SettleReads), and the ref then needed only
	// the pull's own objects.
	if syncs, fsyncs := be.FlushCounts(); syncs != 1 || fsyncs == 0 {
		t.Errorf("pull --restore into a store with blocks: %d syncfs and %d fsyncs, want one and some", syncs, fsyncs)
	}
	if res.Restore == nil || res.SkippedBlocks == 0 || res.Blocks == 0 {
		t.Fatalf("want a scatter restore from received and local blocks, got %+v", res)
	}
	treetest.AssertEqual(t, treetest.MustRead(t, a.data), treetest.MustRead(t, b.data))
}

// TestPullRestoreCorruptBlock: a block on the remote that does not match
// its id stops pull --restore with an error naming it, and leaves
// DATA_DIR as it was (missing): no file under its final name, no
// temporary file, no marker, no local state.
func TestPullRestoreCorruptBlock(t *testing.T) {
	ctx := context.Background()
	a, rem := newStore(t), dirRemote(t)
	treetest.Write(t, a.data, awkwardTree())
	a.savePush(t, rem, "ci")
	corruptPacks(t, rem)
	b := newStore(t)
	_, err := transfer.Pull(ctx, b.repo, rem, transfer.PullOptions{State: "ci", Restore: restoreOpts(b)})
	if !errors.Is(err, format.ErrCorrupt) || !strings.Contains(err.Error(), "block ") {
		t.Fatalf("pull --restore of a corrupt remote: %v, want an error naming the corrupt block", err)
	}
	if _, serr := os.Lstat(b.data); !errors.Is(serr, os.ErrNotExist) {
		left, _ := treetest.Read(b.data)
		t.Errorf("DATA_DIR exists after the failed pull --restore: %v", left)
	}
	if _, ok := restorer.InterruptedRestore(b.cache, b.data); ok {
		t.Error("a failed pull --restore left a restore marker")
	}
	if _, _, err := b.repo.ReadRef(ctx, "ci"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("the local state exists after a failed pull: %v", err)
	}

	// Into an existing empty DATA_DIR: it stays, empty.
	if err := os.MkdirAll(b.data, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := transfer.Pull(ctx, b.repo, rem, transfer.PullOptions{State: "ci", Restore: restoreOpts(b)}); !errors.Is(err, format.ErrCorrupt) {
		t.Fatalf("second pull: %v", err)
	}
	if entries, err := os.ReadDir(b.data); err != nil || len(entries) != 0 {
		t.Errorf("DATA_DIR after the failed pull --restore: %v %v, want it empty", entries, err)
	}
}

// corruptPacks flips one byte in the middle of every pack of a directory
// remote, where a block's compressed bytes lie.
func corruptPacks(t *testing.T, rem *archive.Repository) {
	t.Helper()
	root := strings.TrimPrefix(rem.Location(), "file://")
	n := 0
	err := filepath.Walk(filepath.Join(root, "packs"), func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		data[len(data)/3] ^= 0x55
		n++
		return os.WriteFile(p, data, 0o644)
	})
	if err != nil || n == 0 {
		t.Fatalf("corrupt packs under %s: %d packs, %v", root, n, err)
	}
}
