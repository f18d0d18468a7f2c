// Package scan walks DATA_DIR: a parallel walk that lstats every path
// once and returns manifest entries sorted by path with the stat data
// (FileStat) that save, restore, status and the stat cache compare;
// include and exclude filters (Filter); and what a walk skips: sockets,
// FIFOs and devices, reported as warnings, and restore's temporary files,
// returned for restore to remove.
//
// Save and restore walk the same way through this one package, so that a
// path save skips is one restore leaves alone and a stat they compare
// means the same to both.
//
// It sits below the repository: it imports archive/format (for entries)
// and internal/files, and must not import archive, archive/statcache or
// anything above them (saver, restorer, maintain), nor remote.
package scan
