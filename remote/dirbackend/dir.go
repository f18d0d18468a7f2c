package dirbackend

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/internal/files"
	"github.com/statepack/statepack/internal/testhook"
	"github.com/statepack/statepack/remote/backend"
	"github.com/zeebo/blake3"
	"golang.org/x/sys/unix"
)

// Backend is a Backend on a local or mounted directory: the local store,
// and the `dir` remote. Objects are plain files named like the objects.
//
// Put writes a temporary file beside the target and renames it into place,
// so a reader or a crash never sees a partial object. Put does not fsync:
// PutIf (which moves refs) first flushes (dirsync.go), so everything a ref
// can point at is durable before the ref is. After a large object (a
// pack) Put also has the kernel start writing it back (see
// startWriteback), so that the flush before the ref finds little left to
// do.
type Backend struct {
	root string

	// writebacks counts the background writebacks still running.
	writebacks atomic.Int32

	// dur is what the flush before the next ref must make durable.
	dur durability
}

// New opens (and when create is set, creates) a directory backend.
func New(root string, create bool) (*Backend, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", root, err)
	}
	if create {
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return nil, fmt.Errorf("create %s: %w", abs, files.MapFSError(err))
		}
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", abs, files.MapFSError(err))
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("open %s: not a directory", abs)
	}
	return &Backend{root: abs, dur: newDurability()}, nil
}

// Root is the absolute directory the backend stores into.
func (b *Backend) Root() string { return b.root }

// Location implements Backend.
func (b *Backend) Location() string { return b.root }

func (b *Backend) path(name string) (string, error) {
	if !validObjectName(name) {
		return "", fmt.Errorf("invalid object name %q", name)
	}
	if err := b.noSymlinkedDirs(name); err != nil {
		return "", err
	}
	return filepath.Join(b.root, filepath.FromSlash(name)), nil
}

// noSymlinkedDirs refuses a name whose directories (packs/, packs/ab/ ...)
// are symlinks: on a shared directory remote someone could plant
// `packs -> /elsewhere` and make statepack write outside the repository.
// Missing directories are fine; they are created as real ones.
func (b *Backend) noSymlinkedDirs(name string) error {
	for i := strings.IndexByte(name, '/'); i >= 0; {
		dir := name[:i]
		st, err := os.Lstat(filepath.Join(b.root, filepath.FromSlash(dir)))
		if err != nil {
			return nil // absent from here down
		}
		if st.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%s in %s is a symlink; refusing to follow it out of the repository", dir, b.root)
		}
		next := strings.IndexByte(name[i+1:], '/')
		if next < 0 {
			break
		}
		i += 1 + next
	}
	return nil
}

// validObjectName accepts clean relative slash paths with no dot segments,
// so that a name taken from untrusted data cannot leave the repository.
func validObjectName(name string) bool {
	if name == "" || strings.HasPrefix(name, "/") || path.Clean(name) != name {
		return false
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || seg == "." || seg == ".." || strings.HasPrefix(seg, ".") {
			return false
		}
	}
	return !strings.ContainsRune(name, 0)
}

// Get implements Backend. The object is opened by OpenObject's rules
// (dirobjects.go), and reading it stops when ctx ends.
func (b *Backend) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	f, err := b.OpenObject(name)
	if err != nil {
		return nil, err
	}
	b.sawContent(name)
	return &objectFile{ctx: ctx, f: f}, nil
}

// sawContent records a read of an object's bytes: of an index object, a
// snapshot or a lookup table, which tell what a ref may rely on; a pack's
// bytes are read for blocks found through those.
func (b *Backend) sawContent(name string) {
	if !strings.HasPrefix(name, "packs/") {
		b.saw(name)
	}
}

// GetRange implements Backend.
func (b *Backend) GetRange(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	f, err := b.OpenObject(name)
	if err != nil {
		return nil, err
	}
	b.sawContent(name)
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if offset < 0 || length < 0 || offset > st.Size() || length > st.Size()-offset {
		f.Close()
		return nil, fmt.Errorf("%s: range %d+%d of an object of %d bytes: %w", name, offset, length, st.Size(), backend.ErrOutOfRange)
	}
	return &sectionCloser{files.NewCtxReader(ctx, io.NewSectionReader(f, offset, length)), f}, nil
}

type sectionCloser struct {
	io.Reader
	io.Closer
}

// Put implements Backend.
func (b *Backend) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	p, err := b.path(name)
	if err != nil {
		return err
	}
	if err := files.WriteAtomic(ctx, p, r, size, false); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	b.wrote(name, p)
	if testhook.DirOp != nil {
		testhook.DirOp("put", name)
	}
	if size >= writebackMin {
		b.startWriteback(p)
	}
	return nil
}

const (
	// writebackMin is the object size from which Put starts the writeback
	// at once: packs, not index objects, snapshots or small packs.
	writebackMin = 4 << 20
	// MaxWritebacks bounds the goroutines doing so; past it the hint is
	// dropped (the syncfs before the ref writes whatever is left).
	MaxWritebacks = 2
)

// startWriteback has the kernel start writing the object at p to the disk
// now, with sync_file_range(SYNC_FILE_RANGE_WRITE) on a goroutine of its
// own, while the caller goes on producing more. Without it, the syncfs
// that must precede a ref (PutIf) begins the writeback of a whole save's
// packs only at the end and waits for all of it: about 0.2 s of a 1.7 s
// cold save of 1 GiB, with both cores idle; with it that syncfs takes a
// few milliseconds. It is only a hint: it waits for nothing, makes
// nothing durable (the syncfs before the ref still does), and its errors
// do not matter.
//
// Measured and rejected, both slower in paired runs: the same call on
// the writing goroutine (a compressor then waits while it allocates and
// submits, or blocks on a busy disk), and a background syncfs per pack:
// every syncfs commits the file system's journal, stalling writers, and
// flushes every other process's dirty data too.
func (b *Backend) startWriteback(p string) {
	for {
		n := b.writebacks.Load()
		if n >= MaxWritebacks {
			return
		}
		if b.writebacks.CompareAndSwap(n, n+1) {
			break
		}
	}
	go func() {
		defer b.writebacks.Add(-1)
		// Never a blocking open, nor a followed link: the file may have
		// been replaced meanwhile by someone sharing the directory.
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return // removed meanwhile: nothing to write back
		}
		_ = unix.SyncFileRange(fd, 0, 0, unix.SYNC_FILE_RANGE_WRITE)
		unix.Close(fd)
	}()
}

// Stat implements Backend, by OpenObject's rules: a name that is not a
// regular file is reported, not described.
func (b *Backend) Stat(ctx context.Context, name string) (backend.ObjectInfo, error) {
	oi, err := b.StatObject(name)
	if err != nil {
		return backend.ObjectInfo{}, err
	}
	b.saw(name)
	return oi, nil
}

// List implements Backend. It hands out every entry but directories,
// FIFOs, devices and symlinks planted among the objects included, so
// that a reader names them when it opens them (OpenObject refuses) and
// verify reports them, instead of skipping them unseen; such an entry's
// size is 0. A directory on the way to the prefix that is a symlink
// (`refs -> /etc`) fails the listing: names found through it are not the
// repository's.
func (b *Backend) List(ctx context.Context, prefix string, fn func(backend.ObjectInfo) error) error {
	base := b.root
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		if !validObjectName(prefix[:i]) {
			return nil // no object name starts with this prefix
		}
		if err := b.listBase(prefix[:i]); err != nil {
			return fmt.Errorf("list %s: %w", prefix, err)
		}
		base = filepath.Join(b.root, filepath.FromSlash(prefix[:i]))
	}
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") && p != base {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(b.root, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if !strings.HasPrefix(name, prefix) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // deleted while listing
			}
			return err
		}
		b.saw(name)
		size := info.Size()
		if !info.Mode().IsRegular() {
			size = 0 // a symlink's is its target's length
		}
		return fn(backend.ObjectInfo{Name: name, Size: size, ModTime: info.ModTime()})
	})
	if err != nil {
		return fmt.Errorf("list %s: %w", prefix, files.MapFSError(err))
	}
	return nil
}

// Delete implements Backend.
func (b *Backend) Delete(ctx context.Context, name string) error {
	p, err := b.path(name)
	if err != nil {
		return err
	}
	if testhook.DirOp != nil {
		testhook.DirOp("delete", name)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", name, files.MapFSError(err))
	}
	return nil
}

// GetVersioned implements Backend. The version tag of a file is a hash of
// its content: refs and locks are tiny, and content tags need no clock.
func (b *Backend) GetVersioned(ctx context.Context, name string) ([]byte, string, error) {
	data, err := b.readVersioned(name)
	if err != nil {
		return nil, "", err
	}
	return data, contentTag(data), nil
}

// readVersioned reads a small mutable object, refusing one larger than
// MaxVersionedSize by the size of the open file, before reading it.
func (b *Backend) readVersioned(name string) ([]byte, error) {
	f, err := b.OpenObject(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if st.Size() > backend.MaxVersionedSize {
		return nil, fmt.Errorf("%s: object of %d bytes is too large for a ref or lock: %w", name, st.Size(), format.ErrCorrupt)
	}
	data, err := io.ReadAll(io.LimitReader(f, backend.MaxVersionedSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, files.MapFSError(err))
	}
	if len(data) > backend.MaxVersionedSize {
		return nil, fmt.Errorf("%s: object of more than %d bytes is too large for a ref or lock: %w", name, backend.MaxVersionedSize, format.ErrCorrupt)
	}
	return data, nil
}

func contentTag(data []byte) string {
	sum := blake3.Sum256(data)
	return hex.EncodeToString(sum[:16])
}

// PutIf implements Backend. The compare and the rename happen under an
// exclusive flock on the object's directory, so concurrent processes on
// this host (or on a share whose server honours flock) serialise.
func (b *Backend) PutIf(ctx context.Context, name string, data []byte, ifMatch string) (string, error) {
	p, err := b.path(name)
	if err != nil {
		return "", err
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("write %s: %w", name, files.MapFSError(err))
	}
	unlock, err := files.FlockDir(ctx, dir)
	if err != nil {
		return "", fmt.Errorf("write %s: %w", name, err)
	}
	defer unlock()
	cur, err := b.readVersioned(name)
	switch {
	case errors.Is(err, backend.ErrNotFound):
		if ifMatch != "" {
			return "", fmt.Errorf("write %s: %w", name, backend.ErrConflict)
		}
	case err != nil:
		return "", fmt.Errorf("write %s: %w", name, err)
	case ifMatch == "" || contentTag(cur) != ifMatch:
		return "", fmt.Errorf("write %s: %w", name, backend.ErrConflict)
	}
	if err := b.Flush(); err != nil {
		return "", fmt.Errorf("write %s: %w", name, err)
	}
	if err := files.WriteAtomic(ctx, p, bytes.NewReader(data), int64(len(data)), true); err != nil {
		return "", fmt.Errorf("write %s: %w", name, err)
	}
	return contentTag(data), nil
}

// RemoveTemp deletes temporary files older than age that killed writers
// left behind. Only prune calls it, under the exclusive lock.
func (b *Backend) RemoveTemp(age time.Duration) error {
	cutoff := time.Now().Add(-age)
	return filepath.WalkDir(b.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && p != b.root && d.Name() == "cache" && filepath.Dir(p) == b.root {
			return fs.SkipDir
		}
		if !d.IsDir() && strings.HasPrefix(d.Name(), files.TmpPrefix) {
			if info, err := d.Info(); err == nil && info.ModTime().Before(cutoff) {
				_ = os.Remove(p)
			}
		}
		return nil
	})
}
