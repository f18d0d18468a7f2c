//go:build linux || darwin || freebsd || netbsd || openbsd

package datagen

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// lchtimes sets the access and modification times of a symlink itself.
func lchtimes(name string, t time.Time) error {
	ts := unix.NsecToTimespec(t.UnixNano())
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, name, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "lchtimes", Path: name, Err: err}
	}
	return nil
}
