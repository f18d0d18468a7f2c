package remote_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/statepack/statepack/remote"
	"github.com/statepack/statepack/remote/backend"
	"github.com/statepack/statepack/remote/dirbackend"
	"github.com/statepack/statepack/remote/s3"
)

// noWaitRetry retries without waiting: the tests count attempts, not time.
var noWaitRetry = remote.RetryPolicy{Attempts: 4}

func tempDirBackend(t *testing.T) backend.Backend {
	t.Helper()
	b, err := dirbackend.New(filepath.Join(t.TempDir(), "remote"), true)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// timeoutError is a network timeout, as net and net/http report them.
type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

var (
	errRefused = &url.Error{Op: "Put", URL: "http://127.0.0.1:1/b/k", Err: &net.OpError{
		Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	errReset = &url.Error{Op: "Put", URL: "http://127.0.0.1:1/b/k", Err: &net.OpError{
		Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}}
	errTimeout = &url.Error{Op: "Get", URL: "http://127.0.0.1:1/b/k", Err: timeoutError{}}
)

func TestIsTransient(t *testing.T) {
	cases := []struct {
		name      string
		err       error
		transient bool
	}{
		{"connection refused", errRefused, true},
		{"connection reset", errReset, true},
		{"network timeout", errTimeout, true},
		{"unexpected EOF", fmt.Errorf("read pack: %w", io.ErrUnexpectedEOF), true},
		{"marked transient", &remote.FaultError{Err: transientMark(true)}, true},
		{"not found", fmt.Errorf("get config: %w", backend.ErrNotFound), false},
		{"conflict", backend.ErrConflict, false},
		{"access denied", backend.ErrAccessDenied, false},
		{"no bucket", s3.ErrNoBucket, false},
		{"no space", remote.NoSpace(), false},
		{"cancelled", fmt.Errorf("put: %w", context.Canceled), false},
		{"deadline", &url.Error{Op: "Get", URL: "x", Err: context.DeadlineExceeded}, false},
		{"marked permanent", &remote.FaultError{Err: transientMark(false)}, false},
		{"unknown", errors.New("something else"), false},
		{"nil", nil, false},
	}
	for _, c := range cases {
		if got := remote.IsTransient(c.err); got != c.transient {
			t.Errorf("%s: IsTransient(%v) = %v, want %v", c.name, c.err, got, c.transient)
		}
	}
}

type transientMark bool

func (m transientMark) Error() string   { return fmt.Sprintf("transient=%v", bool(m)) }
func (m transientMark) Transient() bool { return bool(m) }

func TestNeverSent(t *testing.T) {
	if !remote.NeverSent(errRefused) {
		t.Error("a refused connection was sent")
	}
	if !remote.NeverSent(&net.DNSError{Err: "no such host", Name: "s3.invalid", IsNotFound: true}) {
		t.Error("a failed lookup was sent")
	}
	for _, err := range []error{errReset, errTimeout, io.ErrUnexpectedEOF} {
		if remote.NeverSent(err) {
			t.Errorf("NeverSent(%v) = true: the request may have reached the server", err)
		}
	}
}

// TestRetryByError: each call fails once with err; transient errors are
// retried (two calls, success), the others returned at once (one call).
func TestRetryByError(t *testing.T) {
	cases := []struct {
		err   error
		calls int
	}{
		{errReset, 2},
		{errTimeout, 2},
		{io.ErrUnexpectedEOF, 2},
		{backend.ErrNotFound, 1},
		{backend.ErrAccessDenied, 1},
		{remote.NoSpace(), 1},
		{context.Canceled, 1},
		{errors.New("permanent"), 1},
	}
	for _, c := range cases {
		f := remote.NewFaulty(tempDirBackend(t))
		b := remote.WithRetry(f, noWaitRetry)
		ctx := t.Context()
		putString(t, b, "config", "x")
		f.FailNth(remote.MethodGet, 1, c.err).FailNth(remote.MethodStat, 1, c.err).
			FailNth(remote.MethodDelete, 1, c.err).FailNth(remote.MethodGetVersioned, 1, c.err).
			FailNth(remote.MethodList, 1, c.err).FailNth(remote.MethodGetRange, 1, c.err)
		_, errGet := b.Get(ctx, "config")
		_, errRange := b.GetRange(ctx, "config", 0, 1)
		_, errStat := b.Stat(ctx, "config")
		_, _, errVersioned := b.GetVersioned(ctx, "config")
		errList := b.List(ctx, "", func(backend.ObjectInfo) error { return nil })
		errDelete := b.Delete(ctx, "config")
		results := map[string]error{
			remote.MethodGet: errGet, remote.MethodGetRange: errRange, remote.MethodStat: errStat,
			remote.MethodGetVersioned: errVersioned, remote.MethodList: errList, remote.MethodDelete: errDelete,
		}
		for method, err := range results {
			if got := f.Calls(method); got != c.calls {
				t.Errorf("%v: %s called %d times, want %d", c.err, method, got, c.calls)
			}
			if (err == nil) != (c.calls == 2) {
				t.Errorf("%v: %s returned %v", c.err, method, err)
			}
		}
	}
}

func TestRetryAttemptsBounded(t *testing.T) {
	f := remote.NewFaulty(tempDirBackend(t)).FailFrom(remote.MethodStat, 1, errReset)
	var events []remote.RetryEvent
	p := noWaitRetry
	p.OnRetry = func(e remote.RetryEvent) { events = append(events, e) }
	_, err := remote.WithRetry(f, p).Stat(t.Context(), "config")
	if !errors.Is(err, syscall.ECONNRESET) || !strings.Contains(err.Error(), "gave up after 4 attempts") {
		t.Errorf("error %v: want the last failure and the attempt count", err)
	}
	if f.Calls(remote.MethodStat) != 4 || len(events) != 3 {
		t.Errorf("%d calls and %d retry events, want 4 and 3", f.Calls(remote.MethodStat), len(events))
	}
	for i, e := range events {
		if e.Method != remote.MethodStat || e.Name != "config" || e.Attempt != i+1 || !errors.Is(e.Err, syscall.ECONNRESET) {
			t.Errorf("event %d = %+v", i, e)
		}
	}
}

// TestRetryStopsWhenCancelled: a cancellation during the backoff wait ends
// the call at once with the context's error.
func TestRetryStopsWhenCancelled(t *testing.T) {
	f := remote.NewFaulty(tempDirBackend(t)).FailFrom(remote.MethodStat, 1, errReset)
	ctx, cancel := context.WithCancel(t.Context())
	p := remote.RetryPolicy{Attempts: 10, BaseDelay: time.Hour, MaxDelay: time.Hour,
		OnRetry: func(remote.RetryEvent) { cancel() }}
	_, err := remote.WithRetry(f, p).Stat(ctx, "config")
	if !errors.Is(err, context.Canceled) || f.Calls(remote.MethodStat) != 1 {
		t.Errorf("after cancel: %v with %d calls; want context.Canceled after 1", err, f.Calls(remote.MethodStat))
	}

	// A call that fails after its context is cancelled is not retried.
	f = remote.NewFaulty(tempDirBackend(t)).FailFrom(remote.MethodStat, 1, errReset)
	_, err = remote.WithRetry(f, noWaitRetry).Stat(ctx, "config")
	if err == nil || f.Calls(remote.MethodStat) != 1 {
		t.Errorf("with a cancelled context: %v after %d calls, want 1", err, f.Calls(remote.MethodStat))
	}
}

// TestRetryPutRewinds: a Put interrupted midway is retried from the start
// of a seekable reader, and the stored object is whole.
func TestRetryPutRewinds(t *testing.T) {
	f := remote.NewFaulty(tempDirBackend(t)).InterruptPut(1, 100, io.ErrUnexpectedEOF)
	b := remote.WithRetry(f, noWaitRetry)
	data := bytes.Repeat([]byte("0123456789"), 1000)
	r := bytes.NewReader(append([]byte("skip"), data...))
	if _, err := r.Seek(4, io.SeekStart); err != nil { // the data starts at 4
		t.Fatal(err)
	}
	if err := b.Put(t.Context(), "packs/00/p", r, int64(len(data))); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if f.Calls(remote.MethodPut) != 2 {
		t.Errorf("Put called %d times, want 2", f.Calls(remote.MethodPut))
	}
	if got := getAll(t, b, "packs/00/p"); !bytes.Equal(got, data) {
		t.Errorf("stored %d bytes, want the %d of the rewound reader", len(got), len(data))
	}
}

// TestRetryPutPlainReader: a reader that cannot rewind is not retried.
func TestRetryPutPlainReader(t *testing.T) {
	f := remote.NewFaulty(tempDirBackend(t)).FailNth(remote.MethodPut, 1, errReset)
	r := struct{ io.Reader }{strings.NewReader("data")}
	if err := remote.WithRetry(f, noWaitRetry).Put(t.Context(), "config", r, 4); err == nil {
		t.Error("Put succeeded")
	}
	if f.Calls(remote.MethodPut) != 1 {
		t.Errorf("Put called %d times, want 1", f.Calls(remote.MethodPut))
	}
}

// TestRetryPutIf: a conditional write that failed in a way that may have
// reached the server is settled by reading the object back: repeated
// when it did not go through, done when it did (a blind repeat would
// report a conflict against itself), and failed for good when another
// writer changed the object meanwhile.
func TestRetryPutIf(t *testing.T) {
	cases := []struct {
		name  string
		fault func(backend.Backend) (backend.Backend, func() int)
		calls int
		ok    bool
	}{
		{"refused: never sent", failFirstPutIf(errRefused), 2, true},
		{"reset before it was written", failFirstPutIf(errReset), 2, true},
		{"timeout before it was written", failFirstPutIf(errTimeout), 2, true},
		{"written, answer lost", loseFirstAnswer([]byte("s")), 1, true},
		{"another writer won meanwhile", loseFirstAnswer([]byte("other")), 1, false},
	}
	for _, c := range cases {
		b, calls := c.fault(tempDirBackend(t))
		tag, err := remote.WithRetry(b, noWaitRetry).PutIf(t.Context(), "refs/main", []byte("s"), "")
		if calls() != c.calls || (err == nil) != c.ok {
			t.Errorf("%s: %d calls, err %v; want %d calls, success %v", c.name, calls(), err, c.calls, c.ok)
		}
		if err != nil && remote.IsTransient(err) {
			t.Errorf("%s: %v still says transient: a caller would write again over another writer's ref", c.name, err)
		}
		if c.ok && tag == "" {
			t.Errorf("%s: no version tag for the write", c.name)
		}
	}
}

// failFirstPutIf fails the first PutIf with err before it reaches b.
func failFirstPutIf(err error) func(backend.Backend) (backend.Backend, func() int) {
	return func(b backend.Backend) (backend.Backend, func() int) {
		f := remote.NewFaulty(b).FailNth(remote.MethodPutIf, 1, err)
		return f, func() int { return f.Calls(remote.MethodPutIf) }
	}
}

// loseFirstAnswer makes the first PutIf store written (what the caller
// meant, or another writer's bytes) and then fail as a connection reset
// after the request was sent.
func loseFirstAnswer(written []byte) func(backend.Backend) (backend.Backend, func() int) {
	return func(b backend.Backend) (backend.Backend, func() int) {
		l := &lostAnswer{Backend: b, written: written}
		return l, func() int { return l.calls }
	}
}

type lostAnswer struct {
	backend.Backend
	written []byte
	calls   int
}

func (l *lostAnswer) PutIf(ctx context.Context, name string, data []byte, ifMatch string) (string, error) {
	l.calls++
	if l.calls > 1 {
		return l.Backend.PutIf(ctx, name, data, ifMatch)
	}
	if _, err := l.Backend.PutIf(ctx, name, l.written, ifMatch); err != nil {
		return "", err
	}
	return "", errReset
}

// listFailsAfter delivers one object, then fails: a retry would show fn
// that object twice.
type listFailsAfter struct {
	backend.Backend
	calls atomic.Int32
}

func (l *listFailsAfter) List(ctx context.Context, prefix string, fn func(backend.ObjectInfo) error) error {
	l.calls.Add(1)
	if err := fn(backend.ObjectInfo{Name: "config"}); err != nil {
		return err
	}
	return errReset
}

func TestRetryList(t *testing.T) {
	l := &listFailsAfter{Backend: tempDirBackend(t)}
	seen := 0
	err := remote.WithRetry(l, noWaitRetry).List(t.Context(), "", func(backend.ObjectInfo) error { seen++; return nil })
	if err == nil || l.calls.Load() != 1 || seen != 1 {
		t.Errorf("List failing after delivery: %v, %d calls, %d objects seen; want an error, 1, 1", err, l.calls.Load(), seen)
	}

	// An error from fn itself is the caller's, never retried.
	f := remote.NewFaulty(tempDirBackend(t))
	b := remote.WithRetry(f, noWaitRetry)
	putString(t, b, "config", "x")
	err = b.List(t.Context(), "", func(backend.ObjectInfo) error { return errReset })
	if !errors.Is(err, syscall.ECONNRESET) || f.Calls(remote.MethodList) != 1 {
		t.Errorf("List with a failing fn: %v after %d calls, want 1", err, f.Calls(remote.MethodList))
	}
}

func putString(t *testing.T, b backend.Backend, name, data string) {
	t.Helper()
	if err := b.Put(t.Context(), name, strings.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
}

func getAll(t *testing.T, b backend.Backend, name string) []byte {
	t.Helper()
	rc, err := b.Get(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
