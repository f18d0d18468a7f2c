package benchutil

import (
	"io/fs"
	"os"
	"path/filepath"
)

// DirBytes is the total apparent size of the regular files under root, as
// du -sb counts it, leaving out the top-level entries named in skip.
func DirBytes(root string, skip ...string) (int64, error) {
	var n int64
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if filepath.Dir(p) == root && contains(skip, d.Name()) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		n += fi.Size()
		return nil
	})
	return n, err
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// RemoveAll removes p, first giving the owner write access to every
// directory under it, since generated and restored trees have read-only
// directories that os.RemoveAll cannot empty.
func RemoveAll(p string) error {
	_ = filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(q, 0o700)
		}
		return nil
	})
	return os.RemoveAll(p)
}
