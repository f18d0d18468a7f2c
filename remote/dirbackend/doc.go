// Package dirbackend is the Backend on a local or mounted directory: the
// local store and the directory remote. It owns what makes a directory a
// safe repository: atomic writes (temporary file, then rename),
// compare-and-swap of refs under a flock, durability before a ref moves
// (Flush and SettleReads, the backend.Durable capability: invariant 1),
// and reads that never follow a planted link, block on a FIFO or read a
// device (OpenObject, StatObject, Irregular: the backend.Local
// capability, invariants 5 and 9).
//
// It stores bytes under names and never interprets them, so it imports
// only remote/backend, archive/format (for ErrCorrupt), internal/files
// and internal/testhook: not archive or its other packages, not package
// remote (whose wrappers and URL parsing sit above it), nothing of S3.
// Code outside the remote layer may construct a Backend for the local
// store, and otherwise reaches it only through backend.As.
package dirbackend
