package torture

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/statepack/statepack/internal/datagen"
	"github.com/statepack/statepack/internal/testbin"
	"github.com/statepack/statepack/internal/treetest"
)

// nobody is the uid and gid the tests use for an unprivileged user when
// they run as root.
const nobody = 65534

// account runs the binary as an unprivileged user: the test's own when it
// is not root, else uid 65534 with a copy of the binary and a base
// directory that user can reach.
type account struct {
	t        *testing.T
	uid, gid int
	cred     *syscall.Credential // nil: run as the test itself
	base     string
	bin      string
	env      testbin.Env
}

func unprivileged(t *testing.T) *account {
	t.Helper()
	if os.Geteuid() != 0 {
		return &account{t: t, uid: os.Getuid(), gid: os.Getgid(), base: t.TempDir(), bin: binary(t), env: testbin.Env{"HOME": t.TempDir()}}
	}
	base, err := os.MkdirTemp("", "statepack-torture-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = clearDir(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(base, "statepack")
	fi, err := os.Stat(binary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := copyFile(binary(t), bin, fi); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	a := &account{t: t, uid: nobody, gid: nobody, base: base, bin: bin,
		cred: &syscall.Credential{Uid: nobody, Gid: nobody, NoSetGroups: true}}
	a.env = testbin.Env{"HOME": a.dir("home")}
	return a
}

// dir creates a directory under the account's base, owned by it.
func (a *account) dir(name string) string {
	a.t.Helper()
	p := filepath.Join(a.base, name)
	if err := os.MkdirAll(p, 0o755); err != nil {
		a.t.Fatal(err)
	}
	a.own(p)
	return p
}

// own gives everything under p to the account.
func (a *account) own(p string) {
	a.t.Helper()
	err := filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(q, a.uid, a.gid)
	})
	if err != nil {
		a.t.Fatal(err)
	}
}

// run runs the binary as the account.
func (a *account) run(args ...string) testbin.Result {
	a.t.Helper()
	cmd := exec.Command(a.bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range a.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Dir = a.base
	if a.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: a.cred}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		a.t.Fatal(err)
	}
	timer := time.AfterFunc(2*time.Minute, func() { _ = cmd.Process.Kill() })
	err := cmd.Wait()
	timer.Stop()
	res := testbin.Result{Args: args, Stdout: stdout.String(), Stderr: stderr.String()}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		res.Code = exit.ExitCode()
	} else if err != nil {
		a.t.Fatal(err)
	}
	return res
}

func (a *account) mustRun(args ...string) testbin.Result {
	a.t.Helper()
	res := a.run(args...)
	if res.Code != 0 {
		a.t.Fatalf("%s", res)
	}
	return res
}

// permTree is the snapshot the permission tests restore: a read-only
// directory with a file in it, beside ordinary files.
func permTree() map[string]treetest.Spec {
	return map[string]treetest.Spec{
		"a/keep.txt":       {Content: "keep, as saved"},
		"ro/locked":        {Content: "locked, as saved", Mode: 0o444},
		"ro/other":         {Content: "other, as saved"},
		"z/last.txt":       {Content: "last, as saved"},
		"s3/bucket/object": {Content: strings.Repeat("object bytes ", 1000)},
	}
}

// changeTree gives DATA_DIR content the snapshot does not have: every file
// differs, and the read-only directory holds an extra file.
func changeTree(t *testing.T, data string) {
	t.Helper()
	if err := os.Chmod(filepath.Join(data, "ro"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a/keep.txt", "ro/locked", "ro/other", "z/last.txt"} {
		full := filepath.Join(data, p)
		_ = os.Chmod(full, 0o644)
		if err := os.WriteFile(full, []byte(p+", changed since the save"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(data, "ro/extra"), []byte("not in the snapshot"), 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(data, "ro/locked"), 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(data, "ro"), 0o555); err != nil {
		t.Fatal(err)
	}
}

// checkUnharmed checks a DATA_DIR after a restore that failed: no
// temporary files, every path either as before or as in the snapshot, and
// the paths in keep exactly as before.
func checkUnharmed(t *testing.T, data string, before, snap treetest.Tree, keep ...string) {
	t.Helper()
	if junk := findNamed(data, ".statepack-tmp-"); len(junk) > 0 {
		t.Errorf("the failed restore left %v", junk)
	}
	got := treetest.MustRead(t, data)
	for p, n := range got {
		if b, ok := before[p]; ok && b.Content == n.Content && b.Type == n.Type {
			continue
		}
		if s, ok := snap[p]; ok && s.Content == n.Content && s.Type == n.Type {
			continue
		}
		t.Errorf("%s is neither as before nor as in the snapshot: %+v", p, n)
	}
	for _, p := range keep {
		if got[p] != before[p] {
			t.Errorf("%s changed: was %+v, is %+v", p, before[p], got[p])
		}
	}
}

// checkInterrupted checks that status --json reports an interrupted
// restore.
func checkInterrupted(t *testing.T, res testbin.Result) {
	t.Helper()
	var st statusDoc
	if res.Code != 0 || json.Unmarshal([]byte(res.Stdout), &st) != nil || st.InterruptedRestore == "" {
		t.Errorf("status does not report the failed restore as interrupted: %s", res)
	}
}

// TestRestoreUnwritable: restore into a DATA_DIR where a path cannot be
// replaced. As root, a file with the immutable attribute (chattr +i) in a
// read-only directory: restore fails with one line naming the file, the
// file and everything else is either as before or as in the snapshot,
// nothing is left half-written, what DATA_DIR held is in the backup,
// status reports the interrupted restore, and once the attribute is gone
// a second restore completes exactly. As an
// unprivileged user: a read-only directory and read-only files of the
// user's own are no obstacle (restore may change what it owns), but a
// read-only directory of another user is, with the same guarantees.
func TestRestoreUnwritable(t *testing.T) {
	t.Run("immutable", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("chattr +i needs root; the unprivileged cases cover a non-root user")
		}
		if _, err := exec.LookPath("chattr"); err != nil {
			t.Skip("chattr is not installed")
		}
		r := testbin.New(t)
		root := t.TempDir()
		data := filepath.Join(root, "data")
		r.Env["STATEPACK_STORE"], r.Env["DATA_DIR"] = filepath.Join(root, "store"), data
		treetest.Write(t, data, permTree())
		if err := os.Chmod(filepath.Join(data, "ro"), 0o555); err != nil {
			t.Fatal(err)
		}
		snap := treetest.MustRead(t, data)
		r.MustRun("save", "s")
		changeTree(t, data)
		locked := filepath.Join(data, "ro/locked")
		if out, err := exec.Command("chattr", "+i", locked).CombinedOutput(); err != nil {
			t.Skipf("chattr +i is not supported here: %v: %s", err, out)
		}
		t.Cleanup(func() { _ = exec.Command("chattr", "-i", locked).Run() })
		before := treetest.MustRead(t, data)

		res := r.Run("restore", "s")
		if res.Code != 1 || len(lines(res.Stderr)) != 1 || !strings.Contains(res.Stderr, "ro/locked") {
			t.Fatalf("restore over an immutable file: want exit 1 and one line naming ro/locked, got %s", res)
		}
		note(t, "restore over an immutable file (root)", "exit %d, %q", res.Code, strings.TrimSpace(res.Stderr))
		checkUnharmed(t, data, before, snap, "ro/locked")
		checkInterrupted(t, r.Run("--json", "status"))
		scratch := filepath.Join(root, "scratch")
		r.MustRun("restore", "restore-backup", "--data-dir", scratch, "--no-backup")
		treetest.AssertEqual(t, before, treetest.MustRead(t, scratch))

		if out, err := exec.Command("chattr", "-i", locked).CombinedOutput(); err != nil {
			t.Fatalf("chattr -i: %v: %s", err, out)
		}
		r.MustRun("restore", "s")
		treetest.AssertEqual(t, snap, treetest.MustRead(t, data))
	})

	t.Run("own-read-only-dir", func(t *testing.T) {
		a := unprivileged(t)
		data := filepath.Join(a.base, "data")
		a.env["STATEPACK_STORE"], a.env["DATA_DIR"] = a.dir("store"), data
		treetest.Write(t, data, permTree())
		if err := os.Chmod(filepath.Join(data, "ro"), 0o555); err != nil {
			t.Fatal(err)
		}
		a.own(data)
		snap := treetest.MustRead(t, data)
		a.mustRun("save", "s")
		changeTree(t, data)
		a.own(data)
		res := a.run("restore", "s")
		if res.Code != 0 {
			t.Fatalf("restore as uid %d over its own read-only directory and files: %s", a.uid, res)
		}
		note(t, "restore over the user's own read-only directory and files", "uid %d: exit 0, DATA_DIR exact", a.uid)
		treetest.AssertEqual(t, snap, treetest.MustRead(t, data))
	})

	t.Run("other-users-read-only-dir", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root to give a directory to another user than the one restoring")
		}
		a := unprivileged(t)
		data := filepath.Join(a.base, "data")
		a.env["STATEPACK_STORE"], a.env["DATA_DIR"] = a.dir("store"), data
		treetest.Write(t, data, permTree())
		a.own(data)
		ro := filepath.Join(data, "ro")
		if err := os.Chmod(ro, 0o555); err != nil {
			t.Fatal(err)
		}
		snap := treetest.MustRead(t, data)
		a.mustRun("save", "s")
		changeTree(t, data)
		a.own(data)
		// ro and what is in it belong to root now: uid 65534 may read but
		// not change them.
		for _, p := range []string{ro, filepath.Join(ro, "locked"), filepath.Join(ro, "other"), filepath.Join(ro, "extra")} {
			if err := os.Lchown(p, 0, 0); err != nil {
				t.Fatal(err)
			}
		}
		before := treetest.MustRead(t, data)
		res := a.run("restore", "s")
		if res.Code != 1 || len(lines(res.Stderr)) != 1 || !strings.Contains(res.Stderr, "ro/") || !strings.Contains(res.Stderr, "permission denied") {
			t.Fatalf("restore into another user's read-only directory: want exit 1 and one line naming the path, got %s", res)
		}
		note(t, "restore into another user's read-only directory (uid 65534)", "exit %d, %q", res.Code, strings.TrimSpace(res.Stderr))
		checkUnharmed(t, data, before, snap, "ro/locked", "ro/other", "ro/extra")
		checkInterrupted(t, a.run("--json", "status"))
		scratch := a.dir("scratch")
		a.mustRun("restore", "restore-backup", "--data-dir", scratch, "--no-backup")
		treetest.AssertEqual(t, before, treetest.MustRead(t, scratch))

		a.own(ro)
		a.mustRun("restore", "s")
		treetest.AssertEqual(t, snap, treetest.MustRead(t, data))
	})
}

// TestReadOnlyStore: the store is on a filesystem mounted read-only.
// Everything that only reads works (list, log, show, diff, status,
// verify); save fails with one line saying the filesystem is read-only
// and changes nothing; restore, which must record its progress and back
// up DATA_DIR in the store, fails the same way before touching DATA_DIR.
func TestReadOnlyStore(t *testing.T) {
	fsys := mountTmpfs(t, "64m")
	root := t.TempDir()
	r := testbin.New(t)
	store, data := filepath.Join(fsys, "store"), filepath.Join(root, "data")
	r.Env["STATEPACK_STORE"], r.Env["DATA_DIR"] = store, data
	r.MustRun("init", "--pack-size", "1MiB")
	if _, err := datagen.Generate(data, datagen.Options{Seed: 5, Size: 4 << 20}); err != nil {
		t.Fatal(err)
	}
	r.MustRun("save", "s")
	if _, err := datagen.Mutate(data, 5, 1); err != nil {
		t.Fatal(err)
	}
	r.MustRun("save", "s")
	if _, err := datagen.Mutate(data, 5, 2); err != nil {
		t.Fatal(err)
	}
	storeBefore, dataBefore := treetest.MustRead(t, store), treetest.MustRead(t, data)
	remount(t, fsys, unix.MS_RDONLY, "")
	t.Cleanup(func() { _ = unix.Mount("tmpfs", fsys, "tmpfs", unix.MS_REMOUNT, "") })

	for _, args := range [][]string{
		{"list"}, {"log", "s"}, {"show", "s", "--files"}, {"diff", "s~1", "s"}, {"diff", "s"},
		{"status"}, {"verify"}, {"verify", "--read-data"},
	} {
		res := r.Run(args...)
		if res.Code != 0 {
			t.Errorf("%s on a read-only store: %s", strings.Join(args, " "), res)
		}
	}
	note(t, "read-only store", "list, log, show --files, diff, status, verify and verify --read-data: exit 0")

	res := r.Run("save", "s")
	if res.Code != 1 || len(lines(res.Stderr)) != 1 || !strings.Contains(res.Stderr, "read-only file system") {
		t.Errorf("save into a read-only store: want exit 1 and one line saying read-only, got %s", res)
	}
	note(t, "read-only store", "save: exit %d, %q", res.Code, strings.TrimSpace(res.Stderr))
	var e errorDoc
	if res := r.Run("--json", "save", "s"); json.Unmarshal([]byte(res.Stderr), &e) != nil || e.Error.Code == "" {
		t.Errorf("save --json into a read-only store: %s", res)
	} else {
		note(t, "read-only store", "save --json: code %q", e.Error.Code)
	}
	target := filepath.Join(root, "restored")
	res = r.Run("restore", "s~1", "--data-dir", target)
	if res.Code != 1 || len(lines(res.Stderr)) != 1 || !strings.Contains(res.Stderr, "read-only file system") {
		t.Errorf("restore from a read-only store: want exit 1 and one line saying read-only, got %s", res)
	}
	if exists(target) {
		t.Errorf("the failed restore created %s", target)
	}
	note(t, "read-only store", "restore: exit %d, %q", res.Code, strings.TrimSpace(res.Stderr))
	if res := r.Run("restore", "s~1"); res.Code == 0 {
		t.Errorf("restore into DATA_DIR from a read-only store succeeded without a place for its backup: %s", res)
	}
	if d := diffTrees(storeBefore, treetest.MustRead(t, store)); d != "" {
		t.Errorf("the store changed: %s", d)
	}
	if d := diffTrees(dataBefore, treetest.MustRead(t, data)); d != "" {
		t.Errorf("DATA_DIR changed: %s", d)
	}
}

// TestRestoreRemovesStaleTemps: the temporary files of a restore that was
// killed (.statepack-tmp-*, which save and scans skip) are removed by the
// next restore; they used to stay in DATA_DIR for good.
func TestRestoreRemovesStaleTemps(t *testing.T) {
	r := testbin.New(t)
	root := t.TempDir()
	data := filepath.Join(root, "data")
	r.Env["STATEPACK_STORE"], r.Env["DATA_DIR"] = filepath.Join(root, "store"), data
	treetest.Write(t, data, permTree())
	want := treetest.MustRead(t, data)
	r.MustRun("save", "s")
	treetest.Write(t, data, map[string]treetest.Spec{
		"ro/.statepack-tmp-0123456789abcdef": {Content: "half a file"},
		".statepack-tmp-fedcba9876543210":    {Link: "ro/locked"},
	})
	r.MustRun("restore", "s")
	treetest.AssertEqual(t, want, treetest.MustRead(t, data))
}
