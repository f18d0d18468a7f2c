package attack

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/internal/treetest"
)

// Issue 15, items 3 and 4, and invariant 9: objects of a directory
// remote are opened as regular files only, without following links, and
// an object's bytes never appear in an error. Anyone who can write to a
// shared directory remote can plant, in place of any object, a FIFO (an
// open that blocks forever, past --timeout and the first Ctrl-C), a
// device or a symlink to /dev/zero (a read without end), a symlink to a
// file of the victim's (~/.aws/credentials, whose bytes an error message
// then showed), or a symlinked directory. Every command that reads the
// remote must end promptly, say what is wrong in one line or report the
// damage, never show the planted file's bytes, and change neither
// DATA_DIR nor the local store.

// objectSecret is the content of the victim's secret file that planted
// symlinks point at: no output may contain it.
const objectSecret = "AKIAOBJECTSECRET aws_secret_access_key=wJalrXUtnFEMI/K7MDENG"

// objectBound is how long one command may take facing a planted object:
// far above a healthy run, far below a hang (runWith kills at it).
const objectBound = 30 * time.Second

// plantKind is one way of planting something that is not an object.
type plantKind struct {
	name    string
	regular bool // a regular file, only too large
	// plant puts it at p, in place of a file (dir false) or of the
	// directory that holds the object (dir true); it returns why it
	// cannot, for a skip.
	plant func(t *testing.T, p string, dir bool, secret string) (skip string)
}

var plantKinds = []plantKind{
	{"fifo", false, func(t *testing.T, p string, dir bool, _ string) string {
		must(t, unix.Mkfifo(p, 0o644))
		return ""
	}},
	{"secret-link", false, func(t *testing.T, p string, dir bool, secret string) string {
		must(t, os.Symlink(secret, p))
		return ""
	}},
	{"dev-zero-link", false, func(t *testing.T, p string, dir bool, _ string) string {
		must(t, os.Symlink("/dev/zero", p))
		return ""
	}},
	{"char-device", false, func(t *testing.T, p string, dir bool, _ string) string {
		// The device numbers of /dev/zero: a read without end.
		if err := unix.Mknod(p, unix.S_IFCHR|0o644, int(unix.Mkdev(1, 5))); err != nil {
			return fmt.Sprintf("mknod needs root (CAP_MKNOD): %v", err)
		}
		return ""
	}},
	// A sparse file of 100 GiB costs nothing to plant: it must be
	// refused by its size, not read up to a limit.
	{"sparse-100GiB", true, func(t *testing.T, p string, dir bool, _ string) string {
		must(t, os.WriteFile(p, nil, 0o644))
		must(t, os.Truncate(p, 100<<30))
		return ""
	}},
	{"dir-link", false, func(t *testing.T, p string, dir bool, secret string) string {
		must(t, os.Symlink(secret, p)) // secret is a directory here
		return ""
	}},
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// objectCase is one object of the remote to replace, and the state the
// commands name.
type objectCase struct {
	kind  string
	name  func(h *hostile) string
	state string
	noDir bool     // the object lies in the root: no directory of the layout to replace
	reads []string // commands that must read it, and so must fail
}

var objectCases = []objectCase{
	{kind: "ref", name: func(*hostile) string { return "refs/evil" }, state: "evil",
		reads: []string{"pull", "list", "log", "show", "verify"}},
	{kind: "snapshot", name: func(h *hostile) string { return "snapshots/" + h.baseID.String() }, state: "base",
		reads: []string{"pull", "list", "log", "show", "verify", "prune"}},
	// prune reads a pack only to repack it, and a planted one is not
	// garbage: it tolerates it.
	{kind: "pack", name: func(h *hostile) string { return h.list("packs/")[0] }, state: "base",
		reads: []string{"pull", "verify"}},
	{kind: "index", name: func(h *hostile) string { return h.list("index/")[0] }, state: "base",
		reads: []string{"pull", "verify", "prune"}},
	{kind: "config", name: func(*hostile) string { return "config" }, state: "base", noDir: true,
		reads: []string{"pull", "list", "log", "show", "verify", "prune", "push", "init"}},
	// A lock that is not a file, or too large for one, is stale like an
	// unreadable one: it blocks no one (unlock removes it), and verify
	// reports one that is not a file.
	{kind: "lock", name: func(*hostile) string { return "locks/00000000feedface00000000feedface" }, state: "base",
		reads: []string{"verify"}},
	{kind: "lookup-table", name: func(*hostile) string {
		return "lookup/" + format.Hash([]byte("planted lookup table")).String()
	}, state: "base", reads: []string{"verify"}},
}

// objectCommands are the commands run against each planted object.
var objectCommands = []struct {
	name string
	args func(state string) []string
}{
	{"pull", func(s string) []string { return []string{"pull", s, "--timeout", "10s"} }},
	{"list", func(string) []string { return []string{"list", "--remote"} }},
	{"log", func(s string) []string { return []string{"log", "--remote", s} }},
	{"show", func(s string) []string { return []string{"show", "--remote", s} }},
	{"verify", func(string) []string { return []string{"verify", "--remote"} }},
	{"prune", func(string) []string { return []string{"prune", "--remote"} }},
	{"push", func(string) []string { return []string{"push", "mine", "--timeout", "10s"} }},
	{"init", func(string) []string { return []string{"init", "--remote"} }},
}

// TestDirRemoteObjectsNotFiles plants each kind of non-file in place of
// each kind of object of a directory remote and runs every command that
// reads a remote against it.
func TestDirRemoteObjectsNotFiles(t *testing.T) {
	t.Parallel()
	for _, pk := range plantKinds {
		t.Run(pk.name, func(t *testing.T) {
			t.Parallel()
			h := newHostile(t, "dir")
			secret := filepath.Join(t.TempDir(), ".aws", "credentials")
			treetest.Write(t, filepath.Dir(secret), map[string]treetest.Spec{"credentials": {Content: objectSecret + "\n"}})
			// Named before any push adds objects of the victim's.
			names := map[string]string{}
			for _, oc := range objectCases {
				names[oc.kind] = oc.name(h)
			}
			for _, oc := range objectCases {
				if pk.name == "dir-link" && oc.noDir {
					continue // the root itself may be a symlink: a share mounted elsewhere
				}
				t.Run(oc.kind, func(t *testing.T) { plantAndRun(t, h, pk, oc, names[oc.kind], secret) })
			}
		})
	}
}

// plantAndRun plants pk at oc's object, runs every command, and puts the
// object back.
func plantAndRun(t *testing.T, h *hostile, pk plantKind, oc objectCase, name, secret string) {
	// The victim's verified copies of the remote's index objects, kept
	// by an earlier case, would spare a pull from reading the planted
	// one.
	must(t, os.RemoveAll(filepath.Join(h.victim.store, "cache")))
	p := filepath.Join(h.url, filepath.FromSlash(name))
	target := p
	if pk.name == "dir-link" {
		// The directory holding the object, pointing at a directory of
		// the victim's that holds a file of the object's name.
		target = filepath.Dir(p)
		outside := filepath.Join(t.TempDir(), "planted")
		treetest.Write(t, outside, map[string]treetest.Spec{filepath.Base(p): {Content: objectSecret + "\n"}})
		secret = outside
	}
	must(t, os.MkdirAll(filepath.Dir(target), 0o755))
	aside := filepath.Join(filepath.Dir(target), ".keep-"+filepath.Base(target))
	had := os.Rename(target, aside) == nil
	if skip := pk.plant(t, target, pk.name == "dir-link", secret); skip != "" {
		t.Skip(skip)
	}
	defer func() {
		if err := os.Remove(target); err != nil && !os.IsNotExist(err) {
			t.Fatal(err) // prune may have removed it as garbage
		}
		if had {
			must(t, os.Rename(aside, target))
		}
	}()
	for _, c := range objectCommands {
		if c.name == "init" && oc.kind != "config" {
			continue // init reads nothing else, and refuses an existing repository
		}
		store := storeFiles(t, h.victim.store)
		r := h.victim.runWith(nil, objectBound, c.args(oc.state)...)
		mustRead := contains(oc.reads, c.name) && !(pk.regular && oc.kind == "lock")
		switch {
		case r.code == -1:
			t.Errorf("%s: killed after %v: it hangs on a planted %s\n%s", c.name, r.took, pk.name, r)
			continue
		case strings.Contains(r.stdout+r.stderr, "AKIAOBJECTSECRET"):
			t.Errorf("%s shows the planted file's bytes:\n%s", c.name, r)
		case r.code == 0 && mustRead:
			t.Errorf("%s succeeded with a planted %s at %s:\n%s", c.name, pk.name, name, r)
		case r.maxRSS > maxRSS:
			t.Errorf("%s: peak RSS %d MiB, want under %d MiB", c.name, r.maxRSS>>20, maxRSS>>20)
		}
		if r.code != 0 {
			if msg := clearMessage(r, ""); msg != "" {
				t.Errorf("%s: %s\n%s", c.name, msg, r)
			}
			// init says a location whose config is some other file
			// holds no statepack repository: right, whatever it holds.
			if !mentions(r, name) && !(c.name == "init" && pk.regular) {
				t.Errorf("%s does not name %s:\n%s", c.name, name, r)
			}
			if d := sameTree(store, storeFiles(t, h.victim.store)); d != "" {
				t.Errorf("%s failed and changed the local store:\n%s", c.name, d)
			}
		}
		t.Logf("%s: exit %d in %v: %s", c.name, r.code, r.took.Round(time.Millisecond), firstLine(r))
	}
	h.unchanged()
}

// storeFiles is what a failed command must not change in the local
// store: its refs and objects.
func storeFiles(t *testing.T, store string) treetest.Tree {
	t.Helper()
	out := treetest.Tree{}
	for _, dir := range []string{"refs", "snapshots", "index", "packs"} {
		tree, err := treetest.Read(filepath.Join(store, dir))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for p, n := range tree {
			if n.Type == "file" {
				out[dir+"/"+p] = treetest.Node{Type: n.Type, Content: n.Content}
			}
		}
	}
	return out
}

// mentions reports whether the run's output names the object or the
// directory it was planted in (a short id is enough).
func mentions(r result, name string) bool {
	out := r.stdout + r.stderr
	for _, s := range []string{name, filepath.Dir(name)} {
		if s != "." && strings.Contains(out, s) {
			return true
		}
	}
	base := filepath.Base(name)
	return len(base) >= 8 && strings.Contains(out, base[:8])
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func firstLine(r result) string {
	s := strings.TrimSpace(r.stderr)
	if s == "" {
		s = strings.TrimSpace(r.stdout)
	}
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// TestRefBytesNeverInErrors: a ref holding something other than a
// snapshot id (here a recognisable secret: what a planted or careless
// ref may hold) is refused by every command that reads it, on a
// directory remote and on S3, without its bytes in the message. One
// ref is exactly 64 characters long, which reached the error in full.
func TestRefBytesNeverInErrors(t *testing.T) {
	forEachRemote(t, func(t *testing.T, h *hostile) {
		for _, ref := range []string{
			objectSecret + "\n",
			strings.Repeat("Z", 64-len("AKIAOBJECTSECRET")) + "AKIAOBJECTSECRET",
			`{"aws_access_key_id":"AKIAOBJECTSECRET"}`,
		} {
			h.put("refs/evil", []byte(ref))
			for _, args := range [][]string{
				{"pull", "evil"}, {"list", "--remote"}, {"log", "--remote", "evil"}, {"show", "--remote", "evil"},
			} {
				r := h.victim.run(args...)
				if r.code <= 0 || bytes.Contains([]byte(r.stdout+r.stderr), []byte("AKIAOBJECTSECRET")) {
					t.Errorf("a ref holding %d bytes of a secret: want a refusal without them:\n%s", len(ref), r)
				}
				if msg := clearMessage(r, h.secret, "evil"); msg != "" {
					t.Errorf("%s\n%s", msg, r)
				}
			}
		}
		h.unchanged()
		_ = h.be.Delete(context.Background(), "refs/evil")
	})
}
