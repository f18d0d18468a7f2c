// Package files holds the file-system helpers that the directory backend,
// the stat cache, save and restore share: atomic replacement of a file
// (WriteAtomic, WriteFileAtomic), fsync of a directory, a flock whose
// wait a context cancels (FlockDir, FlockWait), a context-aware reader,
// random suffixes for temporary names, and MapFSError, which turns the
// file-system errors callers branch on into the backend's sentinel errors
// so that a local store and a remote fail alike.
//
// It sits below every package that touches files and imports only
// remote/backend (for those sentinels): not archive or any of its
// packages, not remote or its backends.
package files
