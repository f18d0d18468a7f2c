package datadir_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/statepack/statepack/archive/datadir"
	"github.com/statepack/statepack/archive/restorer"
	"github.com/statepack/statepack/archive/saver"
	"github.com/statepack/statepack/internal/testhook"
	"github.com/statepack/statepack/internal/treetest"
	"github.com/statepack/statepack/remote/dirbackend"
)

// Invariant 8: one writer per DATA_DIR, and a stat cache that vouches only
// for what statepack verified.

// holdDataDir takes the DATA_DIR lock as another statepack would: an
// exclusive flock on the directory. It returns the release.
func holdDataDir(t *testing.T, dir string) func() {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	release := func() { unix.Close(fd) }
	t.Cleanup(release)
	return release
}

func randomContent(seed uint64, n int) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}).Read(b)
	return b
}

// TestDataDirLockRefusesSecondWriter: while another statepack holds
// DATA_DIR, save and restore of it are refused at once (naming the
// holder's PID), or wait for it until their context ends; DATA_DIR is
// left as it was.
func TestDataDirLockRefusesSecondWriter(t *testing.T) {
	r, cache := testRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	treetest.Write(t, src, map[string]treetest.Spec{"a": {Content: "snapshot"}})
	snap := save(t, r, cache, src, "s").Snapshot
	dir := filepath.Join(t.TempDir(), "data")
	treetest.Write(t, dir, map[string]treetest.Spec{"a": {Content: "current"}, "b": {Content: "unsaved"}})
	before := treetest.MustRead(t, dir)
	holdDataDir(t, dir)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		run  func(ctx context.Context) error
		want func(error) bool
	}{
		{"save", context.Background(), func(ctx context.Context) error {
			_, err := saver.Save(ctx, r, saver.Options{DataDir: dir, State: "other", CacheDir: cache})
			return err
		}, isLockedByMe},
		{"restore", context.Background(), func(ctx context.Context) error {
			_, err := restorer.Restore(ctx, r, restorer.Options{DataDir: dir, Snapshot: snap, CacheDir: cache})
			return err
		}, isLockedByMe},
		{"restore waiting until its context ends", cancelled, func(ctx context.Context) error {
			_, err := restorer.Restore(ctx, r, restorer.Options{DataDir: dir, Snapshot: snap, CacheDir: cache, LockWait: 1 << 40})
			return err
		}, func(err error) bool { return errors.Is(err, context.Canceled) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(tc.ctx); !tc.want(err) {
				t.Fatalf("got %v", err)
			}
			treetest.AssertEqual(t, before, treetest.MustRead(t, dir))
		})
	}
}

func isLockedByMe(err error) bool {
	var le *datadir.DataDirLockedError
	return errors.As(err, &le) && errors.Is(err, datadir.ErrDataDirLocked) && le.PID == os.Getpid() &&
		strings.Contains(err.Error(), "is being saved or restored by another statepack")
}

// TestSaveAndRestoreDuringRestoreRefused: a restore holds DATA_DIR from
// its backup to its stat cache; a save or a second restore started
// meanwhile (here: while the backup reads a file) is refused, and the
// first restore leaves DATA_DIR exactly its snapshot.
func TestSaveAndRestoreDuringRestoreRefused(t *testing.T) {
	ctx := context.Background()
	r, cache := testRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	treetest.Write(t, src, map[string]treetest.Spec{"a": {Content: "one"}, "d/b": {Content: "two"}})
	first := save(t, r, cache, src, "first").Snapshot
	treetest.Write(t, src, map[string]treetest.Spec{"a": {Content: "three"}, "c": {Content: "four"}})
	second := save(t, r, cache, src, "second").Snapshot
	want := treetest.MustRead(t, src)
	dir := filepath.Join(t.TempDir(), "data")
	treetest.Write(t, dir, map[string]treetest.Spec{"unsaved": {Content: "needs a backup"}})
	var inner [2]error
	var once atomic.Bool
	testhook.SetAfterReadHook(func(string) {
		if !once.CompareAndSwap(false, true) {
			return
		}
		_, inner[0] = saver.Save(ctx, r, saver.Options{DataDir: dir, State: "x", CacheDir: cache})
		_, inner[1] = restorer.Restore(ctx, r, restorer.Options{DataDir: dir, Snapshot: first, CacheDir: cache})
	})
	defer testhook.SetAfterReadHook(nil)
	res, err := restorer.Restore(ctx, r, restorer.Options{DataDir: dir, Snapshot: second, CacheDir: cache, Force: true})
	if err != nil || res.Backup == nil {
		t.Fatalf("restore: %v (backup %v)", err, res)
	}
	for i, what := range []string{"save", "restore"} {
		if !errors.Is(inner[i], datadir.ErrDataDirLocked) {
			t.Errorf("%s during a restore of the same DATA_DIR: %v, want it refused", what, inner[i])
		}
	}
	treetest.AssertEqual(t, want, treetest.MustRead(t, dir))
}

// TestWriteRightAfterRestore: an application rewrites a file in place
// right after restore moved it into place (LocalStack still running).
// The stat cache must not vouch for the snapshot's content there: the
// next save reads the file and records the new bytes, and status shows
// the change. For Restore and for the scatter of pull --restore.
func TestWriteRightAfterRestore(t *testing.T) {
	for _, scatter := range []bool{false, true} {
		name := map[bool]string{false: "restore", true: "pull --restore"}[scatter]
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			r, cache := testRepo(t)
			src := filepath.Join(t.TempDir(), "src")
			old := randomContent(1, 300<<10)
			treetest.Write(t, src, map[string]treetest.Spec{"db": {Content: string(old)}, "other": {Content: "x"}})
			snap := save(t, r, cache, src, "s").Snapshot
			dir := filepath.Join(t.TempDir(), "data")
			fresh := append([]byte(nil), old...) // other bytes, the same size
			for i := range fresh {
				fresh[i] ^= 0x55
			}
			testhook.SetPlacedHook(func(p string) {
				if filepath.Base(p) == "db" {
					writeInPlace(t, p, fresh)
				}
			})
			defer testhook.SetPlacedHook(nil)
			if scatter {
				m, err := r.LoadManifest(ctx, snap)
				if err != nil {
					t.Fatal(err)
				}
				s, err := restorer.StartScatterRestore(ctx, r, snap, m, restorer.Options{DataDir: dir, Snapshot: snap, CacheDir: cache})
				if err != nil || s == nil {
					t.Fatalf("scatter: %v %v", s, err)
				}
				if _, err := s.Finish(ctx); err != nil {
					t.Fatal(err)
				}
			} else {
				restore(t, r, cache, dir, snap)
			}
			testhook.SetPlacedHook(nil)
			_, _, changes, err := restorer.DataDirChanges(ctx, r, dir, cache)
			if _, _, modified := restorer.CountChanges(changes); err != nil || modified != 1 {
				t.Errorf("status after the write: %d modified (%v), want db", modified, err)
			}
			res := save(t, r, cache, dir, "s")
			if res.FilesRead != 1 {
				t.Errorf("save after the write read %d files, want db", res.FilesRead)
			}
			check := filepath.Join(t.TempDir(), "check")
			restore(t, r, cache, check, res.Snapshot)
			if got, _ := os.ReadFile(filepath.Join(check, "db")); !bytes.Equal(got, fresh) {
				t.Errorf("the saved db holds the snapshot's old bytes, not the application's write")
			}
		})
	}
}

func writeInPlace(t *testing.T, p string, data []byte) {
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Error(err)
	}
}

// TestRestoreDoesNotCopyFromAChangedFile: restore copies the blocks a
// file keeps from the file it replaces, where the stat cache vouches for
// them. An application that rewrites that file after restore walked
// DATA_DIR (here: while the backup reads another file) must not get its
// bytes into the restored file: restore is exact.
func TestRestoreDoesNotCopyFromAChangedFile(t *testing.T) {
	ctx := context.Background()
	r, cache := testRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	base := randomContent(2, 2<<20)
	treetest.Write(t, src, map[string]treetest.Spec{"big": {Content: string(base)}})
	first := save(t, r, cache, src, "s").Snapshot
	changed := append(append([]byte(nil), base[:len(base)-1000]...), bytes.Repeat([]byte("z"), 1000)...)
	treetest.Write(t, src, map[string]treetest.Spec{"big": {Content: string(changed)}})
	second := save(t, r, cache, src, "s").Snapshot
	want := treetest.MustRead(t, src)
	dir := filepath.Join(t.TempDir(), "data")
	restore(t, r, cache, dir, first)
	treetest.Write(t, dir, map[string]treetest.Spec{"unsaved": {Content: "makes restore save a backup"}})
	var once atomic.Bool
	testhook.SetAfterReadHook(func(p string) {
		if filepath.Base(p) == "unsaved" && once.CompareAndSwap(false, true) {
			writeInPlace(t, filepath.Join(dir, "big"), bytes.Repeat([]byte("A"), 1<<20))
		}
	})
	defer testhook.SetAfterReadHook(nil)
	if _, err := restorer.Restore(ctx, r, restorer.Options{DataDir: dir, Snapshot: second, CacheDir: cache}); err != nil {
		t.Fatal(err)
	}
	if !once.Load() {
		t.Fatal("the backup did not read the unsaved file")
	}
	treetest.AssertEqual(t, want, treetest.MustRead(t, dir))
}

// TestFileChangingSizeWhileSaved: a file that grows or shrinks while save
// reads it is read again; the snapshot records what was read, and its
// blocks add up to its size. The file is larger than the chunker's
// buffer, so that the shrink is met by a read.
func TestFileChangingSizeWhileSaved(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(p string) error
		size   int64
	}{
		{"appended to", func(p string) error {
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.Write(randomContent(4, 100<<10))
			return err
		}, 8<<20 + 100<<10},
		{"truncated", func(p string) error { return os.Truncate(p, 300<<10) }, 300 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			r, cache := testRepo(t)
			dir := filepath.Join(t.TempDir(), "data")
			treetest.Write(t, dir, map[string]treetest.Spec{"log": {Content: string(randomContent(3, 8<<20))}})
			var once atomic.Bool
			testhook.SetDuringReadHook(func(p string) {
				if once.CompareAndSwap(false, true) {
					if err := tc.change(p); err != nil {
						t.Error(err)
					}
				}
			})
			defer testhook.SetDuringReadHook(nil)
			res, err := saver.Save(ctx, r, saver.Options{DataDir: dir, State: "s", CacheDir: cache})
			if err != nil {
				t.Fatalf("save of a file changing size while read: %v", err)
			}
			if !once.Load() {
				t.Fatal("the hook did not run")
			}
			m, err := r.LoadManifest(ctx, res.Snapshot)
			if err != nil {
				t.Fatal(err)
			}
			var sum int64
			for _, b := range m.Entries[0].Blocks {
				sum += int64(b.Size)
			}
			if m.Entries[0].Size != tc.size || sum != tc.size {
				t.Fatalf("log saved as %d bytes with blocks of %d, want %d", m.Entries[0].Size, sum, tc.size)
			}
		})
	}
}

// TestRestoreErrorNamesBackup: a restore that fails after it saved
// DATA_DIR's previous content says where that content is, and the backup
// brings it back.
func TestRestoreErrorNamesBackup(t *testing.T) {
	ctx := context.Background()
	r, cache := testRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	treetest.Write(t, src, map[string]treetest.Spec{"a": {Content: string(randomContent(5, 100<<10))}})
	snap := save(t, r, cache, src, "s").Snapshot
	// The snapshot's packs go missing once the restore has checked the
	// index: its writes fail, as on a full disk, after the backup.
	root := r.Backend().(*dirbackend.Backend).Root()
	packs, _ := filepath.Glob(filepath.Join(root, "packs", "*", "*"))
	dir := filepath.Join(t.TempDir(), "data")
	treetest.Write(t, dir, map[string]treetest.Spec{"mine": {Content: "unsaved work"}})
	before := treetest.MustRead(t, dir)
	testhook.SetAfterReadHook(func(string) {
		for _, p := range packs {
			os.Remove(p)
		}
	})
	defer testhook.SetAfterReadHook(nil)
	_, err := restorer.Restore(ctx, r, restorer.Options{DataDir: dir, Snapshot: snap, CacheDir: cache, Force: true})
	testhook.SetAfterReadHook(nil)
	var re *restorer.RestoreError
	if !errors.As(err, &re) || re.State != restorer.DefaultBackupState {
		t.Fatalf("restore error %v does not name the backup", err)
	}
	id8 := re.Backup.Short()
	if want := "DATA_DIR's previous content is saved as restore-backup " + id8 + ": `statepack restore " + id8 + "` brings it back"; !strings.Contains(err.Error(), want) {
		t.Fatalf("restore error %q, want %q", err, want)
	}
	back := filepath.Join(t.TempDir(), "back")
	restore(t, r, cache, back, re.Backup)
	treetest.AssertEqual(t, before, treetest.MustRead(t, back))
}
