package backend

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/statepack/statepack/archive/format"
)

// Unwrapper is a backend that wraps another to add one behaviour (retry,
// request counting, fault injection, read-only); As looks through it.
type Unwrapper interface {
	Unwrap() Backend
}

// As finds an optional ability of b: the first backend in b's chain of
// wrappers, b itself first, that implements T. Callers ask for an
// ability (Durable, Local, TransientClassifier, RequestCounter), never
// for a concrete backend type, so that a new backend gains a fast path by
// implementing the interface.
func As[T any](b Backend) (T, bool) {
	for b != nil {
		if t, ok := b.(T); ok {
			return t, true
		}
		u, ok := b.(Unwrapper)
		if !ok {
			break
		}
		b = u.Unwrap()
	}
	var zero T
	return zero, false
}

// Durable is a backend whose writes reach stable storage only when
// flushed: a directory on a local file system. Backends without it (S3)
// store durably before Put returns.
type Durable interface {
	// Flush makes every object written so far durable, and what was read
	// of others' objects, so that a ref written next reaches nothing a
	// power failure could take.
	Flush() error
	// SettleReads makes durable now what was read so far, so that the
	// next Flush needs only what is written from here on.
	SettleReads() error
}

// Local is a backend whose objects are files on this machine, which fast
// paths read as files: restore copies blocks straight from pack files,
// push sends a whole pack as it is.
type Local interface {
	Backend
	// Root is the directory that holds the repository.
	Root() string
	// OpenObject opens an object as a regular file, refusing anything
	// else (an *ObjectError).
	OpenObject(name string) (*os.File, error)
	// StatObject reports an object's size with one stat, no request.
	StatObject(name string) (ObjectInfo, error)
	// Irregular lists what is not a regular file where an object or a
	// directory of the layout should be.
	Irregular(ctx context.Context) ([]*ObjectError, error)
	// RemoveTemp deletes temporary files older than age that killed
	// writers left behind.
	RemoveTemp(age time.Duration) error
}

// TransientClassifier is a backend that can tell which of its errors may
// pass if the same request is made again: a vendor's throttling and
// server-error codes (S3's SlowDown, HTTP 503), which only the backend
// that speaks the vendor's protocol can read. A retrying wrapper finds it
// with As on the backend it wraps and asks it after its own generic
// rules (context cancellation, the contract's sentinels) and before the
// rules for network failures, which hold for every backend.
type TransientClassifier interface {
	// Transient reports whether err, returned by one of the backend's
	// calls, is worth retrying. known is false when the backend does
	// not recognise err, and the caller's generic rules decide.
	Transient(err error) (transient, known bool)
}

// RequestCounter is a backend that counts the requests made through it,
// for the summaries of push and pull: the counting wrapper.
type RequestCounter interface {
	// Requests is the number of calls made so far, failed or not.
	Requests() int64
}

// ErrNotRegular matches an *ObjectError: an object of a directory
// repository that is not a regular file.
var ErrNotRegular = errors.New("not a regular file")

// ObjectError names an object (or a directory above one) of a directory
// repository that is not what the repository format puts there: a
// symlink, a FIFO, a device or a socket. It matches ErrNotRegular and
// ErrCorrupt: the repository is damaged there.
type ObjectError struct {
	Object string // "refs/main", or the directory "packs/ab"
	Kind   string // "a symlink", "a FIFO", ...
	Dir    bool   // Object is a directory of the layout, not an object
}

func (e *ObjectError) Error() string {
	want := "a regular file"
	if e.Dir {
		want = "a directory"
	}
	return fmt.Sprintf("%s is %s, not %s: refusing to read it", e.Object, e.Kind, want)
}

// Unwrap makes errors.Is(err, ErrNotRegular) and errors.Is(err,
// ErrCorrupt) hold.
func (e *ObjectError) Unwrap() []error { return []error{ErrNotRegular, format.ErrCorrupt} }
