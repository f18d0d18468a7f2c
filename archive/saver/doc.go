// Package saver is save: it walks DATA_DIR (package scan), reads only the
// files the stat cache cannot vouch for (package statcache; files inside
// the racy window are read last, once it has passed), cuts them into
// blocks (FastCDC, or fixed page-sized blocks for SQLite databases),
// stores new blocks through the repository's block writer, gives large
// files list blocks, checks that every file's blocks add up to its size
// (invariant 8), and commits the manifest and the ref in the order of
// invariant 1. Restore's backup of DATA_DIR is a save through SaveTree and
// Commit, so that a backup is no different from any other snapshot.
//
// It sits above archive (the repository it writes into) and uses
// archive/format, archive/scan, archive/statcache and archive/datadir. It
// must not import archive/restorer or archive/maintain (restorer imports
// it), nor remote or any backend but the contract in remote/backend (for
// its sentinel errors): it writes through archive.Repository, whatever
// stores the repository, and never knows S3 exists.
package saver
