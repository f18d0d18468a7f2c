package restorer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/datadir"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/scan"
	"github.com/statepack/statepack/archive/statcache"
)

// ErrUnknownDataDir is matched (errors.Is) by UnknownDataDirError.
var ErrUnknownDataDir = errors.New("DATA_DIR was never saved or restored by statepack")

// UnknownDataDirError refuses a restore into a non-empty DATA_DIR that
// statepack has no record of (no stat cache, no interrupted restore):
// restore would replace or delete content nobody asked statepack to keep.
type UnknownDataDirError struct {
	Dir      string
	Files    int      // regular files and symlinks found
	Bytes    int64    // their size
	Examples []string // a few of their paths
}

// Error implements error.
func (e *UnknownDataDirError) Error() string {
	files := "files"
	if e.Files == 1 {
		files = "file"
	}
	return fmt.Sprintf("DATA_DIR %s holds %d %s (%s, e.g. %s) and was never saved or restored by statepack: restore would replace or delete them",
		e.Dir, e.Files, files, humanize.IBytes(uint64(max(e.Bytes, 0))), strings.Join(e.Examples, ", "))
}

// Is makes errors.Is(err, ErrUnknownDataDir) hold.
func (e *UnknownDataDirError) Is(target error) bool { return target == ErrUnknownDataDir }

// knownDataDir reports whether statepack has a record of root in cacheDir:
// its stat cache (written by every save and restore) or the marker of an
// interrupted restore.
func knownDataDir(cacheDir, root string) bool {
	if cacheDir == "" {
		return false
	}
	if _, err := os.Stat(statcache.StatCachePath(cacheDir, root)); err == nil {
		return true
	}
	_, err := os.Stat(restoreMarkerPath(cacheDir, root))
	return err == nil
}

// unknownContent refuses found (a walk of root) unless it holds nothing
// but directories.
func unknownContent(dir string, found []scan.Scanned) error {
	e := &UnknownDataDirError{Dir: dir}
	for _, s := range found {
		if s.Type == format.TypeDir {
			continue
		}
		e.Files++
		e.Bytes += s.Size
		if len(e.Examples) < 3 {
			e.Examples = append(e.Examples, s.Path)
		}
	}
	if e.Files == 0 {
		return nil
	}
	return e
}

// guardUnknown refuses, unless o.Force, a restore into a non-empty root
// that statepack has no record of. found is root's walk when the caller
// has one (nil: walk here, which only happens when DATA_DIR is unknown).
func guardUnknown(r *archive.Repository, root string, o Options, found []scan.Scanned) error {
	if o.Force || knownDataDir(o.CacheDir, root) {
		return nil
	}
	if found == nil {
		if _, err := os.Lstat(root); errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		var err error
		if found, err = scan.ScanTree(root, o.Only, func(string) {}); err != nil {
			return err
		}
	}
	return unknownContent(o.DataDir, found)
}

// CheckRestore makes the checks Restore makes before it touches DATA_DIR
// (see Options.Force), so that pull --restore can refuse before it
// downloads anything.
func CheckRestore(r *archive.Repository, o Options) error {
	if o.DataDir == "" {
		return datadir.ErrNoDataDir
	}
	root, err := filepath.Abs(o.DataDir)
	if err != nil {
		return err
	}
	if err := datadir.CheckDataDir(o.DataDir, r.OwnedPaths(o.CacheDir)...); err != nil {
		return err
	}
	return guardUnknown(r, root, o, nil)
}

// foundOf is the walk a scan holds, nil without one.
func foundOf(pre *treeScan) []scan.Scanned {
	if pre == nil {
		return nil
	}
	return pre.found
}
