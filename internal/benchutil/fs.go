package benchutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
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

// Trash keeps the trees a benchmark is done with until it ends, instead of
// deleting them between runs. On ext4 without a journal (this project's
// VMs) every file create skips inodes freed in the last minute, five when
// their table block is still dirty, one buffer lookup each: right after a
// run deleted gigabytes, a cold restore or a `cp -a` spent up to half its
// time there, and which of the two paid it changed from run to run. Kept
// trees cost disk space, not memory: Retire drops their cached pages.
type Trash struct {
	dir string
	n   int
}

// NewTrash keeps retired trees under dir, which must be on the file
// system of the trees (they are renamed into it).
func NewTrash(dir string) (*Trash, error) {
	return &Trash{dir: dir}, os.MkdirAll(dir, 0o700)
}

// Retire moves the tree at p (if any) into the trash, after flushing it
// and dropping its files' pages from the page cache, so that the memory
// serves the next run as the memory of a deleted tree would.
func (t *Trash) Retire(p string) error {
	if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	unix.Sync()
	_ = filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return nil
		case d.IsDir():
			_ = os.Chmod(q, 0o700) // moving a directory needs write access to it
		case d.Type().IsRegular():
			if fd, err := unix.Open(q, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); err == nil {
				_ = unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED)
				unix.Close(fd)
			}
		}
		return nil
	})
	t.n++
	return os.Rename(p, filepath.Join(t.dir, fmt.Sprintf("%d-%s", t.n, filepath.Base(p))))
}

// FreeBytes is the space left to an unprivileged user on the file system
// holding p.
func FreeBytes(p string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// Empty deletes every retired tree.
func (t *Trash) Empty() error {
	if err := RemoveAll(t.dir); err != nil {
		return err
	}
	return os.MkdirAll(t.dir, 0o700)
}
