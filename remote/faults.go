package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"syscall"

	"github.com/statepack/statepack/remote/backend"
)

// Faulty wraps a backend and makes chosen calls fail, for tests of what
// is built on a backend (kopia's beforeop idea). Rules pick calls by
// method and call number; a hook sees every call. A failed call never
// reaches the wrapped backend, except for InterruptPut, which fails a Put
// partway through its data. Faulty is safe for concurrent use.
type Faulty struct {
	b     backend.Backend
	mu    sync.Mutex
	calls map[string]int
	rules []faultRule
	hook  func(Op) error
}

// Op is a call about to be made on a Faulty backend.
type Op struct {
	Method string // MethodGet, MethodPut, ...
	Name   string // the object; the prefix for List
	Call   int    // the call's number among the calls of Method, from 1
}

type faultRule struct {
	method   string
	from, to int   // calls from..to fail; to 0 means no end
	after    int64 // InterruptPut: bytes let through first; -1 for none
	err      error
}

// ErrInjected is matched (errors.Is) by every error Faulty injects.
var ErrInjected = errors.New("injected fault")

// FaultError is an injected failure. It matches ErrInjected and Err.
type FaultError struct {
	Op  Op
	Err error
}

func (e *FaultError) Error() string {
	return fmt.Sprintf("injected fault in %s %s (call %d): %v", e.Op.Method, e.Op.Name, e.Op.Call, e.Err)
}

// Unwrap returns ErrInjected and Err.
func (e *FaultError) Unwrap() []error { return []error{ErrInjected, e.Err} }

// NoSpace returns an error like a full disk's: it matches
// backend.ErrNoSpace and syscall.ENOSPC.
func NoSpace() error { return noSpaceError{} }

type noSpaceError struct{}

func (noSpaceError) Error() string   { return "no space left on device" }
func (noSpaceError) Unwrap() []error { return []error{backend.ErrNoSpace, syscall.ENOSPC} }

// NewFaulty wraps b with no rules: every call passes.
func NewFaulty(b backend.Backend) *Faulty {
	return &Faulty{b: b, calls: map[string]int{}}
}

// FailNth makes the n-th call (from 1) of method fail with err.
func (f *Faulty) FailNth(method string, n int, err error) *Faulty {
	return f.add(faultRule{method: method, from: n, to: n, after: -1, err: err})
}

// FailFrom makes every call of method from the n-th on fail with err.
func (f *Faulty) FailFrom(method string, n int, err error) *Faulty {
	return f.add(faultRule{method: method, from: n, after: -1, err: err})
}

// InterruptPut makes the n-th Put fail after the wrapped backend has read
// after bytes of its data: its reader then returns err, as a dropped
// connection or a full disk would interrupt a real upload.
func (f *Faulty) InterruptPut(n int, after int64, err error) *Faulty {
	return f.add(faultRule{method: MethodPut, from: n, to: n, after: after, err: err})
}

// Hook calls fn before every call; an error from fn fails the call with
// that error. A hook runs before the rules and may block, to hold a call
// at a chosen moment.
func (f *Faulty) Hook(fn func(Op) error) *Faulty {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = fn
	return f
}

func (f *Faulty) add(r faultRule) *Faulty {
	if !slices.Contains(methods, r.method) {
		panic("remote.Faulty: unknown method " + r.method)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, r)
	return f
}

// Calls returns how many calls of method have been made, failed or not.
func (f *Faulty) Calls(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

// Unwrap returns the wrapped backend.
func (f *Faulty) Unwrap() backend.Backend { return f.b }

// before counts the call and returns the error to inject, if any, and
// for InterruptPut the rule that cuts the data.
func (f *Faulty) before(method, name string) (*faultRule, error) {
	f.mu.Lock()
	f.calls[method]++
	op := Op{Method: method, Name: name, Call: f.calls[method]}
	hook, rules := f.hook, f.rules
	f.mu.Unlock()
	if hook != nil {
		if err := hook(op); err != nil {
			return nil, err
		}
	}
	for i := range rules {
		r := &rules[i]
		if r.method != method || op.Call < r.from || (r.to != 0 && op.Call > r.to) {
			continue
		}
		err := &FaultError{Op: op, Err: r.err}
		if r.after >= 0 {
			return &faultRule{after: r.after, err: err}, nil
		}
		return nil, err
	}
	return nil, nil
}

// Location implements backend.Backend.
func (f *Faulty) Location() string { return f.b.Location() }

// Get implements backend.Backend.
func (f *Faulty) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if _, err := f.before(MethodGet, name); err != nil {
		return nil, err
	}
	return f.b.Get(ctx, name)
}

// GetRange implements backend.Backend.
func (f *Faulty) GetRange(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	if _, err := f.before(MethodGetRange, name); err != nil {
		return nil, err
	}
	return f.b.GetRange(ctx, name, offset, length)
}

// Put implements backend.Backend.
func (f *Faulty) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	cut, err := f.before(MethodPut, name)
	if err != nil {
		return err
	}
	if cut != nil {
		r = &cutReader{r: r, left: cut.after, err: cut.err}
	}
	return f.b.Put(ctx, name, r, size)
}

// cutReader passes left bytes, then fails with err.
type cutReader struct {
	r    io.Reader
	left int64
	err  error
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, c.err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// Stat implements backend.Backend.
func (f *Faulty) Stat(ctx context.Context, name string) (backend.ObjectInfo, error) {
	if _, err := f.before(MethodStat, name); err != nil {
		return backend.ObjectInfo{}, err
	}
	return f.b.Stat(ctx, name)
}

// List implements backend.Backend.
func (f *Faulty) List(ctx context.Context, prefix string, fn func(backend.ObjectInfo) error) error {
	if _, err := f.before(MethodList, prefix); err != nil {
		return err
	}
	return f.b.List(ctx, prefix, fn)
}

// Delete implements backend.Backend.
func (f *Faulty) Delete(ctx context.Context, name string) error {
	if _, err := f.before(MethodDelete, name); err != nil {
		return err
	}
	return f.b.Delete(ctx, name)
}

// GetVersioned implements backend.Backend.
func (f *Faulty) GetVersioned(ctx context.Context, name string) ([]byte, string, error) {
	if _, err := f.before(MethodGetVersioned, name); err != nil {
		return nil, "", err
	}
	return f.b.GetVersioned(ctx, name)
}

// PutIf implements backend.Backend.
func (f *Faulty) PutIf(ctx context.Context, name string, data []byte, ifMatch string) (string, error) {
	if _, err := f.before(MethodPutIf, name); err != nil {
		return "", err
	}
	return f.b.PutIf(ctx, name, data, ifMatch)
}
