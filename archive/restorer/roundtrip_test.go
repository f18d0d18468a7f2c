package restorer_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/maintain"
	"github.com/statepack/statepack/archive/restorer"
	"github.com/statepack/statepack/internal/treetest"
	"github.com/statepack/statepack/remote/dirbackend"
)

func TestRoundTripAwkwardTree(t *testing.T) {
	r, cache := testRepo(t)
	src, want := awkwardDir(t)
	res := save(t, r, cache, src, "s1")
	if res.Files != 9 || res.Dirs != 13 || res.Symlinks != 3 {
		t.Errorf("files, dirs, symlinks = %d, %d, %d, want 9, 13, 3", res.Files, res.Dirs, res.Symlinks)
	}
	dst := filepath.Join(t.TempDir(), "new", "parents", "data")
	restore(t, r, cache, dst, res.Snapshot)
	treetest.AssertEqual(t, want, treetest.MustRead(t, dst))
}

func TestRestoreInPlaceRemovesExtraAndSkipsIdentical(t *testing.T) {
	r, cache := testRepo(t)
	dir, want := awkwardDir(t)
	first := save(t, r, cache, dir, "s")
	// Change the tree: add, modify, replace a dir by a file, a file by a dir.
	treetest.Write(t, dir, map[string]treetest.Spec{"extra/x": {Content: "x"}, "exec.sh": {Content: "changed"}})
	if err := os.RemoveAll(filepath.Join(dir, "emptydir")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "empty")); err != nil {
		t.Fatal(err)
	}
	treetest.Write(t, dir, map[string]treetest.Spec{"emptydir": {Content: "now a file"}, "empty/inner": {Content: "x"}})
	res := restore(t, r, cache, dir, first.Snapshot)
	treetest.AssertEqual(t, want, treetest.MustRead(t, dir))
	if res.Backup == nil {
		t.Fatal("changed DATA_DIR was not saved before restore")
	}
	// Restoring again changes nothing and writes nothing.
	pastRacyWindow()
	res = restore(t, r, cache, dir, first.Snapshot)
	if res.FilesWritten != 0 || res.Backup != nil {
		t.Fatalf("no-op restore wrote %d files, backup %v", res.FilesWritten, res.Backup != nil)
	}
	treetest.AssertEqual(t, want, treetest.MustRead(t, dir))
	// A directory whose mode or mtime alone changed gets them back, though
	// no file in it is written.
	a := filepath.Join(dir, "a")
	if err := os.Chmod(a, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(dir, "a", "b"), time.Unix(1, 0), time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	restore(t, r, cache, dir, first.Snapshot)
	treetest.AssertEqual(t, want, treetest.MustRead(t, dir))
}

func TestNoOpSaveReadsNothing(t *testing.T) {
	r, cache := testRepo(t)
	dir, _ := awkwardDir(t)
	pastRacyWindow()
	save(t, r, cache, dir, "s")
	res := save(t, r, cache, dir, "s")
	if res.FilesRead != 0 || res.NewBlocks != 0 {
		t.Fatalf("no-op save read %d files, stored %d blocks", res.FilesRead, res.NewBlocks)
	}
	v, err := maintain.Verify(context.Background(), r, maintain.VerifyOptions{ReadData: true})
	if err != nil || !v.OK() {
		t.Fatalf("verify: %v %+v", err, v)
	}
}

// TestSwitchReusesUnchangedBlocks: switching between two versions of a
// large file that differ in the middle copies the unchanged blocks from
// the file on disk and still ends exact.
func TestSwitchReusesUnchangedBlocks(t *testing.T) {
	r, cache := testRepo(t)
	dir := filepath.Join(t.TempDir(), "data")
	content := []byte(strings.Repeat("page of a database, ", 400000)) // 8 MB
	for i := range content {
		content[i] ^= byte(i * 2654435761 >> 24)
	}
	treetest.Write(t, dir, map[string]treetest.Spec{"db": {Content: string(content)}})
	v1tree := treetest.MustRead(t, dir)
	v1 := save(t, r, cache, dir, "s")
	copy(content[4<<20:], "a changed page in the middle")
	treetest.Write(t, dir, map[string]treetest.Spec{"db": {Content: string(content)}})
	pastRacyWindow()
	save(t, r, cache, dir, "s")
	res := restore(t, r, cache, dir, v1.Snapshot)
	treetest.AssertEqual(t, v1tree, treetest.MustRead(t, dir))
	if res.FilesWritten != 1 || res.BytesReused < int64(len(content))*3/4 {
		t.Fatalf("switch rewrote %d files and reused only %d of %d bytes", res.FilesWritten, res.BytesReused, len(content))
	}
}

// TestSaveRightAfterWritesIsTrusted: files saved the moment they were
// written (a test stage ends, CI saves) are read after their racy window,
// so the stat cache vouches for them: the next save reads nothing and a
// switch back copies the unchanged blocks from disk instead of hashing
// and rewriting the whole file.
func TestSaveRightAfterWritesIsTrusted(t *testing.T) {
	r, cache := testRepo(t)
	dir := filepath.Join(t.TempDir(), "data")
	content := []byte(strings.Repeat("page of a database, ", 400000)) // 8 MB
	for i := range content {
		content[i] ^= byte(i * 2654435761 >> 24)
	}
	treetest.Write(t, dir, map[string]treetest.Spec{"db": {Content: string(content)}, "small": {Content: "x"}})
	v1tree := treetest.MustRead(t, dir)
	v1 := save(t, r, cache, dir, "s")
	if res := save(t, r, cache, dir, "s"); res.FilesRead != 0 {
		t.Fatalf("save right after a save read %d files again", res.FilesRead)
	}
	copy(content[4<<20:], "a changed page in the middle")
	treetest.Write(t, dir, map[string]treetest.Spec{"db": {Content: string(content)}})
	save(t, r, cache, dir, "s")
	res := restore(t, r, cache, dir, v1.Snapshot)
	treetest.AssertEqual(t, v1tree, treetest.MustRead(t, dir))
	if res.Backup != nil || res.FilesWritten != 1 || res.BytesReused < int64(len(content))*3/4 {
		t.Fatalf("switch right after a save: backup %v, rewrote %d files, reused %d of %d bytes",
			res.Backup != nil, res.FilesWritten, res.BytesReused, len(content))
	}
}

// TestRestoreRemovesStaleTemps: the temporary files a killed restore left
// (a file, a directory of them, one in a read-only directory) are removed
// by the next restore, found by the same walk that compares the tree.
func TestRestoreRemovesStaleTemps(t *testing.T) {
	r, cache := testRepo(t)
	dir, want := awkwardDir(t)
	saved := save(t, r, cache, dir, "s")
	rodir := filepath.Join(dir, "rodir")
	if err := os.Chmod(rodir, 0o755); err != nil {
		t.Fatal(err)
	}
	stale := []string{".statepack-tmp-0000000000001234", "a/b/.statepack-tmp-000000000000abcd", "rodir/.statepack-tmp-0000000000000005"}
	for _, rel := range stale {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("half written"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(rodir, 0o555); err != nil {
		t.Fatal(err)
	}
	pastRacyWindow()
	restore(t, r, cache, dir, saved.Snapshot)
	for _, rel := range stale {
		if _, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(rel))); !os.IsNotExist(err) {
			t.Errorf("%s left in DATA_DIR (%v)", rel, err)
		}
	}
	treetest.AssertEqual(t, want, treetest.MustRead(t, dir))
}

// TestDataDirThroughSymlink: a DATA_DIR reached through a symlink (a
// volume mounted elsewhere) is saved with its content, and restored into
// the directory the link points at.
func TestDataDirThroughSymlink(t *testing.T) {
	r, cache := testRepo(t)
	real, want := awkwardDir(t)
	link := filepath.Join(t.TempDir(), "data")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	saved := save(t, r, cache, link, "s")
	if saved.Files == 0 {
		t.Fatal("a DATA_DIR reached through a symlink was saved empty")
	}
	if err := os.RemoveAll(real); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	restore(t, r, cache, link, saved.Snapshot)
	treetest.AssertEqual(t, want, treetest.MustRead(t, real))
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link itself was replaced: %v %v", fi, err)
	}
}

// TestRestoreOfIncompleteSnapshotChangesNothing: a snapshot whose blocks
// the store cannot find fails before anything is written, whether
// DATA_DIR is missing (it is not created), has other content (left as it
// was), or is a file (reported as such); the walk of DATA_DIR that runs
// meanwhile changes none of that.
func TestRestoreOfIncompleteSnapshotChangesNothing(t *testing.T) {
	ctx := context.Background()
	r, cache := testRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	treetest.Write(t, src, map[string]treetest.Spec{"a": {Content: strings.Repeat("statepack ", 20000)}, "d/b": {Content: "small"}})
	saved := save(t, r, cache, src, "s")
	root := r.Backend().(*dirbackend.Backend).Root()
	if err := os.RemoveAll(filepath.Join(root, "index")); err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	other := filepath.Join(base, "other")
	treetest.Write(t, other, map[string]treetest.Spec{"keep": {Content: "mine"}})
	before := treetest.MustRead(t, other)
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, dir, wantErr string }{
		{"missing", filepath.Join(base, "missing"), "is missing; nothing was changed"},
		{"other content", other, "is missing; nothing was changed"},
		{"a file", file, "is missing; nothing was changed"},
	} {
		be, _ := dirbackend.New(root, false)
		r2, err := archive.Open(ctx, be)
		if err != nil {
			t.Fatal(err)
		}
		_, err = restorer.Restore(ctx, r2, restorer.Options{DataDir: tc.dir, Snapshot: saved.Snapshot, CacheDir: cache})
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: restore of an incomplete snapshot: %v, want %q", tc.name, err, tc.wantErr)
		}
	}
	if _, err := os.Lstat(filepath.Join(base, "missing")); !os.IsNotExist(err) {
		t.Errorf("a failed restore created DATA_DIR (%v)", err)
	}
	treetest.AssertEqual(t, before, treetest.MustRead(t, other))
	if b, err := os.ReadFile(file); err != nil || string(b) != "not a directory" {
		t.Errorf("the file in DATA_DIR's place changed: %q, %v", b, err)
	}
}

// TestNoOpRestoreFromStatCache: restoring the snapshot DATA_DIR already
// is needs neither the index nor the block lists: with the index gone it
// still succeeds and writes nothing. Any difference the full restore
// would mend (a path more or less, a mode, an mtime, a symlink's target,
// a file's content, a leftover temporary file, an interrupted restore)
// sends it down the full path, which here fails for want of the index.
func TestNoOpRestoreFromStatCache(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, dir, cache string)
	}{
		{"nothing", nil},
		{"a file more", func(t *testing.T, dir, _ string) {
			treetest.Write(t, dir, map[string]treetest.Spec{"extra": {Content: "x"}})
		}},
		{"a file less", func(t *testing.T, dir, _ string) { must(t, os.Remove(filepath.Join(dir, "a.b"))) }},
		{"a directory's mode", func(t *testing.T, dir, _ string) { must(t, os.Chmod(filepath.Join(dir, "a", "b"), 0o700)) }},
		{"a directory's mtime", func(t *testing.T, dir, _ string) {
			must(t, os.Chtimes(filepath.Join(dir, "with space"), time.Unix(1, 0), time.Unix(1, 0)))
		}},
		{"a symlink's target", func(t *testing.T, dir, _ string) {
			p := filepath.Join(dir, "links", "rel")
			must(t, os.Remove(p))
			must(t, os.Symlink("../a.b", p))
		}},
		{"a file's content, same size and mtime", func(t *testing.T, dir, _ string) {
			p := filepath.Join(dir, "exec.sh")
			fi, err := os.Stat(p)
			must(t, err)
			must(t, os.WriteFile(p, []byte("#!/bin/X\n"), 0o755))
			must(t, os.Chtimes(p, fi.ModTime(), fi.ModTime()))
		}},
		{"a leftover temporary file", func(t *testing.T, dir, _ string) {
			treetest.Write(t, dir, map[string]treetest.Spec{".statepack-tmp-0000000000000001": {Content: "half"}})
		}},
		{"an interrupted restore", func(t *testing.T, dir, cache string) {
			must(t, os.WriteFile(restorer.RestoreMarkerPath(cache, dir), []byte("interrupted"), 0o644))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			r, cache := testRepo(t)
			src, _ := awkwardDir(t)
			saved := save(t, r, cache, src, "s")
			dir := filepath.Join(t.TempDir(), "data")
			restore(t, r, cache, dir, saved.Snapshot)
			want := treetest.MustRead(t, dir)
			pastRacyWindow()
			if tc.change != nil {
				tc.change(t, dir, cache)
			}
			root := r.Backend().(*dirbackend.Backend).Root()
			must(t, os.RemoveAll(filepath.Join(root, "index")))
			be, _ := dirbackend.New(root, false)
			r2, err := archive.Open(ctx, be)
			must(t, err)
			res, err := restorer.Restore(ctx, r2, restorer.Options{DataDir: dir, Snapshot: saved.Snapshot, CacheDir: cache})
			if tc.change != nil {
				if err == nil {
					t.Fatalf("restore after %s took the no-op path: %+v", tc.name, res)
				}
				return
			}
			if err != nil {
				t.Fatalf("no-op restore needed the index: %v", err)
			}
			files := 0 // and symlinks: what a restore counts as unchanged
			for _, spec := range awkward {
				if !spec.Dir {
					files++
				}
			}
			if res.FilesWritten != 0 || res.FilesSkipped != files {
				t.Errorf("no-op restore wrote %d files, skipped %d; want 0 and the %d files and symlinks", res.FilesWritten, res.FilesSkipped, files)
			}
			treetest.AssertEqual(t, want, treetest.MustRead(t, dir))
		})
	}
}
