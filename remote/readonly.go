package remote

import (
	"context"
	"fmt"
	"io"

	"github.com/statepack/statepack/remote/backend"
)

// ReadOnly wraps b so that nothing can be written through it: Put, PutIf
// and Delete fail with an error matching backend.ErrReadOnly, naming the
// object, and never reach b. Every read passes through unchanged. It is
// the view for what must only read a repository (verify, the source of a
// pull), in the manner of kopia's readonly storage: a bug there then
// fails loudly instead of changing the repository it inspects.
//
// Its Unwrap lets backend.As find b's abilities (a Local backend's file
// reads, for instance). The writes some abilities offer (Local's
// RemoveTemp, Durable's Flush) are outside this view: a holder of a
// read-only view has no business calling them.
func ReadOnly(b backend.Backend) backend.Backend { return &readOnly{b: b} }

type readOnly struct {
	b backend.Backend
}

// Unwrap returns the wrapped backend.
func (r *readOnly) Unwrap() backend.Backend { return r.b }

func (r *readOnly) refuse(method, name string) error {
	return fmt.Errorf("%s %s on %s: %w", method, name, r.b.Location(), backend.ErrReadOnly)
}

// Location implements backend.Backend.
func (r *readOnly) Location() string { return r.b.Location() }

// Get implements backend.Backend.
func (r *readOnly) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	return r.b.Get(ctx, name)
}

// GetRange implements backend.Backend.
func (r *readOnly) GetRange(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	return r.b.GetRange(ctx, name, offset, length)
}

// Put implements backend.Backend: it always fails.
func (r *readOnly) Put(ctx context.Context, name string, rd io.Reader, size int64) error {
	return r.refuse(MethodPut, name)
}

// Stat implements backend.Backend.
func (r *readOnly) Stat(ctx context.Context, name string) (backend.ObjectInfo, error) {
	return r.b.Stat(ctx, name)
}

// List implements backend.Backend.
func (r *readOnly) List(ctx context.Context, prefix string, fn func(backend.ObjectInfo) error) error {
	return r.b.List(ctx, prefix, fn)
}

// Delete implements backend.Backend: it always fails.
func (r *readOnly) Delete(ctx context.Context, name string) error {
	return r.refuse(MethodDelete, name)
}

// GetVersioned implements backend.Backend.
func (r *readOnly) GetVersioned(ctx context.Context, name string) ([]byte, string, error) {
	return r.b.GetVersioned(ctx, name)
}

// PutIf implements backend.Backend: it always fails.
func (r *readOnly) PutIf(ctx context.Context, name string, data []byte, ifMatch string) (string, error) {
	return "", r.refuse(MethodPutIf, name)
}
