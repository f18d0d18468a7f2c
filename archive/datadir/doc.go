// Package datadir guards DATA_DIR, the directory statepack saves and
// restores: CheckDataDir refuses a directory that a restore could not
// empty without destroying what no snapshot gives back (/, a home or
// system directory, a mount root, one that holds or lies inside the store
// or statepack's own files: invariant 9), and LockDataDir takes the
// flock that makes saves and restores of one DATA_DIR exclude each other
// across stores and processes (invariant 8).
//
// Both rules are about the local file system only, and every command that
// touches DATA_DIR (save, restore, pull --restore, the CLI's checks) asks
// this one package, so it holds no repository knowledge.
//
// It imports only internal/files: not archive/format, not archive or any
// of its other packages, not remote.
package datadir
