package saver

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/datadir"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/scan"
	"github.com/statepack/statepack/archive/statcache"
	"github.com/statepack/statepack/chunker"
	"github.com/statepack/statepack/internal/files"
	"github.com/statepack/statepack/internal/progress"
	"github.com/statepack/statepack/internal/testhook"
	"github.com/statepack/statepack/remote/backend"
)

// Options describe one save.
type Options struct {
	DataDir  string
	State    string
	Message  string
	Labels   map[string]string
	Filter   scan.Filter
	CacheDir string // local stat cache directory; empty disables it
	Host     string
	User     string
	Tool     string
	Progress progress.Sink
	LockWait time.Duration
}

// Result reports what a save did.
type Result struct {
	Snapshot    format.ID
	Parent      format.ID
	State       string
	Files       int
	Dirs        int
	Symlinks    int
	Bytes       int64 // content of all files in the snapshot
	FilesRead   int   // files whose content was read
	BytesRead   int64
	NewBlocks   int64
	NewBytes    int64 // raw bytes of new blocks
	StoredBytes int64 // bytes added to packs
	Warnings    []string

	cache    *statcache.StatCache
	cacheDir string
	root     string
}

// maxChangeRetries is how often a file that changes while it is read is
// read again before the save gives up on it.
const maxChangeRetries = 3

// Save snapshots DataDir as a new version of State. Write order is packs,
// index, snapshot, ref (invariant 1); files whose stat data is unchanged
// since the last save or restore are not read again (invariant 7).
func Save(ctx context.Context, r *archive.Repository, o Options) (*Result, error) {
	if err := archive.ValidStateName(o.State); err != nil {
		return nil, err
	}
	root, err := CheckDataDir(o.DataDir)
	if err != nil {
		return nil, err
	}
	if err := datadir.CheckDataDir(o.DataDir, r.OwnedPaths(o.CacheDir)...); err != nil {
		return nil, err
	}
	dlock, err := datadir.LockDataDir(ctx, root, o.LockWait)
	if err != nil {
		return nil, err
	}
	defer dlock.Unlock()
	lock, err := r.Lock(ctx, false, "save", o.LockWait)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	res, entries, err := SaveTree(ctx, r, root, o)
	if err != nil {
		return nil, err
	}
	m := &format.Manifest{Version: format.FormatVersion, State: o.State, Message: o.Message, Labels: o.Labels,
		Created: time.Now().UTC(), Host: o.Host, User: o.User, Tool: o.Tool, Entries: entries}
	if err := Commit(ctx, r, m, res); err != nil {
		return nil, err
	}
	return res, nil
}

// CheckDataDir resolves the directory to save and checks it is one.
func CheckDataDir(dir string) (string, error) {
	if dir == "" {
		return "", datadir.ErrNoDataDir
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	st, err := os.Stat(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("DATA_DIR %s does not exist", abs)
	}
	if err != nil {
		return "", fmt.Errorf("DATA_DIR %s: %w", abs, files.MapFSError(err))
	}
	if !st.IsDir() {
		return "", fmt.Errorf("DATA_DIR %s is not a directory", abs)
	}
	return abs, nil
}

// SaveTree stores the blocks of root's files that the repository lacks,
// and their index, and returns the manifest entries of root; Commit makes
// them a snapshot. Save and restore's backup of DATA_DIR both call it, so
// a backup is an ordinary save. The caller holds the locks.
func SaveTree(ctx context.Context, r *archive.Repository, root string, o Options) (*Result, []format.Entry, error) {
	sink := progress.Or(o.Progress)
	res := &Result{State: o.State}
	warn := func(msg string) { res.Warnings = append(res.Warnings, msg); sink.Warn(msg) }
	// The index loads while the tree is walked: one is CPU, the other
	// mostly stat calls, and together they are most of a no-op save.
	var found []scan.Scanned
	var cache *statcache.StatCache
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		_, err := r.LoadIndex(gctx)
		return err
	})
	g.Go(func() error {
		var err error
		if found, err = scan.ScanTree(root, o.Filter, warn); err == nil {
			cache = statcache.LoadStatCache(o.CacheDir, root)
		}
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	var toRead []int
	var readBytes int64
	for i := range found {
		e := &found[i]
		switch e.Type {
		case format.TypeDir:
			res.Dirs++
		case format.TypeSymlink:
			res.Symlinks++
		case format.TypeFile:
			res.Files++
			res.Bytes += e.Size
			if ce, ok := cache.Fresh(e.Path, e.Stat); ok && allIndexed(r, ce.Blocks) && allIndexed(r, ce.Lists) {
				e.Blocks, e.Lists = ce.Blocks, ce.Lists
				continue
			}
			toRead = append(toRead, i)
			readBytes += e.Size
		}
	}
	toRead = SettleOrder(found, toRead)
	sink.Phase("save", int64(len(toRead)), readBytes)
	w := archive.NewBlockWriter(ctx, r)
	defer w.Abort()
	if err := readFiles(ctx, r, root, found, toRead, w, sink); err != nil {
		return nil, nil, err
	}
	if err := storeLists(found, w); err != nil {
		return nil, nil, err
	}
	packs, err := w.Close()
	if err != nil {
		return nil, nil, err
	}
	if _, err := r.PutIndex(ctx, packs); err != nil {
		return nil, nil, err
	}
	res.FilesRead, res.BytesRead = len(toRead), readBytes
	res.NewBlocks, res.NewBytes, res.StoredBytes = w.NewBlocks.Load(), w.NewRaw.Load(), w.NewStored.Load()
	entries := make([]format.Entry, len(found))
	for i, e := range found {
		entries[i] = e.Entry
	}
	res.cache, res.cacheDir, res.root = NewStatCache(o.State, found, res.Files), o.CacheDir, root
	return res, entries, nil
}

// NewStatCache records the files of a save. A file read before its last
// change was a racy window old is left out (the next save or restore
// reads it again): a write in the same timestamp tick could have changed
// it without changing its stat. Every file recorded was either vouched
// for by the cache the save started from or read a window after its last
// change, so the cache vouches for changes from now on.
func NewStatCache(state string, found []scan.Scanned, files int) *statcache.StatCache {
	c := &statcache.StatCache{State: state, Files: make(map[string]*statcache.StatEntry, files)}
	for _, e := range found {
		if e.Type != format.TypeFile || e.ReadAt != 0 && !statcache.Settled(e.Stat, e.ReadAt) {
			continue
		}
		c.Files[e.Path] = &statcache.StatEntry{Size: e.Stat.Size, MTime: e.Stat.MTime, CTime: e.Stat.CTime, Ino: e.Stat.Ino, Blocks: e.Blocks, Lists: e.Lists}
	}
	c.Recorded = time.Now().UnixNano()
	return c
}

// SettleOrder puts files changed within the racy window last, the most
// recently changed at the end: reading them after the window has passed
// (readFiles waits for it, at most a tenth of a second, while other files
// are read) lets the stat cache vouch for them, so the save, restore or
// switch that follows does not hash them again.
func SettleOrder(found []scan.Scanned, toRead []int) []int {
	now := time.Now().UnixNano()
	settle := func(i int) int64 { return max(found[i].Stat.MTime, found[i].Stat.CTime) + statcache.RacyWindow }
	slices.SortStableFunc(toRead, func(a, b int) int {
		ra, rb := settle(a) > now, settle(b) > now
		switch {
		case ra && rb:
			return cmp.Compare(settle(a), settle(b))
		case ra:
			return 1
		case rb:
			return -1
		}
		return 0
	})
	return toRead
}

// WaitSettled waits until the file e was last changed a racy window ago,
// when that is at most a window away (a clock set back, a coarse
// timestamp or a file changed in the future are not waited for).
func WaitSettled(ctx context.Context, e *scan.Scanned) error {
	wait := time.Duration(max(e.Stat.MTime, e.Stat.CTime) + statcache.RacyWindow + int64(time.Millisecond) - time.Now().UnixNano())
	if wait <= 0 || wait > time.Duration(statcache.RacyWindow)+time.Millisecond {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func allIndexed(r *archive.Repository, blocks []format.BlockRef) bool {
	return r.Index().HasAll(blocks)
}

// readFiles reads, chunks and hashes the listed files with one reader
// per core, each reusing its chunker's buffer; the block writer's
// compressors run beside them, so chunking, hashing, compressing and
// writing overlap.
func readFiles(ctx context.Context, r *archive.Repository, root string, found []scan.Scanned, toRead []int, w *archive.BlockWriter, sink progress.Sink) error {
	g, gctx := errgroup.WithContext(ctx)
	next := make(chan int)
	g.Go(func() error {
		defer close(next)
		for _, i := range toRead {
			select {
			case next <- i:
			case <-gctx.Done():
				return nil
			}
		}
		return nil
	})
	for n := 0; n < runtime.GOMAXPROCS(0); n++ {
		g.Go(func() error {
			ck, err := NewSplitters(r.Config().Chunker)
			if err != nil {
				return err
			}
			for i := range next {
				e := &found[i]
				if err := WaitSettled(gctx, e); err != nil {
					return err
				}
				if err := readFile(gctx, r, filepath.Join(root, filepath.FromSlash(e.Path)), e, ck, w, sink); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// readFile stores one file's blocks. A file whose stat changes while it is
// read is read again; after maxChangeRetries the save fails naming it.
func readFile(ctx context.Context, r *archive.Repository, p string, e *scan.Scanned, ck *Splitters, w *archive.BlockWriter, sink progress.Sink) error {
	for attempt := 0; ; attempt++ {
		changed, err := readFileOnce(ctx, r, p, e, ck, w, sink)
		if err != nil || !changed {
			return err
		}
		if attempt+1 >= maxChangeRetries {
			return fmt.Errorf("%s changed while it was read (%d times); stop whatever writes it and save again", e.Path, maxChangeRetries)
		}
	}
}

func readFileOnce(ctx context.Context, r *archive.Repository, p string, e *scan.Scanned, ck *Splitters, w *archive.BlockWriter, sink progress.Sink) (bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", e.Path, files.MapFSError(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("stat %s: %w", e.Path, err)
	}
	before := scan.StatOf(fi)
	if !fi.Mode().IsRegular() {
		return false, fmt.Errorf("%s stopped being a regular file while it was saved", e.Path)
	}
	sp, err := ck.ForFile(f)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", e.Path, err)
	}
	readAt := time.Now().UnixNano()
	sp.Reset(newHoleReader(f, before.Size))
	stream := w.Stream()
	var blocks []format.BlockRef
	var n int64
	for {
		data, err := sp.Next()
		if err == io.EOF {
			break
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return true, nil // it shrank while read: read it again
		}
		if err != nil {
			return false, fmt.Errorf("read %s: %w", e.Path, err)
		}
		if err := ctx.Err(); err != nil {
			return false, err
		}
		id := r.BlockID(data)
		if _, err := stream.Add(id, data); err != nil {
			return false, err
		}
		blocks = append(blocks, format.BlockRef{ID: id, Size: uint32(len(data))})
		n += int64(len(data))
		sink.Add(0, int64(len(data)))
		if testhook.DuringRead != nil && len(blocks) == 1 {
			testhook.DuringRead(p)
		}
	}
	if testhook.AfterRead != nil {
		testhook.AfterRead(p)
	}
	fi, err = f.Stat()
	if err != nil {
		return false, fmt.Errorf("stat %s: %w", e.Path, err)
	}
	after := scan.StatOf(fi)
	if after != before || n != after.Size {
		return true, nil
	}
	sink.Add(1, 0)
	e.Stat, e.Size, e.Blocks, e.ReadAt = after, n, blocks, readAt
	e.Mode, e.UID, e.GID, e.MTime = after.Mode, after.UID, after.GID, after.MTime
	return false, nil
}

// splitter cuts one file's content into blocks.
type splitter interface {
	Reset(io.Reader)
	Next() ([]byte, error)
}

// Splitters are one file reader's chunkers, reused from file to file: the
// content-defined one, and fixed-size ones for paged files (pages.go).
type Splitters struct {
	cc    format.ChunkerConfig
	cdc   *chunker.Chunker
	fixed map[int]*chunker.Fixed
	hdr   [sqliteHeaderLen]byte
}

// NewSplitters returns the splitters for a repository's chunker
// settings; restore's diff uses them to cut files as save would.
func NewSplitters(cc format.ChunkerConfig) (*Splitters, error) {
	cdc, err := chunker.New(nil, cc.Params())
	if err != nil {
		return nil, err
	}
	return &Splitters{cc: cc, cdc: cdc, fixed: map[int]*chunker.Fixed{}}, nil
}

// ForFile picks the splitter for f from its first bytes.
func (s *Splitters) ForFile(f *os.File) (splitter, error) {
	size := PageBlockSize(readHeader(f, s.hdr[:]), s.cc)
	if size == 0 {
		return s.cdc, nil
	}
	if s.fixed[size] == nil {
		fx, err := chunker.NewFixed(size)
		if err != nil {
			return nil, err
		}
		s.fixed[size] = fx
	}
	return s.fixed[size], nil
}

// Commit writes the manifest and moves the ref, retrying when another save
// of the same state moved it meanwhile (the new version then follows it).
func Commit(ctx context.Context, r *archive.Repository, m *format.Manifest, res *Result) error {
	// The stat cache is encoded while the manifest and the ref are
	// written (it is a few MiB at the sizes of a no-op save's budget) and
	// written once the ref moved, with the snapshot's id.
	var cache chan []byte
	if res.cache != nil && res.cacheDir != "" {
		cache = make(chan []byte, 1)
		go func() { cache <- statcache.EncodeStatCache(res.cache) }()
	}
	if err := CheckFileSizes(m.Entries); err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		head, tag, err := r.ReadRef(ctx, m.State)
		switch {
		case errors.Is(err, backend.ErrNotFound):
			m.Parent, tag = format.ID{}, ""
		case err != nil:
			return err
		default:
			m.Parent = head
		}
		id, err := r.PutManifestBytes(ctx, format.EncodeManifest(m))
		if err != nil {
			return err
		}
		err = r.SetRef(ctx, m.State, id, tag)
		if errors.Is(err, backend.ErrConflict) && attempt < 5 {
			continue
		}
		if err != nil {
			return err
		}
		res.Snapshot, res.Parent = id, m.Parent
		if cache != nil {
			data := <-cache
			res.cache.Snapshot = id
			statcache.SetStatCacheSnapshot(data, id)
			_ = statcache.WriteStatCache(res.cacheDir, res.root, data)
		}
		return nil
	}
}

// CheckFileSizes makes sure every file's blocks add up to its size before
// a manifest is committed (invariant 8): one that does not is a snapshot
// that log, restore and verify would call corrupt.
func CheckFileSizes(entries []format.Entry) error {
	for i := range entries {
		e := &entries[i]
		if e.Type != format.TypeFile {
			continue
		}
		if sum := format.BlocksSize(e.Blocks); sum != e.Size {
			return fmt.Errorf("%s: its blocks add up to %d bytes but it is %d bytes long; nothing was saved (a bug: please report it)", e.Path, sum, e.Size)
		}
	}
	return nil
}

// Overlaps reports whether a and b are the same directory or one contains
// the other, so that a store is never saved into itself. Symlinks are
// resolved, also in the part of a path that exists while the rest does not.
func Overlaps(a, b string) bool {
	a, b = datadir.ResolveExisting(datadir.AbsOrClean(a)), datadir.ResolveExisting(datadir.AbsOrClean(b))
	return a == b || datadir.Within(a, b) || datadir.Within(b, a)
}
