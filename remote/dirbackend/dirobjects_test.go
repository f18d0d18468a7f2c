package dirbackend_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/maintain"
	"github.com/statepack/statepack/chunker"
	"github.com/statepack/statepack/remote/backend"
	"github.com/statepack/statepack/remote/dirbackend"
)

// secretText is what a planted symlink points at: no error may show it.
const secretText = "AKIADIROBJECTSECRET"

// notFiles are the things a shared directory remote can hold in place of
// an object (invariant 9). Each plants one at p; outside is a directory
// of the victim's holding a secret file. A non-empty result skips.
var notFiles = []struct {
	name  string
	kind  string // what the error says it is
	plant func(p, outside string) string
}{
	{"fifo", "a FIFO", func(p, _ string) string { return errString(unix.Mkfifo(p, 0o644)) }},
	{"link to a secret", "a symlink", func(p, outside string) string {
		return errString(os.Symlink(filepath.Join(outside, "credentials"), p))
	}},
	{"link to /dev/zero", "a symlink", func(p, _ string) string { return errString(os.Symlink("/dev/zero", p)) }},
	{"dangling link", "a symlink", func(p, _ string) string { return errString(os.Symlink("/nonexistent", p)) }},
	{"char device", "a character device", func(p, _ string) string {
		if err := unix.Mknod(p, unix.S_IFCHR|0o644, int(unix.Mkdev(1, 5))); err != nil {
			return "mknod needs root: " + err.Error()
		}
		return ""
	}},
	{"socket", "a socket", func(p, _ string) string {
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
		if err != nil {
			return err.Error()
		}
		defer unix.Close(fd)
		if len(p) >= 108 {
			return "path too long for a socket"
		}
		return errString(unix.Bind(fd, &unix.SockaddrUnix{Name: p}))
	}},
}

func errString(err error) string {
	if err != nil {
		panic(err)
	}
	return ""
}

// within runs fn and fails the test if it has not returned by the time
// the test's bound ends: a hang is what these tests look for.
func within(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s still blocked after 10s", what)
	}
}

// checkRefused checks an error for a planted non-file: typed, naming the
// object and what it is, without the secret.
func checkRefused(t *testing.T, op, name, kind string, err error) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("%s(%s) succeeded on %s", op, name, kind)
	case !errors.Is(err, backend.ErrNotRegular) || !errors.Is(err, format.ErrCorrupt):
		t.Errorf("%s(%s) = %v, want ErrNotRegular and ErrCorrupt", op, name, err)
	case !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), kind):
		t.Errorf("%s(%s) = %q: does not name the object and %q", op, name, err, kind)
	case strings.Contains(err.Error(), secretText):
		t.Errorf("%s(%s) shows the planted file's bytes: %q", op, name, err)
	}
}

// TestDirObjectsRegularOnly: every read of an object of a directory
// repository refuses what is not a regular file, at once and by name,
// and never reads through a link.
func TestDirObjectsRegularOnly(t *testing.T) {
	for _, nf := range notFiles {
		t.Run(nf.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			outside := t.TempDir()
			if err := os.WriteFile(filepath.Join(outside, "credentials"), []byte(secretText+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			b, err := dirbackend.New(filepath.Join(t.TempDir(), "r"), true)
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"refs/main", "config", "packs/ab/abcd", "locks/l"} {
				p := filepath.Join(b.Root(), filepath.FromSlash(name))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if skip := nf.plant(p, outside); skip != "" {
					t.Skip(skip)
				}
				within(t, "Get", func() {
					rc, err := b.Get(ctx, name)
					if err == nil {
						rc.Close()
					}
					checkRefused(t, "Get", name, nf.kind, err)
				})
				within(t, "GetRange", func() {
					rc, err := b.GetRange(ctx, name, 0, 4)
					if err == nil {
						rc.Close()
					}
					checkRefused(t, "GetRange", name, nf.kind, err)
				})
				within(t, "Stat", func() {
					_, err := b.Stat(ctx, name)
					checkRefused(t, "Stat", name, nf.kind, err)
				})
				within(t, "GetVersioned", func() {
					_, _, err := b.GetVersioned(ctx, name)
					checkRefused(t, "GetVersioned", name, nf.kind, err)
				})
				within(t, "PutIf", func() {
					_, err := b.PutIf(ctx, name, []byte("x"), "")
					checkRefused(t, "PutIf", name, nf.kind, err)
				})
				var listed bool
				within(t, "List", func() {
					err := b.List(ctx, name[:strings.LastIndexByte(name, '/')+1], func(oi backend.ObjectInfo) error {
						listed = listed || oi.Name == name
						return nil
					})
					if err != nil {
						t.Errorf("List beside %s: %v", name, err)
					}
				})
				if !listed {
					t.Errorf("List hides %s: readers could not name it", name)
				}
			}
		})
	}
}

// TestDirObjectsSymlinkedDirs: a directory of the layout replaced by a
// symlink (`refs -> /etc`) is refused by name for every read, and by
// List; the root itself may be a symlink (a share mounted elsewhere).
func TestDirObjectsSymlinkedDirs(t *testing.T) {
	ctx := context.Background()
	outside := t.TempDir()
	for _, p := range []string{"refs/main", "ab/abcd"} {
		if err := os.MkdirAll(filepath.Join(outside, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(outside, p), []byte(secretText), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	real := filepath.Join(t.TempDir(), "real")
	linkRoot := filepath.Join(t.TempDir(), "mounted")
	if err := os.MkdirAll(filepath.Join(real, "packs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, linkRoot); err != nil {
		t.Fatal(err)
	}
	b, err := dirbackend.New(linkRoot, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.PutIf(ctx, "config", []byte("fine"), ""); err != nil {
		t.Fatalf("a symlinked root must work: %v", err)
	}
	if data, _, err := b.GetVersioned(ctx, "config"); err != nil || string(data) != "fine" {
		t.Fatalf("read through a symlinked root: %q, %v", data, err)
	}
	if err := os.Symlink(filepath.Join(outside, "refs"), filepath.Join(real, "refs")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "ab"), filepath.Join(real, "packs", "ab")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, dir string }{{"refs/main", "refs"}, {"packs/ab/abcd", "packs/ab"}} {
		rc, err := b.Get(ctx, c.name)
		if err == nil {
			rc.Close()
		}
		checkRefused(t, "Get", c.dir, "a symlink", err)
		_, err = b.Stat(ctx, c.name)
		checkRefused(t, "Stat", c.dir, "a symlink", err)
		_, _, err = b.GetVersioned(ctx, c.name)
		checkRefused(t, "GetVersioned", c.dir, "a symlink", err)
		err = b.List(ctx, c.dir+"/", func(oi backend.ObjectInfo) error {
			t.Errorf("List(%s/) shows %s, found through a symlink", c.dir, oi.Name)
			return nil
		})
		checkRefused(t, "List", c.dir, "a symlink", err)
	}
}

// TestDirObjectsReadsStopWithContext: a read of a large object stops
// when its context ends, between reads of at most a few MiB, so Ctrl-C
// and --timeout end even a 1 GiB read promptly. Its size is the open
// file's.
func TestDirObjectsReadsStopWithContext(t *testing.T) {
	b, err := dirbackend.New(filepath.Join(t.TempDir(), "r"), true)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(b.Root(), "index", "big")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, 1<<40); err != nil { // sparse: costs nothing
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rc, err := b.Get(ctx, "index/big")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	st, ok := rc.(interface{ Stat() (os.FileInfo, error) })
	if !ok {
		t.Fatal("Get's reader does not report the open file's size")
	}
	if fi, err := st.Stat(); err != nil || fi.Size() != 1<<40 {
		t.Fatalf("size %v, %v; want 1 TiB", fi, err)
	}
	buf := make([]byte, 64<<20)
	n, err := rc.Read(buf)
	if err != nil || n == 0 || n > 4<<20 {
		t.Fatalf("one Read of 64 MiB read %d bytes, %v: want at most 4 MiB", n, err)
	}
	cancel()
	if _, err := io.Copy(io.Discard, rc); !errors.Is(err, context.Canceled) {
		t.Fatalf("read after cancel: %v, want context.Canceled", err)
	}
	rr, err := b.GetRange(ctx, "index/big", 0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Close()
	if _, err := io.Copy(io.Discard, rr); !errors.Is(err, context.Canceled) {
		t.Fatalf("ranged read after cancel: %v, want context.Canceled", err)
	}
}

// TestVerifyReportsNonFiles: verify names every non-file in a directory
// repository as damage, a FIFO lock (which no reader looks at) and a
// symlinked directory of the layout included.
func TestVerifyReportsNonFiles(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "r")
	b, err := dirbackend.New(root, true)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := format.NewConfig(chunker.DefaultParams(), 0)
	if err != nil {
		t.Fatal(err)
	}
	r, err := archive.Init(ctx, b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "locks"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(root, "locks", "feedface"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(t.TempDir(), filepath.Join(root, "lookup")); err != nil {
		t.Fatal(err)
	}
	var rep *maintain.VerifyReport
	within(t, "Verify", func() { rep, err = maintain.Verify(ctx, r, maintain.VerifyOptions{}) })
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	for _, p := range rep.Problems {
		got.WriteString(p.Object + ": " + p.Error + "\n")
	}
	for _, want := range []string{"locks/feedface: locks/feedface is a FIFO", "lookup: lookup is a symlink, not a directory"} {
		if !strings.Contains(got.String(), want) {
			t.Errorf("verify problems do not include %q:\n%s", want, got.String())
		}
	}
	// The FIFO lock blocks no one: it is stale like an unreadable one.
	within(t, "Lock", func() {
		l, err := r.Lock(ctx, true, "test", 0)
		if err != nil {
			t.Errorf("a FIFO lock stops an exclusive lock: %v", err)
		}
		l.Unlock()
	})
}
