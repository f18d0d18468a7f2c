package attack

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/statepack/statepack/internal/treetest"
)

// One writer per DATA_DIR (issue 15, item 2; DESIGN invariant 8). Before,
// two restores of one DATA_DIR at once both exited 0 and left a mix of
// both snapshots, and a save during a restore recorded whatever it found
// half written. Now a save or restore takes an exclusive flock on the
// DATA_DIR directory itself; another one is refused in one line naming
// the holder's PID (exit status 1, JSON code "locked", as a locked
// repository), or waits with --lock-wait.

// lockHolder returns the PID holding a flock on directory dir, from
// /proc/locks, or 0.
func lockHolder(t *testing.T, dir string) int {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("/proc/locks")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%02x:%02x:%d", unix.Major(uint64(st.Dev)), unix.Minor(uint64(st.Dev)), st.Ino)
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 && f[1] == "FLOCK" && f[5] == want {
			pid, _ := strconv.Atoi(f[4])
			return pid
		}
	}
	return 0
}

// holdLock takes the DATA_DIR lock in the test process, as another
// statepack would.
func holdLock(t *testing.T, dir string) {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
}

// wantDataDirLocked checks that a run was refused because pid holds dir.
func wantDataDirLocked(t *testing.T, r result, dir string, pid int) {
	t.Helper()
	want := fmt.Sprintf("DATA_DIR %s is being saved or restored by another statepack (pid %d)", dir, pid)
	if r.code != 1 {
		t.Errorf("want exit status 1 (as for a locked repository): %s", r)
	}
	if msg := clearMessage(r, "", want); msg != "" {
		t.Errorf("%s\n%s", msg, r)
	}
}

// TestDataDirLockedByAnother: while another process holds DATA_DIR, save,
// restore and pull --restore of it are refused at once, naming it, and
// change nothing; --json reports the code "locked".
func TestDataDirLockedByAnother(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	treetest.Write(t, e.data, map[string]treetest.Spec{"a": {Content: "saved"}, "d/b": {Content: "also saved"}})
	e.must("save", "s")
	remoteDir := filepath.Join(e.root, "remote")
	e.must("init", "--remote", remoteDir)
	e.must("push", "s", "--remote", remoteDir)
	treetest.Write(t, e.data, map[string]treetest.Spec{"a": {Content: "changed, not saved"}})
	before := treetest.MustRead(t, e.data)
	holdLock(t, e.data)

	fresh := newEnv(t) // another machine: pull --restore into an empty DATA_DIR
	holdLock(t, fresh.data)
	for _, tc := range []struct {
		name string
		e    *env
		args []string
	}{
		{"save", e, []string{"save", "s"}},
		{"restore", e, []string{"restore", "s"}},
		{"pull --restore", fresh, []string{"pull", "s", "--restore", "--remote", remoteDir}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantDataDirLocked(t, tc.e.run(tc.args...), tc.e.data, os.Getpid())
		})
	}
	treetest.AssertEqual(t, before, treetest.MustRead(t, e.data))
	if got := treetest.MustRead(t, fresh.data); len(got) != 0 {
		t.Errorf("pull --restore into a locked DATA_DIR wrote %v", got)
	}
	r := e.run("--json", "save", "s")
	var doc struct {
		Error struct{ Code, Message string }
	}
	err := json.Unmarshal([]byte(r.stderr), &doc)
	if body := doc.Error; err != nil || body.Code != "locked" || !strings.Contains(body.Message, "is being saved or restored") {
		t.Errorf("save --json while DATA_DIR is locked: %+v %v\n%s", doc, err, r)
	}
}

// TestConcurrentRestoresOfOneDataDir: a restore is stopped (SIGSTOP)
// while it holds DATA_DIR; a second restore and a save of the same
// DATA_DIR are refused, naming its PID (they may share no store: the lock
// is on DATA_DIR). Resumed, the first restore completes, and DATA_DIR is
// exactly its snapshot, not a mix.
func TestConcurrentRestoresOfOneDataDir(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bigFile(t, e, seedFor(t))
	e.must("save", "big")
	want := treetest.MustRead(t, e.data)
	if err := os.RemoveAll(e.data); err != nil {
		t.Fatal(err)
	}
	treetest.Write(t, e.data, map[string]treetest.Spec{"big.bin": {Content: "small"}, "other": {Content: "x"}})
	e.must("save", "small")
	first := e.start(t, nil, "restore", "big")
	deadline := time.Now().Add(30 * time.Second)
	for lockHolder(t, e.data) != first.cmd.Process.Pid {
		select {
		case <-first.done:
			t.Fatalf("the restore ended before it was seen holding DATA_DIR: %s", first.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the restore never held DATA_DIR")
		}
		time.Sleep(time.Millisecond) // polling, as waitForLock does
	}
	first.signal(t, syscall.SIGSTOP)
	other := map[string]string{"STATEPACK_STORE": filepath.Join(e.root, "other-store")}
	for _, args := range [][]string{{"restore", "small"}, {"save", "small"}} {
		wantDataDirLocked(t, e.run(args...), e.data, first.cmd.Process.Pid)
	}
	wantDataDirLocked(t, e.runWith(other, runLimit, "save", "elsewhere"), e.data, first.cmd.Process.Pid)
	first.signal(t, syscall.SIGCONT)
	if code := first.wait(t, runLimit); code != 0 {
		t.Fatalf("the first restore: exit %d: %s", code, first.stderr.String())
	}
	treetest.AssertEqual(t, want, treetest.MustRead(t, e.data))
}

// TestRestoreFailureNamesBackup: a restore that fails after it saved
// DATA_DIR's unsaved content (here: the snapshot's packs are gone; a
// full disk does the same) names the backup in its one-line error, and
// the command it names brings the content back (issue 15, item 8).
func TestRestoreFailureNamesBackup(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	treetest.Write(t, e.data, map[string]treetest.Spec{"a": {Content: strings.Repeat("snapshot ", 5000)}})
	e.must("save", "s")
	packs, _ := filepath.Glob(filepath.Join(e.store, "packs", "*", "*"))
	for _, p := range packs {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	treetest.Write(t, e.data, map[string]treetest.Spec{"a": {Content: "my unsaved work"}, "b": {Content: "more of it"}})
	before := treetest.MustRead(t, e.data)
	r := e.run("restore", "s")
	if r.code == 0 {
		t.Fatalf("restore without its packs succeeded: %s", r)
	}
	m := regexp.MustCompile("DATA_DIR's previous content is saved as restore-backup ([0-9a-f]{8}): `statepack restore ([0-9a-f]{8})` brings it back").FindStringSubmatch(r.stderr)
	if msg := clearMessage(r, ""); msg != "" || m == nil || m[1] != m[2] {
		t.Fatalf("the error does not name the backup: %s %s", msg, r)
	}
	e.must("restore", m[1])
	treetest.AssertEqual(t, before, treetest.MustRead(t, e.data))
}

// TestDiskFullRestoreNamesBackup: the same on a real full disk. DATA_DIR
// is on a 4 MiB tmpfs and holds unsaved work; restoring an 8 MiB
// snapshot saves that work first, then runs out of space. The one-line
// error says how to finish and where the work is, and the command it
// names brings the work back.
func TestDiskFullRestoreNamesBackup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skipf("mounting a tmpfs needs root (euid %d)", os.Geteuid())
	}
	t.Parallel()
	e := newEnv(t)
	big := randomBytes(rng(seedFor(t), 1), 8<<20)
	treetest.Write(t, e.data, map[string]treetest.Spec{"big": {Content: string(big)}})
	e.must("save", "s")
	small := filepath.Join(e.root, "small")
	if err := os.Mkdir(small, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", small, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=4m,mode=0755"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(small, unix.MNT_DETACH) })
	data := filepath.Join(small, "data")
	treetest.Write(t, data, map[string]treetest.Spec{"work": {Content: "unsaved work"}})
	before := treetest.MustRead(t, data)
	on := map[string]string{"DATA_DIR": data}
	r := e.runWith(on, runLimit, "restore", "s", "--force") // never saved: unknown content
	m := regexp.MustCompile("DATA_DIR's previous content is saved as restore-backup ([0-9a-f]{8}): `statepack restore ([0-9a-f]{8})` brings it back").FindStringSubmatch(r.stderr)
	if msg := clearMessage(r, "", "no space left on device", "run the same command again"); r.code != 1 || msg != "" || m == nil || m[1] != m[2] {
		t.Fatalf("restore into a full DATA_DIR: %s\n%s", msg, r)
	}
	t.Logf("restore into a full DATA_DIR: %s", strings.TrimSpace(r.stderr))
	if r := e.runWith(on, runLimit, "restore", m[1]); r.code != 0 {
		t.Fatalf("%s", r)
	}
	treetest.AssertEqual(t, before, treetest.MustRead(t, data))
}
