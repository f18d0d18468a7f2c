package torture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/maintain"
	"github.com/statepack/statepack/archive/restorer"
	"github.com/statepack/statepack/archive/saver"
	"github.com/statepack/statepack/chunker"
	"github.com/statepack/statepack/internal/datagen"
	"github.com/statepack/statepack/internal/testbin"
	"github.com/statepack/statepack/internal/treetest"
	"github.com/statepack/statepack/remote"
	"github.com/statepack/statepack/remote/backend"
	"github.com/statepack/statepack/remote/dirbackend"
)

// TestDiskFullBackend: a save whose store answers ENOSPC on its n-th Put
// (for every n a clean save makes, the lock's included), or runs out of
// space 10 bytes into the n-th object, or on the ref update. Each time
// the error says there is no space, the state is where it was, nothing is
// left half-written and no lock is left, the store verifies, and once
// space is back the same save succeeds and restores exactly.
func TestDiskFullBackend(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	data := filepath.Join(root, "data")
	if _, err := datagen.Generate(data, datagen.Options{Seed: 7, Size: 6 << 20}); err != nil {
		t.Fatal(err)
	}
	tmpl := filepath.Join(root, "tmpl")
	be, err := dirbackend.New(tmpl, true)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := format.NewConfig(chunker.DefaultParams(), 1<<20) // many packs: many Puts
	if err != nil {
		t.Fatal(err)
	}
	repo, err := archive.Init(ctx, be, cfg)
	if err != nil {
		t.Fatal(err)
	}
	v1, err := saver.Save(ctx, repo, saver.Options{DataDir: data, State: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := datagen.Mutate(data, 7, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := datagen.Generate(filepath.Join(data, "extra"), datagen.Options{Seed: 8, Size: 8 << 20}); err != nil {
		t.Fatal(err)
	}
	want := treetest.MustRead(t, data)

	// How many Puts and PutIfs does a clean save make?
	probe := filepath.Join(root, "probe")
	if err := linkTree(tmpl, probe); err != nil {
		t.Fatal(err)
	}
	counter := remote.NewFaulty(dirBackend(t, probe))
	if _, err := saveOn(ctx, counter, data); err != nil {
		t.Fatal(err)
	}
	puts, putIfs := counter.Calls(remote.MethodPut), counter.Calls(remote.MethodPutIf)
	if puts < 5 {
		t.Fatalf("a clean save makes only %d Puts; the test wants several packs", puts)
	}

	type fault struct {
		name string
		add  func(*remote.Faulty) *remote.Faulty
	}
	var faults []fault
	for n := 1; n <= puts; n++ {
		faults = append(faults,
			fault{fmt.Sprintf("put-%d", n), func(f *remote.Faulty) *remote.Faulty {
				return f.FailNth(remote.MethodPut, n, remote.NoSpace())
			}},
			fault{fmt.Sprintf("put-%d-halfway", n), func(f *remote.Faulty) *remote.Faulty {
				return f.InterruptPut(n, 10, remote.NoSpace())
			}})
	}
	for n := 1; n <= putIfs; n++ {
		faults = append(faults, fault{fmt.Sprintf("putif-%d", n), func(f *remote.Faulty) *remote.Faulty {
			return f.FailNth(remote.MethodPutIf, n, remote.NoSpace())
		}})
	}
	for i, fc := range faults {
		t.Run(fc.name, func(t *testing.T) {
			store := filepath.Join(root, fmt.Sprintf("store-%d", i))
			if err := linkTree(tmpl, store); err != nil {
				t.Fatal(err)
			}
			defer clearDir(store)
			_, err := saveOn(ctx, fc.add(remote.NewFaulty(dirBackend(t, store))), data)
			switch {
			case err == nil:
				t.Fatal("the save succeeded although the store was full")
			case !errors.Is(err, backend.ErrNoSpace) || !strings.Contains(err.Error(), "no space left on device"):
				t.Fatalf("error does not say the disk is full: %v", err)
			}
			plain, err := archive.Open(ctx, dirBackend(t, store))
			if err != nil {
				t.Fatal(err)
			}
			if head, _, err := plain.ReadRef(ctx, "s"); err != nil || head != v1.Snapshot {
				t.Errorf("state s moved to %s (%v) after a failed save, want %s", head.Short(), err, v1.Snapshot.Short())
			}
			if junk := repoJunk(store); len(junk) > 0 {
				t.Errorf("the failed save left %v", junk)
			}
			rep, err := maintain.Verify(ctx, plain, maintain.VerifyOptions{ReadData: true})
			if err != nil || !rep.OK() {
				t.Fatalf("verify after the failed save: %v %+v", err, rep)
			}
			res, err := saver.Save(ctx, plain, saver.Options{DataDir: data, State: "s"})
			if err != nil {
				t.Fatalf("save with space back: %v", err)
			}
			scratch := filepath.Join(root, fmt.Sprintf("scratch-%d", i))
			defer clearDir(scratch)
			if _, err := restorer.Restore(ctx, plain, restorer.Options{DataDir: scratch, Snapshot: res.Snapshot, NoBackup: true}); err != nil {
				t.Fatal(err)
			}
			treetest.AssertEqual(t, want, treetest.MustRead(t, scratch))
		})
	}
	note(t, "disk full (backend)", "%d faults (ENOSPC on each of a save's %d Puts, 10 bytes into each, and on its %d ref update): each reported \"no space left on device\", left the state, locks and temporary files as they were, the store verified, and the save succeeded once space was back", len(faults), puts, putIfs)
}

func dirBackend(t *testing.T, dir string) *dirbackend.Backend {
	t.Helper()
	be, err := dirbackend.New(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	return be
}

func saveOn(ctx context.Context, be backend.Backend, data string) (*saver.Result, error) {
	repo, err := archive.Open(ctx, be)
	if err != nil {
		return nil, err
	}
	return saver.Save(ctx, repo, saver.Options{DataDir: data, State: "s"})
}

// repoJunk lists temporary files and locks in a directory repository.
func repoJunk(root string) []string {
	var out []string
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if strings.Contains(d.Name(), ".tmp") || (strings.HasPrefix(filepath.ToSlash(rel), "locks/") && !d.IsDir()) {
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out
}

// mountTmpfs mounts a tmpfs of the given size on a new directory and
// unmounts it when the test ends. It skips the test, saying why, where
// mounting is not allowed (not root, or a container without the right).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("mounting a tmpfs needs root (euid %d)", os.Geteuid())
	}
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size="+size+",mode=0755"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			_ = unix.Unmount(dir, unix.MNT_DETACH)
		}
	})
	return dir
}

// remount changes a mounted tmpfs's flags and options.
func remount(t *testing.T, dir string, flags uintptr, opts string) {
	t.Helper()
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_REMOUNT|unix.MS_NOSUID|unix.MS_NODEV|flags, opts); err != nil {
		t.Fatalf("remount %s: %v", dir, err)
	}
}

// errorDoc is the JSON error document on stderr.
type errorDoc struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// TestDiskFullFilesystem: the store lives on a 4 MiB tmpfs and the tree
// saved into it needs several times that. The save fails with exit 1 and
// one line saying there is no space (code no_space with --json), leaves no
// temporary file or lock, and the store verifies while still full; once
// the filesystem is grown, the same save succeeds and restores exactly.
// Then the same for DATA_DIR: a restore into a full filesystem fails
// clearly, status reports it as interrupted, and with space back a second
// restore completes it.
func TestDiskFullFilesystem(t *testing.T) {
	small := mountTmpfs(t, "4m")
	root := t.TempDir()
	r := testbin.New(t)
	store, data := filepath.Join(small, "store"), filepath.Join(root, "data")
	r.Env["STATEPACK_STORE"], r.Env["DATA_DIR"] = store, data
	r.MustRun("init", "--pack-size", "1MiB")
	if _, err := datagen.Generate(data, datagen.Options{Seed: 11, Size: 24 << 20}); err != nil {
		t.Fatal(err)
	}
	want := treetest.MustRead(t, data)

	res := r.Run("save", "s")
	if res.Code != 1 || len(lines(res.Stderr)) != 1 || !strings.Contains(res.Stderr, "no space left on device") {
		t.Fatalf("save into a full store: want exit 1 and one line saying no space, got %s", res)
	}
	note(t, "disk full (tmpfs store)", "save into a 4 MiB tmpfs: exit %d, %q", res.Code, strings.TrimSpace(res.Stderr))
	res = r.Run("--json", "save", "s")
	var e errorDoc
	if err := json.Unmarshal([]byte(res.Stderr), &e); err != nil || res.Code != 1 || e.Error.Code != "no_space" {
		t.Errorf("save --json into a full store: want code no_space, got %s", res)
	}
	if junk := repoJunk(store); len(junk) > 0 {
		t.Errorf("the failed save left %v", junk)
	}
	if res := r.Run("verify", "--read-data"); res.Code != 0 {
		t.Errorf("verify of the full store: %s", res)
	}
	remount(t, small, 0, "size=256m")
	if res := r.Run("verify", "--read-data"); res.Code != 0 {
		t.Errorf("verify with space back: %s", res)
	}
	r.MustRun("save", "s")
	scratch := filepath.Join(root, "scratch")
	r.MustRun("restore", "s", "--data-dir", scratch, "--no-backup")
	treetest.AssertEqual(t, want, treetest.MustRead(t, scratch))

	// A DATA_DIR on a full filesystem.
	full := mountTmpfs(t, "4m")
	target := filepath.Join(full, "data")
	res = r.Run("restore", "s", "--data-dir", target)
	wantNoSpaceLine(t, res, "restore")
	note(t, "disk full (tmpfs DATA_DIR)", "restore into a 4 MiB tmpfs: exit %d, %q", res.Code, strings.TrimSpace(res.Stderr))
	r.Env["DATA_DIR"] = target
	wantInterrupted(t, r, true, "the failed restore")
	if junk := findNamed(target, ".statepack-tmp-"); len(junk) > 0 {
		t.Errorf("the failed restore left %v", junk)
	}
	remount(t, full, 0, "size=256m")
	r.MustRun("restore", "s")
	treetest.AssertEqual(t, want, treetest.MustRead(t, target))
	wantInterrupted(t, r, false, "the completed restore")
}

// wantNoSpaceLine fails the test unless res, a command that ran out of
// space in DATA_DIR, ended with exit 1 and one line saying so and how to
// finish.
func wantNoSpaceLine(t *testing.T, res testbin.Result, what string) {
	t.Helper()
	if res.Code != 1 || len(lines(res.Stderr)) != 1 || !strings.Contains(res.Stderr, "no space left on device") ||
		!strings.Contains(res.Stderr, "run the same command again") {
		t.Fatalf("%s into a full DATA_DIR: want exit 1 and one line saying no space and how to finish, got %s", what, res)
	}
}

// wantInterrupted checks that status reports an interrupted restore of
// DATA_DIR, or none, after what.
func wantInterrupted(t *testing.T, r *testbin.Runner, interrupted bool, what string) {
	t.Helper()
	var st statusDoc
	if res := r.MustRun("--json", "status"); json.Unmarshal([]byte(res.Stdout), &st) != nil || (st.InterruptedRestore != "") != interrupted {
		t.Errorf("status after %s: %s; want an interrupted restore reported: %v", what, res, interrupted)
	}
}

// findNamed lists the paths under root whose name starts with prefix.
func findNamed(root, prefix string) []string {
	var out []string
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), prefix) {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// TestDiskFullPullRestore: pull --restore from a remote into a missing
// DATA_DIR on a full filesystem (the store has room). Restoring while
// receiving fails, is undone, and the pull still ends as a plain pull
// would: the store gets the state; the restore that follows fails with
// one line saying there is no space and how to finish; status reports it;
// with space back, the same pull --restore completes DATA_DIR exactly.
func TestDiskFullPullRestore(t *testing.T) {
	root := t.TempDir()
	src := testbin.New(t)
	src.Env["STATEPACK_STORE"], src.Env["DATA_DIR"] = filepath.Join(root, "src-store"), filepath.Join(root, "src")
	src.Env["STATEPACK_REMOTE"] = filepath.Join(root, "remote")
	if err := os.MkdirAll(src.Env["STATEPACK_REMOTE"], 0o755); err != nil { // the first push creates the remote in it
		t.Fatal(err)
	}
	if _, err := datagen.Generate(src.Env["DATA_DIR"], datagen.Options{Seed: 12, Size: 24 << 20}); err != nil {
		t.Fatal(err)
	}
	want := treetest.MustRead(t, src.Env["DATA_DIR"])
	src.MustRun("save", "s")
	src.MustRun("push", "s")

	full := mountTmpfs(t, "4m")
	r := testbin.New(t)
	r.Env["STATEPACK_STORE"], r.Env["DATA_DIR"] = filepath.Join(root, "store"), filepath.Join(full, "data")
	r.Env["STATEPACK_REMOTE"] = src.Env["STATEPACK_REMOTE"]
	res := r.Run("pull", "s", "--restore")
	wantNoSpaceLine(t, res, "pull --restore")
	note(t, "disk full (tmpfs DATA_DIR, pull --restore)", "pull --restore into a 4 MiB tmpfs: exit %d, %q", res.Code, strings.TrimSpace(res.Stderr))
	var list struct {
		States []struct {
			State string `json:"state"`
		} `json:"states"`
	}
	if out := r.MustRun("--json", "list"); json.Unmarshal([]byte(out.Stdout), &list) != nil || len(list.States) != 1 || list.States[0].State != "s" {
		t.Errorf("the store after the failed pull --restore: %s\n%s\nwant state s pulled", out, out.Stdout)
	}
	wantInterrupted(t, r, true, "the failed pull --restore")
	if junk := findNamed(full, ".statepack-tmp-"); len(junk) > 0 {
		t.Errorf("the failed pull --restore left %v", junk)
	}
	remount(t, full, 0, "size=256m")
	r.MustRun("pull", "s", "--restore")
	treetest.AssertEqual(t, want, treetest.MustRead(t, r.Env["DATA_DIR"]))
	wantInterrupted(t, r, false, "the completed pull --restore")
}
