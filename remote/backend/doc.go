// Package backend is the storage contract every repository is reached
// through: the Backend interface (named immutable objects, and small
// mutable ones changed only by compare-and-swap), the errors callers
// branch on (ErrNotFound, ErrConflict, ...), the bound on mutable objects
// (MaxVersionedSize), and the optional capabilities a backend may have
// (Durable, Local) with As, which finds one through any stack of wrappers
// so that no caller names a concrete backend type.
//
// It is the line between the repository and its storage: archive and its
// packages above it, the backends (remote/dirbackend, remote's S3 backend)
// and wrappers (retry, counting, faults) implementing it. So it must not
// import any of them: no archive package but archive/format (whose
// ErrCorrupt an *ObjectError matches), no remote package, no vendor SDK.
package backend
