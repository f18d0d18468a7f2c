package datadir

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/statepack/statepack/internal/files"
	"golang.org/x/sys/unix"
)

// One writer per DATA_DIR (invariant 8). A save reads DATA_DIR and records
// what it read in the stat cache; a restore writes DATA_DIR and records
// what it wrote. Two of them at once on one DATA_DIR leave a mix of two
// snapshots, and a stat cache that vouches for content nobody recorded.
// The repository lock does not help: it is shared between writers, and
// two stores can name one DATA_DIR. So saves and restores also take an
// exclusive flock(2) on DATA_DIR itself, through a descriptor of the
// directory: nothing is written into DATA_DIR (restore stays exact,
// invariant 3), the lock holds across stores and processes, and the
// kernel drops it when its holder dies. Commands that only read DATA_DIR
// (status, diff) do not take it: they may see a restore half done, which
// they report as changes, and change nothing.

// ErrDataDirLocked is matched (errors.Is) by a *DataDirLockedError.
var ErrDataDirLocked = errors.New("DATA_DIR is being saved or restored by another statepack")

// DataDirLockedError says that another save or restore holds DATA_DIR.
type DataDirLockedError struct {
	Dir string
	PID int // the holder, when the kernel tells (0 when not)
}

// Error implements error.
func (e *DataDirLockedError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("DATA_DIR %s is being saved or restored by another statepack (pid %d)", e.Dir, e.PID)
	}
	return fmt.Sprintf("DATA_DIR %s is being saved or restored by another statepack", e.Dir)
}

// Is makes errors.Is(err, ErrDataDirLocked) hold.
func (e *DataDirLockedError) Is(target error) bool { return target == ErrDataDirLocked }

// DataDirLock is a held DATA_DIR lock.
type DataDirLock struct {
	fd   int // -1 when the file system cannot lock (held in name only)
	once sync.Once
}

// LockDataDir takes the lock of the existing directory root, waiting up
// to wait (the --lock-wait of the repository lock) while another holds
// it; ctx ends the wait early. Once held it checks that root still names
// the locked directory: a restore that created root and failed may have
// removed it meanwhile, and a lock on a removed directory guards nothing.
func LockDataDir(ctx context.Context, root string, wait time.Duration) (*DataDirLock, error) {
	deadline := time.Now().Add(wait)
	for {
		fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOTDIR) {
			return nil, fmt.Errorf("DATA_DIR %s is not a directory", root)
		}
		if err != nil {
			return nil, fmt.Errorf("lock DATA_DIR %s: %w", root, files.MapFSError(err))
		}
		err = files.FlockWait(ctx, fd, max(time.Until(deadline), 0))
		switch {
		case errors.Is(err, files.ErrFlockBusy):
			pid := flockHolder(fd)
			unix.Close(fd)
			return nil, &DataDirLockedError{Dir: root, PID: pid}
		case flockUnsupported(err):
			// A network file system that cannot flock a directory
			// opened for reading: DATA_DIR goes unguarded there
			// rather than unusable.
			unix.Close(fd)
			return &DataDirLock{fd: -1}, nil
		case err != nil:
			unix.Close(fd)
			return nil, fmt.Errorf("lock DATA_DIR %s: %w", root, err)
		}
		if sameDir(fd, root) {
			return &DataDirLock{fd: fd}, nil
		}
		unix.Close(fd) // replaced meanwhile: lock what is there now
	}
}

// flockUnsupported reports whether err says that the file system does
// not do flock on this descriptor (NFS: EBADF for a read-only one).
func flockUnsupported(err error) bool {
	return errors.Is(err, unix.ENOLCK) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EBADF) || errors.Is(err, unix.EINVAL)
}

// sameDir reports whether path names the directory open as fd.
func sameDir(fd int, path string) bool {
	var a, b unix.Stat_t
	return unix.Fstat(fd, &a) == nil && unix.Stat(path, &b) == nil && a.Dev == b.Dev && a.Ino == b.Ino
}

// flockHolder returns the PID holding a flock on fd's inode, from
// /proc/locks, or 0 when it cannot tell.
func flockHolder(fd int) int {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return 0
	}
	data, err := os.ReadFile("/proc/locks")
	if err != nil {
		return 0
	}
	return FlockHolderIn(string(data), uint64(st.Dev), st.Ino)
}

// FlockHolderIn finds the holder of a flock on inode ino of device dev in
// the text of /proc/locks, whose lines read
// "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF" (waiters have "->"
// after the number).
func FlockHolderIn(locks string, dev, ino uint64) int {
	want := fmt.Sprintf("%02x:%02x:%d", unix.Major(dev), unix.Minor(dev), ino)
	for _, line := range strings.Split(locks, "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || f[1] != "FLOCK" || f[5] != want {
			continue
		}
		if pid, err := strconv.Atoi(f[4]); err == nil && pid > 0 {
			return pid
		}
	}
	return 0
}

// Unlock releases the lock; later calls do nothing.
func (l *DataDirLock) Unlock() {
	if l == nil {
		return
	}
	l.once.Do(func() {
		if l.fd >= 0 {
			_ = unix.Flock(l.fd, unix.LOCK_UN)
			unix.Close(l.fd)
		}
	})
}
