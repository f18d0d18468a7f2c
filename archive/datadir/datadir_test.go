package datadir_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/datadir"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/restorer"
	"github.com/statepack/statepack/archive/saver"
	"github.com/statepack/statepack/archive/scan"
	"github.com/statepack/statepack/internal/treetest"
	"github.com/statepack/statepack/remote/dirbackend"
)

// TestCheckDataDir: every DATA_DIR a restore could not empty without
// losing what no snapshot gives back is refused, with the reason; an
// application's own directory beside the store is accepted. CheckDataDir
// only reads, so the real / and /root are safe to name here.
func TestCheckDataDir(t *testing.T) {
	top := t.TempDir()
	store, remoteDir, bin := filepath.Join(top, "store"), filepath.Join(top, "remote"), filepath.Join(top, "bin", "statepack")
	home := filepath.Join(t.TempDir(), "home")
	for _, d := range []string{store, remoteDir, filepath.Dir(bin), home, filepath.Join(top, "data")} {
		must(t, os.MkdirAll(d, 0o755))
	}
	must(t, os.WriteFile(bin, []byte("binary"), 0o755))
	must(t, os.Symlink("/", filepath.Join(top, "to-root")))
	must(t, os.Symlink(top, filepath.Join(top, "to-top")))
	must(t, os.Symlink(filepath.Join(top, "data"), filepath.Join(top, "to-data")))
	t.Setenv("HOME", home)
	owned := []datadir.OwnedPath{{What: "the store", Path: store}, {What: "the cache", Path: filepath.Join(store, "cache")},
		{What: "the remote", Path: remoteDir}, {What: "the binary", Path: bin}}
	exe, err := os.Executable()
	must(t, err)
	unset := ""
	for _, tc := range []struct {
		name, dir string
		why       string // "" when accepted
	}{
		{"root", "/", "is the root directory"},
		{"an unset variable before a slash", unset + "/", "is the root directory"},
		{"root, unclean", "//tmp/..//", "is the root directory"},
		{"a symlink to root", filepath.Join(top, "to-root"), "resolves to /, which is the root directory"},
		{"a system directory", "/usr", "system directory /usr"},
		{"another system directory", "/var/", "system directory /var"},
		{"the home directory", home, "is the home directory"},
		{"root's home (passwd)", "/root", "home directory /root"},
		{"a directory holding homes", filepath.Dir(home), "contains the home directory"},
		{"the store", store, "is the store"},
		{"inside the store", filepath.Join(store, "data"), "is inside the store"},
		{"inside the store, not there yet", filepath.Join(store, "new", "data"), "is inside the store"},
		{"the cache, not there yet", filepath.Join(store, "cache"), "inside the store"},
		{"holding the store", top, "contains the store"},
		{"holding the store, through a symlink", filepath.Join(top, "to-top"), "contains the store"},
		{"holding the store, relative", relTo(t, top), "contains the store"},
		{"the remote", remoteDir, "is the remote"},
		{"inside the remote", filepath.Join(remoteDir, "x"), "is inside the remote"},
		{"holding statepack's binary", filepath.Dir(bin), "contains the binary"},
		{"holding this binary (os.Executable)", filepath.Dir(exe), "contains statepack's own binary"},
		{"an application's directory", filepath.Join(top, "data"), ""},
		{"one not there yet", filepath.Join(top, "new", "data"), ""},
		{"inside the home directory", filepath.Join(home, "app"), ""},
		{"a symlink to an application's directory", filepath.Join(top, "to-data"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := datadir.CheckDataDir(tc.dir, owned...)
			if tc.why == "" {
				if err != nil {
					t.Fatalf("CheckDataDir(%q) = %v, want nil", tc.dir, err)
				}
				return
			}
			if !errors.Is(err, datadir.ErrUnsafeDataDir) || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("CheckDataDir(%q) = %v, want a refusal saying %q", tc.dir, err, tc.why)
			}
		})
	}
}

// relTo returns dir relative to the working directory.
func relTo(t *testing.T, dir string) string {
	wd, err := os.Getwd()
	must(t, err)
	rel, err := filepath.Rel(wd, dir)
	must(t, err)
	return rel
}

// TestOverlaps: "/" holds every path. Tested as a prefix of "//", DATA_DIR=/
// would not be seen to hold the store, and restore would delete the whole
// file system.
func TestOverlaps(t *testing.T) {
	top := t.TempDir()
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"/", "/var/lib/statepack", true},
		{"/var/lib/statepack", "/", true},
		{"/", "/", true},
		{"/data", "/data-store", false},
		{"/data", "/data/store", true},
		{top, filepath.Join(top, "x", "y"), true},
		{filepath.Join(top, "a"), filepath.Join(top, "b"), false},
	} {
		if got := saver.Overlaps(tc.a, tc.b); got != tc.want {
			t.Errorf("Overlaps(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestCheckDataDirBindMount: a bind mount of the store's parent holds the
// store under another path; comparing by inode finds it. The root of a
// mounted file system holding the store is refused. Needs root.
func TestCheckDataDirBindMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("bind mounts need root")
	}
	top := t.TempDir()
	vol, view := filepath.Join(top, "vol"), filepath.Join(top, "view")
	must(t, os.MkdirAll(filepath.Join(vol, "store"), 0o755))
	must(t, os.MkdirAll(view, 0o755))
	if err := unix.Mount(vol, view, "", unix.MS_BIND, ""); err != nil {
		t.Skipf("bind mount not allowed here: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(view, unix.MNT_DETACH) })
	err := datadir.CheckDataDir(view, datadir.OwnedPath{What: "the store", Path: filepath.Join(vol, "store")})
	if !errors.Is(err, datadir.ErrUnsafeDataDir) || !strings.Contains(err.Error(), "contains the store") {
		t.Fatalf("DATA_DIR on a bind mount holding the store: %v", err)
	}

	// A file system mounted at fs, its subdirectory sub bound at other,
	// and the store in other: DATA_DIR=fs holds the store, though no path
	// or parent says so. Its device does.
	fsRoot, other := filepath.Join(top, "fs"), filepath.Join(top, "other")
	must(t, os.MkdirAll(fsRoot, 0o755))
	must(t, os.MkdirAll(other, 0o755))
	must(t, unix.Mount("tmpfs", fsRoot, "tmpfs", 0, "size=1m"))
	t.Cleanup(func() { _ = unix.Unmount(fsRoot, unix.MNT_DETACH) })
	must(t, os.MkdirAll(filepath.Join(fsRoot, "sub", "store"), 0o755))
	must(t, unix.Mount(filepath.Join(fsRoot, "sub"), other, "", unix.MS_BIND, ""))
	t.Cleanup(func() { _ = unix.Unmount(other, unix.MNT_DETACH) })
	err = datadir.CheckDataDir(fsRoot, datadir.OwnedPath{What: "the store", Path: filepath.Join(other, "store")})
	if !errors.Is(err, datadir.ErrUnsafeDataDir) || !strings.Contains(err.Error(), "root of the file system that holds the store") {
		t.Fatalf("DATA_DIR the root of the file system holding the store: %v", err)
	}
	if err := datadir.CheckDataDir(filepath.Join(fsRoot, "app"), datadir.OwnedPath{What: "the store", Path: filepath.Join(other, "store")}); err != nil {
		t.Fatalf("a directory beside the store on its file system: %v", err)
	}
	// A bind mount of a subdirectory (a container's volume) is no file
	// system's root: the store elsewhere on the same disk is no reason.
	must(t, os.MkdirAll(filepath.Join(fsRoot, "elsewhere", "store"), 0o755))
	if err := datadir.CheckDataDir(other, datadir.OwnedPath{What: "the store", Path: filepath.Join(fsRoot, "elsewhere", "store")}); err != nil {
		t.Fatalf("a volume (bind mount) beside the store on one disk: %v", err)
	}
}

// TestRestoreRefusesUnsafeDataDir: the library refuses too, before it
// touches anything: a DATA_DIR holding the store (directly or through a
// symlink) keeps every file, the store's included.
func TestRestoreRefusesUnsafeDataDir(t *testing.T) {
	top := t.TempDir()
	be, err := dirbackend.New(filepath.Join(top, "store"), true)
	must(t, err)
	r, err := archive.OpenOrInit(context.Background(), be)
	must(t, err)
	cache := filepath.Join(top, "cache")
	src, _ := awkwardDir(t)
	saved := save(t, r, cache, src, "s")
	treetest.Write(t, top, map[string]treetest.Spec{"precious.txt": {Content: "mine"}})
	must(t, os.Symlink(top, filepath.Join(t.TempDir(), "link")))
	before := treetest.MustRead(t, top)
	for _, dir := range []string{top, filepath.Join(top, "store", "data"), filepath.Join(top, "cache")} {
		for _, force := range []bool{false, true} {
			_, err := restorer.Restore(context.Background(), r, restorer.Options{DataDir: dir, Snapshot: saved.Snapshot, CacheDir: cache, Force: force, NoBackup: force})
			if !errors.Is(err, datadir.ErrUnsafeDataDir) {
				t.Fatalf("restore into %s (force %v): %v, want ErrUnsafeDataDir", dir, force, err)
			}
		}
	}
	if _, err := saver.Save(context.Background(), r, saver.Options{DataDir: top, State: "x", CacheDir: cache}); !errors.Is(err, datadir.ErrUnsafeDataDir) {
		t.Fatalf("save of a DATA_DIR holding the store: %v, want ErrUnsafeDataDir", err)
	}
	treetest.AssertEqual(t, before, treetest.MustRead(t, top))
}

// TestRestoreUnknownDataDir: a restore into a non-empty DATA_DIR that
// statepack never saved or restored is refused, saying what it holds,
// and nothing changes; Force restores, saving what was there first.
// An absent or empty DATA_DIR, or one saved before, needs no Force.
func TestRestoreUnknownDataDir(t *testing.T) {
	ctx := context.Background()
	r, cache := testRepo(t)
	src, want := awkwardDir(t)
	saved := save(t, r, cache, src, "s")
	restore(t, r, cache, filepath.Join(t.TempDir(), "absent"), saved.Snapshot)
	restore(t, r, cache, t.TempDir(), saved.Snapshot)

	dir := t.TempDir()
	theirs := map[string]treetest.Spec{"notes/todo.txt": {Content: "not saved anywhere"}, "photo.jpg": {Content: "jpeg"}}
	treetest.Write(t, dir, theirs)
	before := treetest.MustRead(t, dir)
	for _, only := range []scan.Filter{{}, {Include: []string{"photo.jpg"}}} {
		_, err := restorer.Restore(ctx, r, restorer.Options{DataDir: dir, Snapshot: saved.Snapshot, CacheDir: cache, Only: only})
		var unknown *restorer.UnknownDataDirError
		if !errors.As(err, &unknown) || !errors.Is(err, restorer.ErrUnknownDataDir) {
			t.Fatalf("restore (only %v) into a DATA_DIR statepack never saw: %v", only, err)
		}
		if !strings.Contains(err.Error(), "photo.jpg") || unknown.Bytes == 0 {
			t.Errorf("the refusal does not say what would go: %v", err)
		}
	}
	treetest.AssertEqual(t, before, treetest.MustRead(t, dir))

	res, err := restorer.Restore(ctx, r, restorer.Options{DataDir: dir, Snapshot: saved.Snapshot, CacheDir: cache, Force: true})
	must(t, err)
	if res.Backup == nil {
		t.Fatal("a forced restore did not save what DATA_DIR held first")
	}
	treetest.AssertEqual(t, want, treetest.MustRead(t, dir))
	back := filepath.Join(t.TempDir(), "back")
	restore(t, r, cache, back, res.Backup.Snapshot)
	treetest.AssertEqual(t, before, treetest.MustRead(t, back))

	saved2 := t.TempDir() // saved once: known, no Force needed
	treetest.Write(t, saved2, theirs)
	save(t, r, cache, saved2, "theirs")
	restore(t, r, cache, saved2, saved.Snapshot)
}

// TestRestoreClearsSetuid: restore clears the setuid and setgid bits of
// files unless KeepSetuid (a snapshot from a remote must not plant a
// setuid-root binary); directories keep setgid. As root the recorded
// owners are applied.
func TestRestoreClearsSetuid(t *testing.T) {
	r, cache := testRepo(t)
	src := t.TempDir()
	treetest.Write(t, src, map[string]treetest.Spec{
		"shared":           {Dir: true, Mode: 0o775},
		"shared/tool":      {Content: "#!/bin/sh\n", Mode: 0o755},
		"shared/group":     {Content: "#!/bin/sh\n", Mode: 0o755},
		"shared/plain.txt": {Content: "plain", Mode: 0o644},
	})
	// Spec modes are permission bits only: the special bits are set here.
	for p, m := range map[string]os.FileMode{"shared": 0o775 | os.ModeSetgid, "shared/tool": 0o755 | os.ModeSetuid, "shared/group": 0o755 | os.ModeSetgid} {
		must(t, os.Chmod(filepath.Join(src, p), m))
	}
	root := os.Geteuid() == 0
	if root {
		must(t, os.Lchown(filepath.Join(src, "shared/plain.txt"), 4321, 4321))
	}
	saved := save(t, r, cache, src, "s")
	for _, tc := range []struct {
		keep bool
		tool os.FileMode
		grp  os.FileMode
	}{
		{false, 0o755, 0o755},
		{true, 0o755 | os.ModeSetuid, 0o755 | os.ModeSetgid},
	} {
		for _, scatter := range []bool{false, true} {
			dir := filepath.Join(t.TempDir(), "data")
			o := restorer.Options{DataDir: dir, Snapshot: saved.Snapshot, CacheDir: cache, KeepSetuid: tc.keep}
			if scatter {
				scatterRestore(t, r, o)
			} else if _, err := restorer.Restore(context.Background(), r, o); err != nil {
				t.Fatal(err)
			}
			modeIs(t, filepath.Join(dir, "shared/tool"), tc.tool)
			modeIs(t, filepath.Join(dir, "shared/group"), tc.grp)
			modeIs(t, filepath.Join(dir, "shared"), 0o775|os.ModeSetgid|os.ModeDir)
			if !root {
				continue
			}
			fi, err := os.Lstat(filepath.Join(dir, "shared/plain.txt"))
			must(t, err)
			if st := fi.Sys().(*syscall.Stat_t); st.Uid != 4321 || st.Gid != 4321 {
				t.Errorf("as root, owner %d:%d, want the recorded 4321:4321", st.Uid, st.Gid)
			}
		}
	}
	if !root {
		t.Log("not root: owners not checked")
	}
}

// scatterRestore restores o into an empty DATA_DIR the way pull --restore
// does, with the blocks read from the local store.
func scatterRestore(t *testing.T, r *archive.Repository, o restorer.Options) {
	t.Helper()
	ctx := context.Background()
	m, err := r.LoadManifest(ctx, o.Snapshot)
	must(t, err)
	s, err := restorer.StartScatterRestore(ctx, r, o.Snapshot, m, o)
	if err != nil || s == nil {
		t.Fatalf("scatter restore: %v %v", s, err)
	}
	if _, err := s.Finish(ctx); err != nil {
		t.Fatal(err)
	}
}

func modeIs(t *testing.T, p string, want os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(p)
	must(t, err)
	if fi.Mode() != want {
		t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
	}
}

// TestRestoreTempNames: only names of restore's own shape
// (".statepack-tmp-" and 16 hex digits) are its leftovers. A user's
// ".statepack-tmp-notes" is saved, restored and, when a restore removes
// it, saved first like any file; a manifest naming restore's shape is
// refused, since every walk would take it for a leftover.
func TestRestoreTempNames(t *testing.T) {
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{".statepack-tmp-notes", true},
		{"a/.statepack-tmp-", true},
		{".statepack-tmp-0123456789ABCDEF", true},
		{".statepack-tmp-0123456789abcdef0", true},
		{".statepack-tmp-0123456789abcdef", false},
		{"a/.statepack-tmp-0123456789abcdef/b", false},
	} {
		if err := format.ValidPath(tc.path); (err == nil) != tc.ok {
			t.Errorf("ValidPath(%q) = %v, want ok %v", tc.path, err, tc.ok)
		}
	}

	r, cache := testRepo(t)
	src := t.TempDir()
	mine := map[string]treetest.Spec{"db": {Content: "data"}, ".statepack-tmp-notes": {Content: "a user's file"}}
	treetest.Write(t, src, mine)
	treetest.Write(t, src, map[string]treetest.Spec{".statepack-tmp-0123456789abcdef": {Content: "half written"}})
	res := save(t, r, cache, src, "s")
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "interrupted restore") {
		t.Errorf("save warnings %q, want one for the leftover", res.Warnings)
	}
	dir := filepath.Join(t.TempDir(), "data")
	restore(t, r, cache, dir, res.Snapshot)
	treetest.AssertEqual(t, mustTree(t, mine), treetest.MustRead(t, dir))

	treetest.Write(t, dir, map[string]treetest.Spec{"later/.statepack-tmp-x": {Content: "made after the save"}})
	pastRacyWindow()
	rr := restore(t, r, cache, dir, res.Snapshot)
	if rr.Backup == nil {
		t.Fatal("restore removed a user's .statepack-tmp- file without saving it first")
	}
	treetest.AssertEqual(t, mustTree(t, mine), treetest.MustRead(t, dir))
}

// mustTree is what a tree written from specs reads back as.
func mustTree(t *testing.T, specs map[string]treetest.Spec) treetest.Tree {
	t.Helper()
	dir := t.TempDir()
	treetest.Write(t, dir, specs)
	return treetest.MustRead(t, dir)
}

// TestRestoreKeepsWhatSaveSkips: a directory restore removes may hold
// what the walk skips, and so what no backup holds: a name that is not
// UTF-8, or a directory named as restore's temporary files. Restore
// refuses to delete those rather than remove the whole directory; a FIFO
// or socket, which holds no data, goes with its directory.
func TestRestoreKeepsWhatSaveSkips(t *testing.T) {
	r, cache := testRepo(t)
	src := t.TempDir()
	treetest.Write(t, src, map[string]treetest.Spec{"db": {Content: "data"}})
	saved := save(t, r, cache, src, "s")
	for _, tc := range []struct {
		name  string
		plant func(dir string)
		kept  string // "" when the restore succeeds and the directory goes
	}{
		{"a name that is not UTF-8", func(dir string) {
			must(t, os.WriteFile(filepath.Join(dir, "x", "th\xffsis.tex"), []byte("years of work"), 0o644))
		}, "th\xffsis.tex"},
		{"a directory with a reserved name", func(dir string) {
			must(t, os.MkdirAll(filepath.Join(dir, "x", ".statepack-tmp-0123456789abcdef", "inner"), 0o755))
		}, ".statepack-tmp-0123456789abcdef"},
		{"a FIFO", func(dir string) {
			must(t, unix.Mkfifo(filepath.Join(dir, "x", "pipe"), 0o644))
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			restore(t, r, cache, dir, saved.Snapshot)
			treetest.Write(t, dir, map[string]treetest.Spec{"x/saved.txt": {Content: "saved by the backup"}})
			tc.plant(dir)
			pastRacyWindow()
			_, err := restorer.Restore(context.Background(), r, restorer.Options{DataDir: dir, Snapshot: saved.Snapshot, CacheDir: cache})
			if tc.kept == "" {
				must(t, err)
				if _, err := os.Lstat(filepath.Join(dir, "x")); !os.IsNotExist(err) {
					t.Fatalf("x is still there: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "no backup has it") {
				t.Fatalf("restore over a directory holding %q: %v, want a refusal", tc.kept, err)
			}
			if _, err := os.Lstat(filepath.Join(dir, "x", tc.kept)); err != nil {
				t.Fatalf("%q was deleted: %v", tc.kept, err)
			}
		})
	}
}
