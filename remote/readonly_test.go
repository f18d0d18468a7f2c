package remote_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/statepack/statepack/remote"
	"github.com/statepack/statepack/remote/backend"
)

// TestReadOnly: the writes of the contract fail with ErrReadOnly, naming
// the object, and never reach the wrapped backend, which keeps what it
// held; every read passes through.
func TestReadOnly(t *testing.T) {
	inner := tempDirBackend(t)
	putString(t, inner, "config", "cfg")
	putString(t, inner, "packs/00/p", "0123456789")
	_, tag, err := inner.GetVersioned(t.Context(), "config")
	if err != nil {
		t.Fatal(err)
	}
	f := remote.NewFaulty(inner)
	ro := remote.ReadOnly(f)
	ctx := t.Context()

	_, errPutIf := ro.PutIf(ctx, "config", []byte("other"), tag)
	writes := map[string]error{
		remote.MethodPut:    ro.Put(ctx, "packs/00/q", strings.NewReader("x"), 1),
		remote.MethodPutIf:  errPutIf,
		remote.MethodDelete: ro.Delete(ctx, "packs/00/p"),
	}
	for method, err := range writes {
		if !errors.Is(err, backend.ErrReadOnly) {
			t.Errorf("%s through a read-only view: %v, want ErrReadOnly", method, err)
		} else if !strings.Contains(err.Error(), "packs/00/") && !strings.Contains(err.Error(), "config") {
			t.Errorf("%s: message does not name the object: %v", method, err)
		}
		if f.Calls(method) != 0 {
			t.Errorf("%s reached the wrapped backend", method)
		}
	}
	if remote.IsTransient(writes[remote.MethodPut]) {
		t.Error("a refused write is called transient")
	}
	if _, err := inner.Stat(ctx, "packs/00/q"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Put through the view stored an object: %v", err)
	}

	if got := string(getAll(t, ro, "config")); got != "cfg" {
		t.Errorf("Get = %q, want the config as written", got)
	}
	rc, err := ro.GetRange(ctx, "packs/00/p", 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 3)
	if _, err := rc.Read(buf); err != nil || string(buf) != "234" {
		t.Errorf("GetRange read %q, %v; want \"234\"", buf, err)
	}
	rc.Close()
	if info, err := ro.Stat(ctx, "packs/00/p"); err != nil || info.Size != 10 {
		t.Errorf("Stat = %+v, %v; want the pack, whole (Delete left it)", info, err)
	}
	if data, got, err := ro.GetVersioned(ctx, "config"); err != nil || got != tag || string(data) != "cfg" {
		t.Errorf("GetVersioned = %q, %q, %v; want the config and its tag %q", data, got, err, tag)
	}
	var names []string
	if err := ro.List(ctx, "", func(oi backend.ObjectInfo) error { names = append(names, oi.Name); return nil }); err != nil || len(names) != 2 {
		t.Errorf("List = %q, %v; want the 2 objects", names, err)
	}
	if ro.Location() != inner.Location() {
		t.Errorf("Location() = %q, want %q", ro.Location(), inner.Location())
	}
}

// TestReadOnlyAbilities: the abilities of the wrapped backend stay within
// reach of backend.As through the view, so verify keeps its fast paths.
func TestReadOnlyAbilities(t *testing.T) {
	inner := tempDirBackend(t)
	ro := remote.WithRetry(remote.ReadOnly(remote.NewCounter(inner)), noWaitRetry)
	if _, ok := backend.As[backend.Local](ro); !ok {
		t.Error("the directory backend's Local is hidden by the view")
	}
	if _, ok := backend.As[backend.RequestCounter](ro); !ok {
		t.Error("the counter is hidden by the view")
	}
}

// TestRequestCounterFound: the request count is found by its ability,
// under other wrappers, as push and pull report it.
func TestRequestCounterFound(t *testing.T) {
	c := remote.NewCounter(tempDirBackend(t))
	b := remote.WithRetry(remote.NewFaulty(c), noWaitRetry)
	putString(t, b, "config", "x")
	_, _ = b.Stat(t.Context(), "config")
	rc, ok := backend.As[backend.RequestCounter](b)
	if !ok {
		t.Fatal("no RequestCounter found under WithRetry and Faulty")
	}
	if got := rc.Requests(); got != 2 || got != c.Stats().Requests {
		t.Errorf("Requests() = %d, want 2, as Stats says (%d)", got, c.Stats().Requests)
	}
}

// TestOpenRemoteForReading: a remote opened for reading (a pull's source,
// verify, the inspection commands) reads as usual and refuses writes,
// a lock included, before they reach it.
func TestOpenRemoteForReading(t *testing.T) {
	dir := t.TempDir()
	if _, err := remote.OpenRemote(t.Context(), dir, true); err != nil {
		t.Fatal(err)
	}
	r, err := remote.OpenRemote(t.Context(), dir, false, remote.ForReading())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.States(t.Context()); err != nil {
		t.Fatalf("read through the view: %v", err)
	}
	if _, err := r.Lock(t.Context(), false, "test", 0); !errors.Is(err, backend.ErrReadOnly) {
		t.Fatalf("lock through a read-only view: %v, want ErrReadOnly", err)
	}
	c, ok := backend.As[*remote.Counter](r.Backend())
	if !ok || c.Stats().Puts != 0 {
		t.Errorf("counter found %v; the refused lock reached the remote: %+v", ok, c.Stats())
	}
}
