package restorer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/scan"
	"github.com/statepack/statepack/archive/statcache"
	"github.com/statepack/statepack/internal/files"
	"github.com/statepack/statepack/internal/testhook"
	"github.com/statepack/statepack/remote/backend"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// maxOpenPacks bounds the pack files a restore keeps open (16 GiB of packs
// at the default size); beyond it blocks are read with a fresh open.
const maxOpenPacks = 256

// writeFile writes a temporary file beside p and moves it into place
// (replaceFile): a reader sees the old file or the new one. Blocks the
// current file already holds at the same offset (known from the stat
// cache) are copied from it in the kernel (a reflink where the file
// system can); the rest are read from the repository and verified. Blocks
// of zeros become holes. cur is the walk's stat of the regular file at p
// (nil when there is none). It returns the stat the stat cache may record
// (placedStat), nil when p changed after the rename.
func writeFile(ctx context.Context, r *archive.Repository, p string, e *format.Entry, packs *packFiles, old map[int64]format.ID, cur *scan.FileStat) (*scan.FileStat, error) {
	st, err := writeFileFrom(ctx, r, p, e, packs, old, cur)
	if errors.Is(err, errOldChanged) {
		// The file being replaced changed while blocks were copied from
		// it: they may not be the ones the stat cache vouched for.
		st, err = writeFileFrom(ctx, r, p, e, packs, nil, cur)
	}
	return st, err
}

// errOldChanged: the file a restore copied unchanged blocks from changed
// meanwhile.
var errOldChanged = errors.New("the file being replaced changed while it was read")

func writeFileFrom(ctx context.Context, r *archive.Repository, p string, e *format.Entry, packs *packFiles, old map[int64]format.ID, cur *scan.FileStat) (*scan.FileStat, error) {
	tmp := filepath.Join(filepath.Dir(p), format.RestoreTmpPrefix+files.RandomSuffix())
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w", e.Path, files.MapFSError(err))
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	src := openOld(p, old, cur)
	if src == nil {
		old = nil
	} else {
		defer src.Close()
	}
	if err := fillFile(ctx, r, f, src, e, packs, old); err != nil {
		return nil, fmt.Errorf("restore %s: %w", e.Path, err)
	}
	if src != nil && !statStill(src, *cur) {
		return nil, errOldChanged
	}
	if err := f.Truncate(e.Size); err != nil {
		return nil, fmt.Errorf("restore %s: %w", e.Path, files.MapFSError(err))
	}
	if err := setMeta(tmp, e, false); err != nil {
		return nil, err
	}
	fi, err := f.Stat() // after the last change the restore makes to it
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w", e.Path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("restore %s: %w", e.Path, files.MapFSError(err))
	}
	if err := replaceFile(tmp, p, cur != nil); err != nil {
		return nil, fmt.Errorf("restore %s: %w", e.Path, files.MapFSError(err))
	}
	ok = true
	if testhook.Placed != nil {
		testhook.Placed(p)
	}
	return placedStat(p, scan.StatOf(fi)), nil
}

// replaceFile moves the finished temporary file tmp to p atomically. Over
// a regular file (overFile) the two names are exchanged and the old file,
// now at tmp, is removed: a plain rename over an existing file makes ext4
// (auto_da_alloc) write the new file's data back inside the rename, which
// costs a switch between versions 100 ms for each 256 MiB database. The
// data then reaches the disk by the kernel's usual writeback, as that of
// every file a cold restore creates. Where the exchange fails (a file
// system without it, p gone), or put something other than a regular file
// at tmp (p changed since the walk: it is put back), rename decides.
func replaceFile(tmp, p string, overFile bool) error {
	if overFile && unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, p, unix.RENAME_EXCHANGE) == nil {
		st, err := os.Lstat(tmp)
		if err == nil && st.Mode().IsRegular() {
			if err := os.Remove(tmp); err != nil {
				return fmt.Errorf("remove the replaced file: %w", err)
			}
			return nil
		}
		if err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, p, unix.RENAME_EXCHANGE); err != nil {
			return err
		}
	}
	return os.Rename(tmp, p)
}

// oldBlocks maps offset to block id for the file now at the entry's path,
// when the stat cache vouches for its content.
func oldBlocks(e *format.Entry, c *scan.Scanned, cache *statcache.StatCache) map[int64]format.ID {
	if c == nil || c.Type != format.TypeFile {
		return nil
	}
	ce, ok := cache.Fresh(e.Path, c.Stat)
	if !ok {
		return nil
	}
	m := make(map[int64]format.ID, len(ce.Blocks))
	var off int64
	for _, b := range ce.Blocks {
		m[off] = b.ID
		off += int64(b.Size)
	}
	return m
}

// openOld opens the current file for copying unchanged blocks from, when
// it is still the file the walk found (cur), whose content the stat cache
// vouched for; nil otherwise.
func openOld(p string, old map[int64]format.ID, cur *scan.FileStat) *os.File {
	if len(old) == 0 || cur == nil {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return nil
	}
	if !statStill(f, *cur) {
		f.Close()
		return nil
	}
	return f
}

// statStill reports whether the open file f still has the stat st.
func statStill(f *os.File, st scan.FileStat) bool {
	fi, err := f.Stat()
	return err == nil && scan.SameStat(scan.StatOf(fi), st)
}

// fillFile writes every block of e into f, in segments on several workers
// for large files.
func fillFile(ctx context.Context, r *archive.Repository, f, src *os.File, e *format.Entry, packs *packFiles, old map[int64]format.ID) error {
	cloned := src != nil && unix.IoctlFileClone(int(f.Fd()), int(src.Fd())) == nil
	if cloned {
		src = nil // f shares the old content now: only changed blocks are written
	}
	return fillSegments(ctx, r, f, src, e, packs, old, cloned)
}

func fillSegments(ctx context.Context, r *archive.Repository, f, src *os.File, e *format.Entry, packs *packFiles, old map[int64]format.ID, cloned bool) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(3)
	var off int64
	// A file's blocks come a list block at a time (packs.lists): a file
	// whose lists name millions of blocks holds the segments in flight,
	// not its whole block list.
	for part := range packs.lists.Chunks(e) {
		for seg := range slices.Chunk(part, format.SegmentBlocks) {
			if err := gctx.Err(); err != nil {
				// A segment failed, or the restore was cancelled: the
				// rest need not start.
				if werr := g.Wait(); werr != nil {
					return werr
				}
				return err
			}
			segOff := off
			for _, b := range seg {
				off += int64(b.Size)
			}
			g.Go(func() error {
				return writeSegment(gctx, r, f, src, seg, segOff, packs, old, cloned)
			})
		}
	}
	return g.Wait()
}

// writeSegment writes consecutive blocks starting at off. Blocks stored
// back to back in one pack are read with one read, and decoded blocks that
// follow each other in the file go out in one write: a database cut into
// 16 KiB blocks costs a few syscalls per MiB, not two per block.
func writeSegment(ctx context.Context, r *archive.Repository, f, src *os.File, blocks []format.BlockRef, off int64, packs *packFiles, old map[int64]format.ID, cloned bool) error {
	bufs := segmentBufs.Get().(*segmentBuffers)
	defer segmentBufs.Put(bufs)
	w := &segmentWriter{f: f, cloned: cloned, buf: bufs.out[:0]}
	stored, locs := bufs.stored, bufs.locs[:0]
	defer func() { bufs.stored, bufs.locs = stored[:0], locs[:0] }()
	for i := 0; i < len(blocks); {
		if err := ctx.Err(); err != nil {
			return err
		}
		if n, size := reusedRun(blocks[i:], old, off); n > 0 {
			packs.reused.Add(size)
			if err := w.flush(); err != nil {
				return err
			}
			if !cloned {
				if err := copyRange(src, f, off, size); err != nil {
					return err
				}
			}
			off += size
			i += n
			continue
		}
		var err error
		if locs, err = storedRun(r, blocks[i:], old, off, locs[:0]); err != nil {
			return err
		}
		first, last := locs[0], locs[len(locs)-1]
		span := format.Location{Pack: first.Pack, Offset: first.Offset, Stored: last.Offset + last.Stored - first.Offset}
		if stored, err = packs.read(ctx, span, stored); err != nil {
			return err
		}
		for j, loc := range locs {
			st := stored[loc.Offset-first.Offset : loc.Offset-first.Offset+loc.Stored]
			raw, err := r.DecodeBlock(blocks[i+j].ID, loc, st, w.tail(off, int(loc.Raw)))
			if err != nil {
				return err
			}
			if err := w.commit(raw, off); err != nil {
				return err
			}
			off += int64(len(raw))
		}
		i += len(locs)
	}
	return w.flush()
}

// maxBlockRun bounds the stored bytes restore reads from a pack at once.
const maxBlockRun = 1 << 20

// segmentWriteBytes is how much decoded data restore gathers per write.
const segmentWriteBytes = 1 << 20

// segmentBuffers are one writeSegment's buffers, pooled: a restore writes
// thousands of segments, and fresh megabyte buffers for each would keep
// the collector busy. Blocks larger than the room left are decoded into
// their own allocation (tail returns nil).
type segmentBuffers struct {
	out, stored []byte
	locs        []format.Location
}

var segmentBufs = sync.Pool{New: func() any {
	return &segmentBuffers{out: make([]byte, 0, segmentWriteBytes+256<<10)}
}}

// reusedRun counts the blocks at the start of blocks that the old file
// holds at the same offsets, and their bytes: copied with one call.
func reusedRun(blocks []format.BlockRef, old map[int64]format.ID, off int64) (n int, size int64) {
	for _, b := range blocks {
		if id, ok := old[off+size]; !ok || id != b.ID {
			break
		}
		n++
		size += int64(b.Size)
	}
	return n, size
}

// storedRun returns the locations of the blocks at the start of blocks
// that lie back to back in one pack (at least one, at most maxBlockRun
// stored bytes), stopping at a block the old file already holds.
func storedRun(r *archive.Repository, blocks []format.BlockRef, old map[int64]format.ID, off int64, locs []format.Location) ([]format.Location, error) {
	var n uint32
	for _, b := range blocks {
		if id, ok := old[off]; ok && id == b.ID && len(locs) > 0 {
			break
		}
		loc, found := r.Index().Lookup(b.ID)
		if !found || loc.Raw != b.Size {
			if len(locs) > 0 {
				break // reported when the run reaches it
			}
			return nil, fmt.Errorf("block %s is missing from %s", b.ID.Short(), r.Location())
		}
		if k := len(locs); k > 0 && (loc.Pack != locs[0].Pack || loc.Offset != locs[k-1].Offset+locs[k-1].Stored || n+loc.Stored > maxBlockRun) {
			break
		}
		locs = append(locs, loc)
		n += loc.Stored
		off += int64(b.Size)
	}
	return locs, nil
}

// segmentWriter gathers decoded blocks that follow each other in a file
// into one buffer and writes it at once. Blocks are decoded straight into
// the buffer's spare room (tail), then taken in (commit).
type segmentWriter struct {
	f      *os.File
	cloned bool
	buf    []byte
	off    int64 // file offset of buf[0]
	err    error // sticky: the first failed write
}

// tail returns room for a block of n bytes at file offset off, after
// writing out what is buffered if the block does not follow it or would
// not fit.
func (w *segmentWriter) tail(off int64, n int) []byte {
	if len(w.buf) > 0 && (w.off+int64(len(w.buf)) != off || len(w.buf)+n > cap(w.buf)) {
		if w.flush() != nil {
			return nil // the error is sticky: commit reports it
		}
	}
	if len(w.buf) == 0 {
		w.off = off
	}
	if cap(w.buf)-len(w.buf) < n {
		return nil // larger than the buffer: DecodeBlock allocates
	}
	return w.buf[len(w.buf):len(w.buf):cap(w.buf)]
}

// commit takes in a block decoded at file offset off. Zeros become a hole
// (writeBlock); a block decoded elsewhere is copied in.
func (w *segmentWriter) commit(raw []byte, off int64) error {
	inTail := len(raw) > 0 && cap(w.buf)-len(w.buf) >= len(raw) && &w.buf[:len(w.buf)+1][len(w.buf)] == &raw[0]
	if format.AllZero(raw) || !inTail || w.off+int64(len(w.buf)) != off {
		if err := w.flush(); err != nil {
			return err
		}
		return writeBlock(w.f, raw, off, w.cloned)
	}
	w.buf = w.buf[:len(w.buf)+len(raw)]
	if len(w.buf) >= segmentWriteBytes {
		return w.flush()
	}
	return nil
}

// flush writes out what is buffered. A failed write stays the answer of
// every later flush.
func (w *segmentWriter) flush() error {
	if w.err != nil || len(w.buf) == 0 {
		return w.err
	}
	if _, err := w.f.WriteAt(w.buf, w.off); err != nil {
		w.err = files.MapFSError(err)
		return w.err
	}
	w.off += int64(len(w.buf))
	w.buf = w.buf[:0]
	return nil
}

// writeBlock writes one block; zeros become a hole, unless the file is a
// clone whose old bytes there must be overwritten.
func writeBlock(f *os.File, raw []byte, off int64, cloned bool) error {
	if format.AllZero(raw) {
		if !cloned {
			return nil
		}
		err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, int64(len(raw)))
		if err == nil {
			return nil
		}
	}
	if _, err := f.WriteAt(raw, off); err != nil {
		return files.MapFSError(err)
	}
	return nil
}

// copyRange copies n bytes at off from src to dst in the kernel.
func copyRange(src, dst *os.File, off, n int64) error {
	for n > 0 {
		in, out := off, off
		c, err := unix.CopyFileRange(int(src.Fd()), &in, int(dst.Fd()), &out, int(n), 0)
		if err != nil || c == 0 {
			return copyRangeSlow(src, dst, off, n)
		}
		off += int64(c)
		n -= int64(c)
	}
	return nil
}

func copyRangeSlow(src, dst *os.File, off, n int64) error {
	buf := make([]byte, min(n, 1<<20))
	for n > 0 {
		c, err := src.ReadAt(buf[:min(int64(len(buf)), n)], off)
		if c > 0 {
			if _, werr := dst.WriteAt(buf[:c], off); werr != nil {
				return files.MapFSError(werr)
			}
		}
		if err != nil && !(errors.Is(err, io.EOF) && c > 0) {
			return fmt.Errorf("copy unchanged bytes: %w", err)
		}
		off += int64(c)
		n -= int64(c)
	}
	return nil
}

// packFiles reads stored blocks for a restore. On a directory backend it
// keeps pack files open instead of opening one per block.
type packFiles struct {
	reused atomic.Int64 // bytes taken from the files being replaced
	r      *archive.Repository
	lists  *format.BlockLists // the snapshot's list blocks, when not expanded
	dir    backend.Local
	mu     sync.Mutex
	files  map[format.ID]*os.File
}

func newPackFiles(r *archive.Repository) *packFiles {
	d, _ := backend.As[backend.Local](r.Backend())
	return &packFiles{r: r, dir: d, files: map[format.ID]*os.File{}}
}

func (p *packFiles) read(ctx context.Context, loc format.Location, buf []byte) ([]byte, error) {
	if p.dir == nil {
		return p.r.ReadStored(ctx, loc, buf)
	}
	f, err := p.open(loc.Pack)
	if err != nil {
		return nil, err
	}
	if f == nil { // too many packs open: read this one the plain way
		return p.r.ReadStored(ctx, loc, buf)
	}
	if cap(buf) < int(loc.Stored) {
		buf = make([]byte, loc.Stored, max(loc.Stored, 64<<10))
	}
	buf = buf[:loc.Stored]
	if _, err := f.ReadAt(buf, int64(loc.Offset)); err != nil {
		return nil, fmt.Errorf("read %s from %s: %w", format.PackName(loc.Pack), p.r.Location(), err)
	}
	return buf, nil
}

func (p *packFiles) open(id format.ID) (*os.File, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f := p.files[id]; f != nil {
		return f, nil
	}
	f, err := p.dir.OpenObject(format.PackName(id))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p.r.Location(), err)
	}
	if len(p.files) >= maxOpenPacks {
		f.Close()
		return nil, nil
	}
	p.files[id] = f
	return f, nil
}

// Close closes every open pack file.
func (p *packFiles) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.files {
		f.Close()
	}
	clear(p.files)
}
