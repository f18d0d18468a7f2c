package backend

import (
	"context"
	"errors"
	"io"
	"time"
)

// Backend stores the named objects of one repository. Names are slash paths
// relative to the repository root ("config", "packs/ab/abcd…", "refs/main").
//
// Immutable objects (config, packs, index, snapshots) are written once with
// Put and never changed; their names are the hash of their bytes, so a Put of
// an existing name is harmless and may be skipped. Mutable objects (refs,
// locks) are small and are changed only through PutIf, a compare-and-swap.
//
// Implementations must make every write atomic: a reader sees either nothing
// or the whole object under its final name, even when the writer is killed.
// Missing objects are reported with an error for which errors.Is(err,
// ErrNotFound) holds. Backends do not retry; retries are a wrapper's job.
type Backend interface {
	// Location names the backend for messages ("/home/u/.local/share/statepack",
	// "s3://bucket/prefix"). It never contains credentials.
	Location() string

	// Get opens the whole object for reading.
	Get(ctx context.Context, name string) (io.ReadCloser, error)

	// GetRange opens length bytes of the object starting at offset. A range
	// that runs past the end of the object is an error.
	GetRange(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error)

	// Put stores size bytes read from r under name, atomically. An
	// interrupted Put leaves no object under name.
	Put(ctx context.Context, name string, r io.Reader, size int64) error

	// Stat reports an object's size without reading it.
	Stat(ctx context.Context, name string) (ObjectInfo, error)

	// List calls fn for every object whose name starts with prefix, in no
	// particular order. An error from fn stops the listing and is returned.
	List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error

	// Delete removes an object. Deleting a missing object is not an error.
	Delete(ctx context.Context, name string) error

	// GetVersioned reads a small mutable object together with its version
	// tag, for a later PutIf.
	GetVersioned(ctx context.Context, name string) ([]byte, string, error)

	// PutIf writes a small mutable object only if its current version tag
	// equals ifMatch; an empty ifMatch means the object must not exist yet.
	// When the condition fails it returns an error matching ErrConflict and
	// changes nothing. It returns the new version tag.
	PutIf(ctx context.Context, name string, data []byte, ifMatch string) (string, error)
}

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Name    string
	Size    int64
	ModTime time.Time
}

// Errors a Backend reports, for callers to branch on with errors.Is.
var (
	// ErrNotFound: the object (or the state, or the snapshot) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a compare-and-swap lost against a concurrent writer.
	ErrConflict = errors.New("changed concurrently")
	// ErrAccessDenied: the credentials do not allow the operation.
	ErrAccessDenied = errors.New("access denied")
	// ErrNoSpace: the storage is full.
	ErrNoSpace = errors.New("no space left on device")
	// ErrOutOfRange: a GetRange asked for bytes the object does not have.
	ErrOutOfRange = errors.New("range outside the object")
	// ErrReadOnly: a write (Put, PutIf, Delete) through a read-only view,
	// which verify and the source of a pull get so that they cannot
	// change what they read.
	ErrReadOnly = errors.New("opened read-only")
)

// MaxVersionedSize bounds what a backend's GetVersioned (and the directory
// backend's PutIf) reads of a ref or a lock, the only mutable objects: a
// remote is untrusted input. statepack writes them under 1 KiB, but a lock
// a foreign writer made with long fields is still a lock to honour (its
// message is clipped), so the bound is generous.
const MaxVersionedSize = 4 << 20
