package backend_test

import (
	"context"
	"io"
	"testing"

	"github.com/statepack/statepack/remote/backend"
)

// base is a backend with no abilities beyond the contract.
type base struct{ backend.Backend }

// durable is a backend that can flush.
type durable struct {
	backend.Backend
	flushes int
}

func (d *durable) Flush() error       { d.flushes++; return nil }
func (d *durable) SettleReads() error { return nil }

// wrapper adds a behaviour and passes the rest through Unwrap.
type wrapper struct{ inner backend.Backend }

func (w wrapper) Location() string { return w.inner.Location() }
func (w wrapper) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	return w.inner.Get(ctx, name)
}
func (w wrapper) GetRange(ctx context.Context, name string, off, n int64) (io.ReadCloser, error) {
	return w.inner.GetRange(ctx, name, off, n)
}
func (w wrapper) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	return w.inner.Put(ctx, name, r, size)
}
func (w wrapper) Stat(ctx context.Context, name string) (backend.ObjectInfo, error) {
	return w.inner.Stat(ctx, name)
}
func (w wrapper) List(ctx context.Context, prefix string, fn func(backend.ObjectInfo) error) error {
	return w.inner.List(ctx, prefix, fn)
}
func (w wrapper) Delete(ctx context.Context, name string) error { return w.inner.Delete(ctx, name) }
func (w wrapper) GetVersioned(ctx context.Context, name string) ([]byte, string, error) {
	return w.inner.GetVersioned(ctx, name)
}
func (w wrapper) PutIf(ctx context.Context, name string, data []byte, ifMatch string) (string, error) {
	return w.inner.PutIf(ctx, name, data, ifMatch)
}
func (w wrapper) Unwrap() backend.Backend { return w.inner }

// opaque wraps without Unwrap: what it hides stays hidden.
type opaque struct{ wrapper }

func (o opaque) Unwrap() {}

// TestAs: an ability is found on the backend itself or through any number
// of wrappers that unwrap, and not through one that does not; a backend
// without it reports false.
func TestAs(t *testing.T) {
	d := &durable{}
	for _, tc := range []struct {
		name string
		b    backend.Backend
		want bool
	}{
		{"itself", d, true},
		{"through two wrappers", wrapper{wrapper{d}}, true},
		{"behind a wrapper that does not unwrap", wrapper{opaque{wrapper{d}}}, false},
		{"a backend without it", wrapper{base{}}, false},
		{"nil", nil, false},
	} {
		got, ok := backend.As[backend.Durable](tc.b)
		if ok != tc.want {
			t.Errorf("%s: found %v, want %v", tc.name, ok, tc.want)
			continue
		}
		if ok {
			if err := got.Flush(); err != nil || d.flushes == 0 {
				t.Errorf("%s: the ability found is not the backend's", tc.name)
			}
		}
	}
}
