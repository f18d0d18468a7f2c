package dirbackend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/statepack/statepack/internal/files"
	"github.com/statepack/statepack/remote/backend"
	"golang.org/x/sys/unix"
)

// Reading the objects of a directory repository. A directory remote is
// written by others (invariant 5), and any of its names may be planted as
// something other than a file: a FIFO (an open or a read that blocks
// forever, past --timeout and Ctrl-C), a device or a symlink to /dev/zero
// (a read without end), or a symlink to a file of the reader's own
// (~/.aws/credentials, whose bytes an error message would then show).
// So every read of an object, whole or in part, and every Stat, goes
// through OpenObject or StatObject here (invariant 9):
//
//   - the directories from the root down to the object are opened one by
//     one with O_NOFOLLOW, so neither a planted `refs -> /etc` nor one
//     swapped in meanwhile is followed; the root itself may be a symlink
//     (a share mounted elsewhere): that is the user's choice, not the
//     remote's;
//   - the object must be a regular file, looked at with lstat semantics
//     before it is opened (opening a device can have effects of its own)
//     and again on the open descriptor, which is what is read;
//   - it is opened O_NOFOLLOW|O_NONBLOCK, so that not even a FIFO swapped
//     in between the two looks can block the open;
//   - its size is the descriptor's, never an earlier listing's.
//
// Anything else is refused with an *ObjectError naming the object and
// what it is, never with its bytes.

// objectKind describes a file type in words, for an ObjectError.
func objectKind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFLNK:
		return "a symlink"
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFREG:
		return "a regular file"
	}
	return "of an unknown type"
}

// checkRegular accepts a regular file. A directory is no object (as on
// S3, where "packs/" is only a prefix): not found. The rest is refused.
func checkRegular(name string, mode uint32) error {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return nil
	case unix.S_IFDIR:
		return fmt.Errorf("%s: %w", name, backend.ErrNotFound)
	}
	return &backend.ObjectError{Object: name, Kind: objectKind(mode)}
}

// objectDir opens the directory holding object name, walking down from
// the root without following a link, and returns it with the name's last
// segment. The caller closes dirfd.
func (b *Backend) objectDir(name string) (dirfd int, base string, err error) {
	if !validObjectName(name) {
		return -1, "", fmt.Errorf("invalid object name %q", name)
	}
	fd, err := unix.Open(b.root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, "", fmt.Errorf("%s: %w", name, files.MapFSError(&fs.PathError{Op: "open", Path: b.root, Err: err}))
	}
	segs := strings.Split(name, "/")
	for i, seg := range segs[:len(segs)-1] {
		next, err := unix.Openat(fd, seg, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			err = b.dirError(fd, strings.Join(segs[:i+1], "/"), seg, name, err)
			unix.Close(fd)
			return -1, "", err
		}
		unix.Close(fd)
		fd = next
	}
	return fd, segs[len(segs)-1], nil
}

// dirError explains why the directory dir (segment seg of parent) of
// object name could not be opened: a symlink, FIFO or device there is
// damage; a missing one, or a file, means a missing object.
func (b *Backend) dirError(parent int, dir, seg, name string, err error) error {
	if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
		var st unix.Stat_t
		// A file where a directory would be holds no object beneath it
		// (on S3 "packs/ab" and "packs/ab/x" can both exist): not found.
		if unix.Fstatat(parent, seg, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR && st.Mode&unix.S_IFMT != unix.S_IFREG {
			return &backend.ObjectError{Object: dir, Kind: objectKind(st.Mode), Dir: true}
		}
	}
	return fmt.Errorf("%s: %w", name, files.MapFSError(&fs.PathError{Op: "open", Path: filepath.Join(b.root, filepath.FromSlash(dir)), Err: err}))
}

// OpenObject opens object name for reading (see the comment at the top):
// a regular file, reached and opened without following a link, without
// blocking on open.
func (b *Backend) OpenObject(name string) (*os.File, error) {
	dfd, base, err := b.objectDir(name)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dfd)
	p := filepath.Join(b.root, filepath.FromSlash(name))
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, fmt.Errorf("%s: %w", name, files.MapFSError(&fs.PathError{Op: "stat", Path: p, Err: err}))
	}
	if err := checkRegular(name, st.Mode); err != nil {
		return nil, err
	}
	fd, err := unix.Openat(dfd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ELOOP) {
		return nil, &backend.ObjectError{Object: name, Kind: "a symlink"} // swapped in since the lstat
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, files.MapFSError(&fs.PathError{Op: "open", Path: p, Err: err}))
	}
	if err := regularFD(fd, name, p); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), p), nil
}

// regularFD checks that the open fd is a regular file and makes its
// reads blocking again (O_NONBLOCK only kept the open from waiting).
func regularFD(fd int, name, p string) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("%s: %w", name, &fs.PathError{Op: "stat", Path: p, Err: err})
	}
	if err := checkRegular(name, st.Mode); err != nil {
		return err
	}
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err == nil {
		_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, flags&^unix.O_NONBLOCK)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, &fs.PathError{Op: "fcntl", Path: p, Err: err})
	}
	return nil
}

// StatObject describes object name without opening it, by the same
// rules as OpenObject.
func (b *Backend) StatObject(name string) (backend.ObjectInfo, error) {
	dfd, base, err := b.objectDir(name)
	if err != nil {
		return backend.ObjectInfo{}, err
	}
	defer unix.Close(dfd)
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		p := filepath.Join(b.root, filepath.FromSlash(name))
		return backend.ObjectInfo{}, fmt.Errorf("%s: %w", name, files.MapFSError(&fs.PathError{Op: "stat", Path: p, Err: err}))
	}
	if err := checkRegular(name, st.Mode); err != nil {
		return backend.ObjectInfo{}, err
	}
	return backend.ObjectInfo{Name: name, Size: st.Size, ModTime: time.Unix(st.Mtim.Unix())}, nil
}

// listBase checks that the directories from the root down to dir (a
// slash path, "" for the root) are real ones, for List: a listing of
// `refs -> /etc` would hand out names that are not the repository's.
func (b *Backend) listBase(dir string) error {
	if dir == "" {
		return nil
	}
	fd, _, err := b.objectDir(dir + "/x")
	if err != nil {
		if errors.Is(err, backend.ErrNotRegular) {
			return err
		}
		return nil // absent: nothing to list
	}
	unix.Close(fd)
	return nil
}

// objectFile is an object opened by Get: reads stop when the context
// ends (a pack read whole is up to 1 GiB), and the size is the open
// file's. It keeps io.Seeker and io.ReaderAt, which callers use.
type objectFile struct {
	ctx context.Context
	f   *os.File
}

func (o *objectFile) Read(p []byte) (int, error) {
	if err := o.ctx.Err(); err != nil {
		return 0, err
	}
	// A reader that grows its buffer offers hundreds of MiB at once
	// near the end of a large object; reading in steps keeps a
	// cancellation (Ctrl-C, --timeout) from waiting for all of it.
	return o.f.Read(p[:min(len(p), objectReadStep)])
}

// objectReadStep is the most one Read of an objectFile reads: a few
// milliseconds of even a fast disk.
const objectReadStep = 4 << 20

func (o *objectFile) ReadAt(p []byte, off int64) (int, error) {
	if err := o.ctx.Err(); err != nil {
		return 0, err
	}
	return o.f.ReadAt(p, off)
}

func (o *objectFile) Seek(off int64, whence int) (int64, error) { return o.f.Seek(off, whence) }

// Stat reports the open file's size, which readAllSized presizes by.
func (o *objectFile) Stat() (fs.FileInfo, error) { return o.f.Stat() }

func (o *objectFile) Close() error { return o.f.Close() }

var _ interface {
	io.ReadSeekCloser
	io.ReaderAt
} = (*objectFile)(nil)

// Irregular lists what in the repository is neither a directory nor a
// regular file (the layout's directories included, which List cannot
// show): verify reports each as damage. Hidden names (temporary files)
// and the local store's cache directory are not objects and are skipped.
func (b *Backend) Irregular(ctx context.Context) ([]*backend.ObjectError, error) {
	var out []*backend.ObjectError
	err := filepath.WalkDir(b.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // gone meanwhile, or unreadable: the readers say so
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == b.root {
			return nil
		}
		rel := filepath.ToSlash(p[len(b.root)+1:])
		if strings.HasPrefix(d.Name(), ".") || rel == "cache" {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() || d.Type().IsRegular() {
			return nil
		}
		out = append(out, &backend.ObjectError{Object: rel, Kind: files.ModeKind(d.Type()), Dir: layoutDir(rel)})
		return nil
	})
	return out, err
}

// layoutDir reports whether rel is where the format keeps a directory
// (packs/, packs/ab/, refs/ ...), not an object.
func layoutDir(rel string) bool {
	if rel == "config" {
		return false
	}
	return !strings.Contains(rel, "/") || strings.HasPrefix(rel, "packs/") && strings.Count(rel, "/") == 1
}
