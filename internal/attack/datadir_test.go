package attack

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/statepack/statepack/archive/datadir"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/restorer"
	"github.com/statepack/statepack/internal/testbin"
	"github.com/statepack/statepack/internal/treetest"
)

// These tests point DATA_DIR at directories whose loss would be a
// disaster, so each is built to be harmless if the guard regressed: the
// directories are temporary trees, "/" is only ever the root of a chroot
// holding a throwaway tree, and before the binary runs the same rule is
// checked in this process (gateRefused), so a guard that stopped refusing
// fails the test before anything can be deleted.

// gateRefused fails the test now unless datadir.CheckDataDir refuses dir.
func gateRefused(t *testing.T, dir string, owned ...datadir.OwnedPath) {
	t.Helper()
	if err := datadir.CheckDataDir(dir, owned...); err == nil {
		t.Fatalf("CheckDataDir accepts %s: not running the binary on it", dir)
	}
}

// copyFile copies the file src to dst with mode perm.
func copyFile(t *testing.T, src, dst string, perm os.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestDataDirHoldingStatepackRefused: `restore` and `pull --restore` with
// a DATA_DIR that holds the store, a copy of the binary being run, the
// home directory or a directory remote, reached directly or through a
// symlink, are refused in one line before anything is touched, --force,
// --overwrite and --no-backup notwithstanding. Before the fix a DATA_DIR
// holding the store only through "/" went unseen, and restore deleted
// the store, the backup it had just made and the binary.
func TestDataDirHoldingStatepackRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	remoteDir := filepath.Join(e.root, "remote")
	bin := filepath.Join(e.root, "bin", "statepack")
	copyFile(t, os.Getenv("STATEPACK_BIN"), bin, 0o755)
	treetest.Write(t, e.data, map[string]treetest.Spec{"app.db": {Content: "the app's state"}, "cfg/a.ini": {Content: "a=1\n"}})
	home := e.vars["HOME"]
	treetest.Write(t, home, map[string]treetest.Spec{".bashrc": {Content: "# the user's own"}})
	e.must("init", "--remote", remoteDir)
	e.must("save", "app")
	e.must("push", "app", "--remote", remoteDir)
	link := filepath.Join(e.root, "link")
	if err := os.Symlink(e.root, link); err != nil {
		t.Fatal(err)
	}
	before := treetest.MustRead(t, e.root)
	// The child's HOME is not this process's: the gate names it as owned.
	owned := []datadir.OwnedPath{{What: "the store", Path: e.store}, {What: "the remote", Path: remoteDir}, {What: "the binary", Path: bin},
		{What: "the home", Path: home}}
	for _, tc := range []struct {
		name, dir string
		want      string
	}{
		{"the temp root holding store, binary and home", e.root, "contains the store"},
		{"a symlink to it", link, "contains the store"},
		{"with a trailing slash", e.root + "/", "contains the store"},
		{"the directory of the binary being run", filepath.Dir(bin), "statepack's own binary"},
		{"the home directory", home, "home directory"},
		{"the directory remote", remoteDir, "is the remote"},
	} {
		gateRefused(t, tc.dir, owned...)
		for _, args := range [][]string{
			{"restore", "app"},
			{"restore", "app", "--force", "--no-backup"},
			{"pull", "app", "--restore", "--overwrite"},
		} {
			args = append(args, "--data-dir", tc.dir, "--remote", remoteDir)
			cmd := exec.Command(bin, args...) // the copy: os.Executable is inside the temp root
			cmd.Env, cmd.Dir = e.environ(nil), e.root
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			r := result{args: args, stderr: stderr.String(), code: cmd.ProcessState.ExitCode()}
			if err == nil || r.code != 1 {
				t.Errorf("%s: %v: not refused: %s", tc.name, args, r)
			}
			if msg := clearMessage(r, "", "refusing DATA_DIR", tc.want); msg != "" {
				t.Errorf("%s: %v: %s", tc.name, args, msg)
			}
		}
	}
	if d := sameTree(before, treetest.MustRead(t, e.root)); d != "" {
		t.Fatalf("a refused restore changed the tree:\n%s", d)
	}
}

// TestDataDirRootInChroot: `DATA_DIR=/` (what "$UNSET/" gives) is refused
// by restore, pull --restore and save, before anything is touched. The
// binary runs chrooted into a temporary tree, so "/" is that tree; the
// issue's report (in such a chroot) had restore delete all of it.
func TestDataDirRootInChroot(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("chroot needs root; DATA_DIR=/ is never tried outside one")
	}
	gateRefused(t, "/")
	root := t.TempDir()
	bin := filepath.Join(root, "bin", "statepack")
	build := exec.Command("go", "build", "-o", bin, testbin.Package)
	build.Env = append(os.Environ(), "CGO_ENABLED=0") // static: the chroot has no libc
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build a static statepack: %v\n%s", err, out)
	}
	treetest.Write(t, root, map[string]treetest.Spec{
		"app-data/db":      {Content: "the app's state"},
		"etc/hostname":     {Content: "chroot\n"},
		"home/me/notes.md": {Content: "the user's own"},
	})
	if err := os.Symlink("/", filepath.Join(root, "to-root")); err != nil {
		t.Fatal(err)
	}
	run := func(env []string, args ...string) result {
		cmd := exec.Command("/bin/statepack", args...)
		cmd.Env, cmd.Dir = append([]string{"HOME=/home/me", "STATEPACK_STORE=/store"}, env...), "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		r := result{args: args, stdout: stdout.String(), stderr: stderr.String(), err: err}
		if cmd.ProcessState != nil {
			r.code = cmd.ProcessState.ExitCode()
		}
		return r
	}
	for _, args := range [][]string{{"init", "--remote", "/remote"}, {"save", "app", "--data-dir", "/app-data"}, {"push", "app", "--remote", "/remote"}} {
		if r := run(nil, args...); r.code != 0 {
			t.Fatalf("setup in the chroot: %s (%v)", r, r.err)
		}
	}
	before := treetest.MustRead(t, root)
	for _, tc := range []struct {
		env  []string
		args []string
	}{
		{nil, []string{"restore", "app", "--data-dir", "/"}},
		{[]string{"DATA_DIR=/"}, []string{"restore", "app"}},
		{[]string{"DATA_DIR=/"}, []string{"restore", "app", "--force", "--no-backup"}},
		{[]string{"DATA_DIR=/to-root"}, []string{"restore", "app"}},
		{[]string{"DATA_DIR=/home/me"}, []string{"restore", "app", "--force"}},
		{[]string{"DATA_DIR=/"}, []string{"pull", "app", "--restore", "--overwrite", "--remote", "/remote"}},
		{[]string{"DATA_DIR=/"}, []string{"save", "everything"}},
	} {
		r := run(tc.env, tc.args...)
		if r.code != 1 {
			t.Errorf("%v %v: not refused: %s (%v)", tc.env, tc.args, r, r.err)
		}
		if msg := clearMessage(r, "", "refusing DATA_DIR"); msg != "" {
			t.Errorf("%v %v: %s", tc.env, tc.args, msg)
		}
		if d := sameTree(before, treetest.MustRead(t, root)); d != "" {
			t.Fatalf("%v %v changed the chroot:\n%s", tc.env, tc.args, d)
		}
	}
}

// TestRestoreIntoUnknownDataDir: restore and pull --restore into a
// non-empty DATA_DIR that statepack never saved or restored are refused,
// saying how much is there and naming files, and pull refuses before it
// fetches anything; --force (pull: --overwrite) restores, saving what was
// there first, and that backup brings it back.
func TestRestoreIntoUnknownDataDir(t *testing.T) {
	t.Parallel()
	src, victim := newEnv(t), newEnv(t)
	remoteDir := filepath.Join(src.root, "remote")
	treetest.Write(t, src.data, map[string]treetest.Spec{"app.db": {Content: "snapshot content"}})
	src.must("init", "--remote", remoteDir)
	src.must("save", "app")
	src.must("push", "app", "--remote", remoteDir)
	want := treetest.MustRead(t, src.data)

	treetest.Write(t, victim.data, map[string]treetest.Spec{"thesis.tex": {Content: "three years of work"}, "figures/f1.png": {Content: "png"}})
	theirs := treetest.MustRead(t, victim.data)
	r := victim.run("pull", "app", "--restore", "--remote", remoteDir)
	if msg := clearMessage(r, "", "never saved or restored", "2 files", "thesis.tex", "--overwrite"); r.code != 1 || msg != "" {
		t.Errorf("pull --restore into an unknown DATA_DIR: %s\n%s", msg, r)
	}
	if _, err := os.Stat(filepath.Join(victim.store, "refs", "app")); err == nil {
		t.Error("the refused pull --restore pulled the state first")
	}
	victim.must("pull", "app", "--remote", remoteDir)
	r = victim.run("restore", "app")
	if msg := clearMessage(r, "", "never saved or restored", "thesis.tex", "--force"); r.code != 1 || msg != "" {
		t.Errorf("restore into an unknown DATA_DIR: %s\n%s", msg, r)
	}
	if d := sameTree(theirs, treetest.MustRead(t, victim.data)); d != "" {
		t.Fatalf("a refused restore changed DATA_DIR:\n%s", d)
	}
	if out := victim.must("restore", "app", "--force"); !strings.Contains(out.stdout, "saved what DATA_DIR held first") {
		t.Errorf("restore --force did not save DATA_DIR first:\n%s", out)
	}
	if d := sameTree(want, treetest.MustRead(t, victim.data)); d != "" {
		t.Fatalf("restore --force:\n%s", d)
	}
	victim.must("restore", restorer.DefaultBackupState)
	if d := sameTree(theirs, treetest.MustRead(t, victim.data)); d != "" {
		t.Fatalf("the backup of restore --force does not bring DATA_DIR back:\n%s", d)
	}
}

// TestHostileSetuidRoot: a remote's snapshot holding a setuid-root and a
// setgid file is restored without those bits (a root shell planted by
// whoever can write the bucket otherwise); as root, the recorded owner is
// applied, so the file is root's, but harmless.
func TestHostileSetuidRoot(t *testing.T) {
	forEachRemote(t, func(t *testing.T, h *hostile) {
		suid := fileEntry("sh", h.payload)
		suid.Mode = 0o4755
		sgid := fileEntry("sg", h.payload)
		sgid.Mode = 0o2755
		h.publish("evil", format.EncodeManifest(manifest(sgid, suid)))
		if r := h.pull("evil"); r.code != 0 {
			t.Fatalf("%s", r)
		}
		for _, name := range []string{"sh", "sg"} {
			fi, err := os.Lstat(filepath.Join(h.victim.data, name))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 {
				t.Errorf("%s restored as %v: a hostile remote planted a setuid/setgid file", name, fi.Mode())
			}
			if st := fi.Sys().(*syscall.Stat_t); os.Geteuid() == 0 && st.Uid != 0 {
				t.Errorf("%s: owner %d, want the recorded 0", name, st.Uid)
			}
		}
		h.outsideUntouched()
	})
}

// TestHostileRestoreTempName: a snapshot naming a path with the shape of
// restore's temporary files is refused: every walk takes such a name for
// a leftover, so the next restore would delete it unsaved.
func TestHostileRestoreTempName(t *testing.T) {
	forEachRemote(t, func(t *testing.T, h *hostile) {
		h.publish("evil", format.EncodeManifest(manifest(fileEntry(".statepack-tmp-0123456789abcdef", h.payload))))
		h.refused("evil", "temporary file")
	})
}
