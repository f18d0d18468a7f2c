package remote_test

import (
	"bytes"
	"errors"
	"io"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/statepack/statepack/internal/backendtest"
	"github.com/statepack/statepack/remote"
	"github.com/statepack/statepack/remote/backend"
	"github.com/statepack/statepack/remote/s3"
)

// dirKnownIssues are the conformance subtests dirbackend.Backend fails
// today; keep in step with dirKnownIssues in archive/dir_test.go.
var dirKnownIssues = []string{"NotFoundNested", "GetRangeOverflow"}

// The wrappers are backends too: with nothing to inject or retry, each
// passes the conformance suite around a directory backend.
func TestWrappersConformance(t *testing.T) {
	wrappers := map[string]func(backend.Backend) backend.Backend{
		"retry":   func(b backend.Backend) backend.Backend { return remote.WithRetry(b, remote.DefaultRetryPolicy()) },
		"counter": func(b backend.Backend) backend.Backend { return remote.NewCounter(b) },
		"faulty":  func(b backend.Backend) backend.Backend { return remote.NewFaulty(b) },
	}
	for name, wrap := range wrappers {
		t.Run(name, func(t *testing.T) {
			backendtest.Run(t, func(t *testing.T) backend.Backend {
				if slices.Contains(dirKnownIssues, path.Base(t.Name())) {
					t.Skip("known dir.go bug, see dirKnownIssues in archive/dir_test.go")
				}
				return wrap(tempDirBackend(t))
			})
		})
	}
}

func TestCounter(t *testing.T) {
	c := remote.NewCounter(tempDirBackend(t))
	ctx := t.Context()
	data := bytes.Repeat([]byte("x"), 1000)
	if err := c.Put(ctx, "packs/00/a", bytes.NewReader(data), 1000); err != nil {
		t.Fatal(err)
	}
	getAll(t, c, "packs/00/a") // 1000 bytes
	rc, err := c.GetRange(ctx, "packs/00/a", 10, 100)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, rc); err != nil { // 100 bytes
		t.Fatal(err)
	}
	rc.Close()
	if _, err := c.Get(ctx, "missing"); err == nil { // a failed request counts
		t.Fatal("Get of a missing object succeeded")
	}
	tag, err := c.PutIf(ctx, "refs/main", []byte("12345"), "") // 5 bytes sent
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.GetVersioned(ctx, "refs/main"); err != nil { // 5 received
		t.Fatal(err)
	}
	if _, err := c.PutIf(ctx, "refs/main", []byte("678"), tag); err != nil { // 3 sent
		t.Fatal(err)
	}
	if _, err := c.Stat(ctx, "packs/00/a"); err != nil {
		t.Fatal(err)
	}
	if err := c.List(ctx, "", func(backend.ObjectInfo) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "packs/00/a"); err != nil {
		t.Fatal(err)
	}
	want := remote.Counts{
		Requests: 10, Gets: 4, Puts: 3, Lists: 1, Heads: 1, Deletes: 1,
		BytesSent: 1008, BytesReceived: 1105,
	}
	if got := c.Stats(); got != want {
		t.Errorf("Stats() = %+v\nwant      %+v", got, want)
	}
}

// TestCounterConcurrent: counts stay exact under concurrent calls.
func TestCounterConcurrent(t *testing.T) {
	c := remote.NewCounter(tempDirBackend(t))
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			name := "index/" + string(rune('a'+i))
			_ = c.Put(t.Context(), name, strings.NewReader("0123456789"), 10)
			_, _ = c.Stat(t.Context(), name)
		})
	}
	wg.Wait()
	if got := c.Stats(); got.Puts != 20 || got.Heads != 20 || got.Requests != 40 || got.BytesSent != 200 {
		t.Errorf("Stats() = %+v, want 20 puts, 20 stats, 200 bytes sent", got)
	}
}

// TestCounterKeepsSeeker: a Counter inside WithRetry still lets a failed
// Put rewind, and counts the bytes of both attempts.
func TestCounterKeepsSeeker(t *testing.T) {
	f := remote.NewFaulty(tempDirBackend(t)).InterruptPut(1, 300, io.ErrUnexpectedEOF)
	c := remote.NewCounter(f)
	b := remote.WithRetry(c, noWaitRetry)
	data := bytes.Repeat([]byte("y"), 1000)
	if err := b.Put(t.Context(), "packs/00/b", bytes.NewReader(data), 1000); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if got := c.Stats(); got.Puts != 2 || got.BytesSent != 1300 {
		t.Errorf("Stats() = %+v, want 2 puts and 1300 bytes sent", got)
	}
	if !bytes.Equal(getAll(t, b, "packs/00/b"), data) {
		t.Error("stored object differs")
	}
}

func TestFaultyRules(t *testing.T) {
	f := remote.NewFaulty(tempDirBackend(t)).
		FailNth(remote.MethodPut, 2, remote.NoSpace()).
		FailFrom(remote.MethodStat, 3, backend.ErrAccessDenied)
	ctx := t.Context()
	var putErrs, statErrs []error
	for range 4 {
		putErrs = append(putErrs, f.Put(ctx, "config", strings.NewReader("x"), 1))
		_, err := f.Stat(ctx, "config")
		statErrs = append(statErrs, err)
	}
	for i, err := range putErrs {
		if fail := i == 1; (err != nil) != fail {
			t.Errorf("Put %d: %v, want failure %v", i+1, err, fail)
		}
	}
	err := putErrs[1]
	if !errors.Is(err, backend.ErrNoSpace) || !errors.Is(err, syscall.ENOSPC) || !errors.Is(err, remote.ErrInjected) {
		t.Errorf("injected no-space error %v: want ErrNoSpace, ENOSPC and ErrInjected", err)
	}
	if !strings.Contains(err.Error(), "Put config (call 2)") {
		t.Errorf("message %q does not say which call failed", err)
	}
	for i, err := range statErrs {
		if fail := i >= 2; (err != nil) != fail || (fail && !errors.Is(err, backend.ErrAccessDenied)) {
			t.Errorf("Stat %d: %v, want failure %v", i+1, err, fail)
		}
	}
	if f.Calls(remote.MethodPut) != 4 || f.Calls(remote.MethodStat) != 4 || f.Calls(remote.MethodGet) != 0 {
		t.Errorf("calls: Put %d, Stat %d, Get %d", f.Calls(remote.MethodPut), f.Calls(remote.MethodStat), f.Calls(remote.MethodGet))
	}
}

// TestFaultyHook: the hook sees every call, in order, and can fail one.
func TestFaultyHook(t *testing.T) {
	var ops []remote.Op
	errHook := errors.New("hook says no")
	f := remote.NewFaulty(tempDirBackend(t)).Hook(func(op remote.Op) error {
		ops = append(ops, op)
		if op.Method == remote.MethodPutIf && op.Name == "refs/main" {
			return errHook
		}
		return nil
	})
	ctx := t.Context()
	putString(t, f, "config", "x")
	if _, err := f.PutIf(ctx, "refs/main", []byte("s"), ""); !errors.Is(err, errHook) {
		t.Errorf("PutIf: %v, want the hook's error", err)
	}
	if _, _, err := f.GetVersioned(ctx, "refs/main"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("the refused PutIf reached the backend: %v", err)
	}
	want := []remote.Op{
		{Method: remote.MethodPut, Name: "config", Call: 1},
		{Method: remote.MethodPutIf, Name: "refs/main", Call: 1},
		{Method: remote.MethodGetVersioned, Name: "refs/main", Call: 1},
	}
	if len(ops) != len(want) {
		t.Fatalf("hook saw %+v, want %+v", ops, want)
	}
	for i := range want {
		if ops[i] != want[i] {
			t.Errorf("op %d = %+v, want %+v", i, ops[i], want[i])
		}
	}
}

// TestFaultyInterruptPut: a Put cut midway leaves nothing behind.
func TestFaultyInterruptPut(t *testing.T) {
	f := remote.NewFaulty(tempDirBackend(t)).InterruptPut(1, 4096, remote.NoSpace())
	data := bytes.Repeat([]byte("z"), 10000)
	err := f.Put(t.Context(), "packs/00/c", bytes.NewReader(data), int64(len(data)))
	if !errors.Is(err, backend.ErrNoSpace) {
		t.Errorf("interrupted Put: %v, want ErrNoSpace", err)
	}
	if _, err := f.Stat(t.Context(), "packs/00/c"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("interrupted Put left an object: %v", err)
	}
	if err := f.Put(t.Context(), "packs/00/c", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Errorf("second Put: %v", err)
	}
}

func TestFaultyUnknownMethod(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("a rule for an unknown method was accepted")
		}
	}()
	remote.NewFaulty(tempDirBackend(t)).FailNth("Gett", 1, errors.New("x"))
}

func TestOpenDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "remote")
	if _, err := remote.Open(t.Context(), dir, s3.Config{}, false); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Open of a missing directory: %v, want ErrNotFound", err)
	}
	b, err := remote.Open(t.Context(), "file://"+dir, s3.Config{}, true)
	if err != nil {
		t.Fatalf("Open with create: %v", err)
	}
	if b.Location() != dir {
		t.Errorf("Location() = %q, want %q", b.Location(), dir)
	}
	if _, ok := b.(interface{ Unwrap() backend.Backend }); !ok {
		t.Error("Open's backend does not unwrap to the directory backend")
	}
	if _, err := remote.Open(t.Context(), dir, s3.Config{}, false); err != nil {
		t.Errorf("Open of the created directory: %v", err)
	}
	if _, err := remote.Open(t.Context(), "gs://bucket", s3.Config{}, true); err == nil || !strings.Contains(err.Error(), "gs") {
		t.Errorf("Open of an unsupported URL: %v", err)
	}
}
