package dirbackend

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/statepack/statepack/internal/files"
	"github.com/statepack/statepack/internal/testhook"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// durability tracks what a directory store must make durable before a ref
// moves. Everything the ref can reach must be on the disk (invariant 1):
// the objects this process wrote (packs, index, the snapshot), and the
// objects of other processes that it relied on (index objects it
// deduplicated against, snapshots whose blocks it reused), which a killed
// or still running writer may have left unflushed.
//
// One syncfs(2) covers both, but it also waits for every other dirty page
// of the file system: after a pull --restore, the whole DATA_DIR it just
// wrote (0.33-0.47 s for 1 GiB here, seconds on a slow CI disk), which
// restore, like cp, leaves to the kernel's writeback. So the backend
// tracks both kinds: it counts reads of immutable objects it did not
// write ("seen"), and lists the files it wrote since the last flush and
// the directories that name them. A flush fsyncs exactly those when
// nothing was seen since the last syncfs (a pull into an empty store, or
// one that settled its reads first: SettleReads), and falls back to one
// syncfs otherwise. Reading a pack's bytes does not count: blocks are
// relied on through the index and the snapshots, which do.
type durability struct {
	mu      sync.Mutex
	pending map[string]struct{} // files written since the last flush
	dirs    map[string]struct{} // the directories naming them, up to the root
	written map[string]struct{} // names this backend wrote: reading them relies on nothing else
	seen    int64               // reads of immutable objects others wrote
	synced  int64               // seen when the last syncfs began

	syncs, fsyncs atomic.Int64 // how flushes went, for FlushCounts
}

// FlushCounts reports how this backend has made writes durable so far:
// the syncfs(2) calls, and the files and directories fsynced one by one.
func (b *Backend) FlushCounts() (syncs, fsyncs int64) {
	return b.dur.syncs.Load(), b.dur.fsyncs.Load()
}

// immutableName reports whether name is a content-addressed object that a
// ref can reach: PutIf writes refs durably itself, and locks need not
// survive a crash.
func immutableName(name string) bool {
	for _, p := range []string{"packs/", "index/", "snapshots/", "lookup/"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// wrote records that the object name was written at p.
func (b *Backend) wrote(name, p string) {
	if !immutableName(name) {
		return
	}
	d := &b.dur
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pending[p] = struct{}{}
	d.written[name] = struct{}{}
	// A new packs/ab/ must itself be named durably by packs/, and so on.
	for dir := filepath.Dir(p); ; dir = filepath.Dir(dir) {
		d.dirs[dir] = struct{}{}
		if dir == b.root || len(dir) <= len(b.root) {
			break
		}
	}
}

// saw records a read of the object name, which a later ref may rely on.
func (b *Backend) saw(name string) {
	if !immutableName(name) {
		return
	}
	d := &b.dur
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, own := d.written[name]; !own {
		d.seen++
	}
}

// newDurability returns the empty state of a new backend.
func newDurability() durability {
	return durability{pending: map[string]struct{}{}, dirs: map[string]struct{}{}, written: map[string]struct{}{}}
}

// behind reports whether objects of others were read since the last
// syncfs.
func (b *Backend) behind() bool {
	b.dur.mu.Lock()
	defer b.dur.mu.Unlock()
	return b.dur.seen > b.dur.synced
}

// Flush makes everything a ref written next can reach durable: the files
// written since the last flush, or, when objects of others were read
// since the last syncfs, the whole file system.
func (b *Backend) Flush() error {
	if b.behind() {
		return b.settle()
	}
	files, dirs := b.takePending()
	if err := fsyncAll(files, dirs); err != nil {
		b.putBack(files, dirs)
		return err
	}
	b.dur.fsyncs.Add(int64(len(files) + len(dirs)))
	return nil
}

// settle runs one syncfs, which makes durable everything read or written
// before it began.
func (b *Backend) settle() error {
	d := &b.dur
	d.mu.Lock()
	seen := d.seen
	d.mu.Unlock()
	files, dirs := b.takePending()
	if err := b.syncfs(); err != nil {
		b.putBack(files, dirs)
		return err
	}
	d.mu.Lock()
	d.synced = max(d.synced, seen)
	d.mu.Unlock()
	d.syncs.Add(1)
	return nil
}

func (b *Backend) takePending() (files, dirs map[string]struct{}) {
	d := &b.dur
	d.mu.Lock()
	defer d.mu.Unlock()
	files, dirs = d.pending, d.dirs
	d.pending, d.dirs = map[string]struct{}{}, map[string]struct{}{}
	return files, dirs
}

// putBack returns what a failed flush took, for the next one to retry.
func (b *Backend) putBack(files, dirs map[string]struct{}) {
	d := &b.dur
	d.mu.Lock()
	defer d.mu.Unlock()
	for p := range files {
		d.pending[p] = struct{}{}
	}
	for p := range dirs {
		d.dirs[p] = struct{}{}
	}
}

// fsyncAll fsyncs the files, then the directories that name them, a few
// at a time: fsyncs of different files proceed in parallel on the disk.
func fsyncAll(files, dirs map[string]struct{}) error {
	for _, set := range []map[string]struct{}{files, dirs} {
		var g errgroup.Group
		g.SetLimit(8)
		for p := range set {
			g.Go(func() error { return fsyncPath(p) })
		}
		if err := g.Wait(); err != nil {
			return err
		}
	}
	return nil
}

// fsyncPath fsyncs the file or directory at p; one gone meanwhile has
// nothing left to make durable. The open never blocks: on a shared
// directory the file may have been replaced by a FIFO since it was
// written (fsync of anything but a file or directory fails with EINVAL,
// which is ignored: nothing of ours is left there to make durable).
func fsyncPath(p string) error {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return files.MapFSError(err)
	}
	defer unix.Close(fd)
	if err := unix.Fsync(fd); err != nil && !errors.Is(err, unix.EINVAL) {
		return files.MapFSError(err)
	}
	if testhook.DirOp != nil {
		testhook.DirOp("fsync", p)
	}
	return nil
}

// syncfs flushes the whole file system the store is on.
func (b *Backend) syncfs() error {
	fd, err := unix.Open(b.root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return files.MapFSError(err)
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return files.MapFSError(err)
	}
	if testhook.DirOp != nil {
		testhook.DirOp("sync", "")
	}
	return nil
}

// SettleReads makes durable now what this backend has read of others'
// objects (one syncfs), if anything, so that the flush before the next
// ref needs only what is written from here on.
func (b *Backend) SettleReads() error {
	if !b.behind() {
		return nil
	}
	return b.settle()
}
