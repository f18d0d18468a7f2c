package archive

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/statepack/statepack/internal/output"
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
	return fmt.Sprintf("DATA_DIR %s holds %s (%s, e.g. %s) and was never saved or restored by statepack: restore would replace or delete them",
		e.Dir, output.Plural(int64(e.Files), "file", "files"), output.Bytes(e.Bytes), strings.Join(e.Examples, ", "))
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
	if _, err := os.Stat(statCachePath(cacheDir, root)); err == nil {
		return true
	}
	_, err := os.Stat(restoreMarkerPath(cacheDir, root))
	return err == nil
}

// unknownContent refuses found (a walk of root) unless it holds nothing
// but directories.
func unknownContent(dir string, found []scanned) error {
	e := &UnknownDataDirError{Dir: dir}
	for _, s := range found {
		if s.Type == TypeDir {
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
func (r *Repository) guardUnknown(root string, o RestoreOptions, found []scanned) error {
	if o.Force || knownDataDir(o.CacheDir, root) {
		return nil
	}
	if found == nil {
		if _, err := os.Lstat(root); errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		var err error
		if found, err = scanTree(root, o.Only, func(string) {}); err != nil {
			return err
		}
	}
	return unknownContent(o.DataDir, found)
}

// CheckRestore makes the checks Restore makes before it touches DATA_DIR
// (see RestoreOptions.Force), so that pull --restore can refuse before it
// downloads anything.
func (r *Repository) CheckRestore(o RestoreOptions) error {
	if o.DataDir == "" {
		return ErrNoDataDir
	}
	root, err := filepath.Abs(o.DataDir)
	if err != nil {
		return err
	}
	if err := CheckDataDir(o.DataDir, r.ownedPaths(o.CacheDir)...); err != nil {
		return err
	}
	return r.guardUnknown(root, o, nil)
}

// foundOf is the walk a scan holds, nil without one.
func foundOf(pre *treeScan) []scanned {
	if pre == nil {
		return nil
	}
	return pre.found
}
