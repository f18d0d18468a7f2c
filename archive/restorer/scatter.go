package restorer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/datadir"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/scan"
	"github.com/statepack/statepack/archive/statcache"
	"github.com/statepack/statepack/internal/files"
	"github.com/statepack/statepack/internal/progress"
	"github.com/statepack/statepack/internal/testhook"
)

// maxScatterFiles bounds the temporary files a scatter restore keeps open
// at once. Blocks of one pack mostly belong to a few files (save writes
// them in file order), so a small cache serves nearly every write; a
// file pushed out is reopened by its temporary name.
const maxScatterFiles = 32

// ScatterRestore restores a snapshot into a missing or empty DATA_DIR while
// its blocks arrive from elsewhere (pull --restore): the puller hands each
// block's verified plaintext to Write as soon as it has it, and the block
// goes straight to every place the snapshot uses it, instead of being
// stored, read back, decoded and hashed a second time by Restore. On a
// CI runner that halves the CPU a cold pull --restore needs.
//
// The guarantees are Restore's. Every file is written under a temporary
// name in its own directory and renamed into place by Finish, after the
// blocks are in the local store and the pull has recorded the snapshot
// (invariant 1: nothing in DATA_DIR claims a snapshot the store lacks).
// The restore marker is written by StartScatterRestore and removed by
// Finish, so a killed pull --restore is reported by `status`; running
// pull --restore again completes it (or restore, once the snapshot is
// local). An error before Finish undoes everything (Abort): DATA_DIR is
// left as it was found.
//
// Memory is bounded per block, not per byte: a plan of where each block
// goes, and a few open files.
type ScatterRestore struct {
	r          *archive.Repository
	id         format.ID
	state      string
	o          Options
	root       string
	created    string // the directory StartScatterRestore created for DATA_DIR, if any
	lock       *datadir.DataDirLock
	marker     string
	oldMark    []byte // the marker of an earlier interrupted restore, put back by Abort
	target     []format.Entry
	files      []*scatterFile
	where      map[format.ID][]placement
	fds        fdCache
	res        Result
	renamed    atomic.Bool // Finish began: files may be in place, Abort may not undo
	writebacks atomic.Int32
}

// placement is one use of a block: the file, its position in the file's
// block list, and its offset.
type placement struct {
	file  int32
	block int32
	off   int64
}

// scatterFile is one regular file being restored.
type scatterFile struct {
	e    *format.Entry
	path string // final path
	mu   sync.Mutex
	// Guarded by mu:
	tmp     string // temporary name, once created
	f       *os.File
	written []bool         // per block of e.Blocks
	left    int            // blocks not yet written
	ready   bool           // complete, closed, metadata set: only the rename is left
	ours    scan.FileStat  // once ready: its stat after the last change
	placed  *scan.FileStat // once renamed: what the stat cache may record (placedStat)
}

// StartScatterRestore prepares to restore snapshot id (manifest m, with
// its block lists expanded, of state) into o.DataDir while its blocks
// arrive. It answers nil, nil when the scatter does not apply and the
// caller should Restore once the blocks are local: when o.Only is set, or
// DATA_DIR holds anything (then files may be reused or need a backup,
// which Restore does). Otherwise it creates DATA_DIR and the snapshot's
// directories and writes the restore marker; the caller must end with
// Finish or Abort.
func StartScatterRestore(ctx context.Context, r *archive.Repository, id format.ID, m *format.Manifest, o Options) (*ScatterRestore, error) {
	if o.DataDir == "" {
		return nil, datadir.ErrNoDataDir
	}
	if !o.Only.Empty() || !ScatterFits(m) {
		return nil, nil
	}
	root, err := filepath.Abs(o.DataDir)
	if err != nil {
		return nil, err
	}
	if err := datadir.CheckDataDir(o.DataDir, r.OwnedPaths(o.CacheDir)...); err != nil {
		return nil, err
	}
	if empty, _, err := emptyDataDir(root); err != nil || !empty {
		return nil, err
	}
	s := &ScatterRestore{r: r, id: id, state: m.State, o: o, root: root, target: restoreModes(m.Entries, o.KeepSetuid),
		where: map[format.ID][]placement{}, res: Result{Snapshot: id}}
	s.fds.max = maxScatterFiles
	if err := s.plan(); err != nil {
		return nil, err
	}
	if s.created, err = firstMissing(root); err != nil {
		return nil, err
	}
	if err := prepareRoot(root); err != nil {
		return nil, err
	}
	// DATA_DIR is held until Finish or Abort (invariant 8), from before
	// the restore marker is written, which another restore of it writes
	// too. Busy, it is not waited for: the scatter does not apply, and the
	// restore after the pull waits (--lock-wait) or reports the holder. A
	// DATA_DIR created just now is left then: the holder may have made it.
	if s.lock, err = datadir.LockDataDir(ctx, root, 0); err != nil {
		return nil, nil
	}
	// Checked again under the lock: another restore may have filled it.
	empty, temps, err := emptyDataDir(root)
	if err != nil || !empty {
		s.lock.Unlock()
		return nil, err
	}
	// The marker before the first directory is made: from then on, a
	// kill leaves an interrupted restore that status reports.
	s.marker = restoreMarkerPath(o.CacheDir, root)
	if s.marker != "" {
		if old, err := os.ReadFile(s.marker); err == nil {
			s.oldMark, s.res.Resumed = old, true
		}
	}
	if err := writeMarker(s.marker, id); err != nil {
		s.marker = ""
		s.Abort()
		return nil, fmt.Errorf("record restore in %s: %w", o.CacheDir, err)
	}
	// A restore killed earlier may have left temporary files (the scan
	// does not count them); they are removed as Restore removes them.
	err = removeTemps(root, temps)
	if err == nil {
		err = makeDirs(root, s.target)
	}
	if err != nil {
		s.Abort()
		return nil, err
	}
	return s, nil
}

// emptyDataDir reports whether root is missing or an empty directory, and
// the temporary files of an interrupted restore it holds (which do not
// count).
func emptyDataDir(root string) (bool, []string, error) {
	st, err := os.Lstat(root)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil, nil
	}
	if err != nil || !st.IsDir() {
		return false, nil, nil // Restore reports what is wrong
	}
	found, temps, err := scan.ScanTreeTemps(root, scan.Filter{}, func(string) {})
	if err != nil {
		return false, nil, nil
	}
	return len(found) == 0, temps, nil
}

// firstMissing returns the outermost of root and its parents that does
// not exist, or "" when root exists.
func firstMissing(root string) (string, error) {
	missing := ""
	for p := root; ; p = filepath.Dir(p) {
		_, err := os.Lstat(p)
		if err == nil {
			return missing, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("DATA_DIR %s: %w", root, files.MapFSError(err))
		}
		missing = p
		if filepath.Dir(p) == p {
			return missing, nil
		}
	}
}

// maxScatterBlocks bounds the block references a scatter plans: it holds
// every file's blocks expanded and a map from block to where it goes,
// about 60 bytes a reference. A snapshot that names more (128 GiB of
// files at the default block size, or a list block named a million
// times) is pulled, then restored, which holds the blocks of the files
// it is writing only.
const maxScatterBlocks = 2 << 20

// ScatterFits reports whether a scatter may restore m as its blocks
// arrive (StartScatterRestore): whether m names at most
// maxScatterBlocks blocks, counted without expanding its lists.
func ScatterFits(m *format.Manifest) bool {
	n := 0
	for i := range m.Entries {
		if n += m.Entries[i].BlockCount(); n > maxScatterBlocks {
			return false
		}
	}
	return true
}

// plan records where every block of every file goes.
func (s *ScatterRestore) plan() error {
	for i := range s.target {
		e := &s.target[i]
		if e.Type != format.TypeFile {
			continue
		}
		if len(e.Lists) > 0 && len(e.Blocks) == 0 {
			return fmt.Errorf("snapshot %s: %s has no block list (expand its lists first)", s.id.Short(), e.Path)
		}
		n := int32(len(s.files))
		sf := &scatterFile{e: e, path: filepath.Join(s.root, filepath.FromSlash(e.Path)), written: make([]bool, len(e.Blocks)), left: len(e.Blocks)}
		s.files = append(s.files, sf)
		var off int64
		for j, b := range e.Blocks {
			s.where[b.ID] = append(s.where[b.ID], placement{file: n, block: int32(j), off: off})
			off += int64(b.Size)
		}
	}
	return nil
}

// Wants reports whether the snapshot uses the block: the caller may skip
// Write for blocks it does not.
func (s *ScatterRestore) Wants(id format.ID) bool {
	_, ok := s.where[id]
	return ok
}

// Write puts one block into every file that uses it, at its offsets.
// raw must be the block's plaintext verified against id (as
// Repository.ReadPackBlocks hands it): Write does not hash it again, which
// is the point. Blocks of zeros become holes. Safe for concurrent use; raw
// is not kept after Write returns.
func (s *ScatterRestore) Write(id format.ID, raw []byte) error {
	places := s.where[id]
	if len(places) == 0 {
		return nil
	}
	zero := format.AllZero(raw)
	for _, pl := range places {
		sf := s.files[pl.file]
		if err := s.writeAt(sf, pl, raw, zero); err != nil {
			return fmt.Errorf("restore %s: %w", sf.e.Path, err)
		}
	}
	return nil
}

func (s *ScatterRestore) writeAt(sf *scatterFile, pl placement, raw []byte, zero bool) error {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	if sf.written[pl.block] || sf.ready {
		return nil
	}
	if len(raw) != int(sf.e.Blocks[pl.block].Size) {
		return fmt.Errorf("block %s is %d bytes, the snapshot says %d: %w", sf.e.Blocks[pl.block].ID.Short(), len(raw), sf.e.Blocks[pl.block].Size, format.ErrCorrupt)
	}
	if !zero {
		f, err := s.open(sf)
		if err != nil {
			return err
		}
		if _, err := f.WriteAt(raw, pl.off); err != nil {
			return files.MapFSError(err)
		}
	}
	sf.written[pl.block] = true
	sf.left--
	if sf.left == 0 {
		return s.complete(sf)
	}
	return nil
}

// open returns the file's temporary file, creating it the first time and
// reopening it after the cache closed it. sf.mu is held.
func (s *ScatterRestore) open(sf *scatterFile) (*os.File, error) {
	if sf.f != nil {
		s.fds.touch(sf)
		return sf.f, nil
	}
	var f *os.File
	var err error
	if sf.tmp == "" {
		tmp := filepath.Join(filepath.Dir(sf.path), format.RestoreTmpPrefix+files.RandomSuffix())
		if f, err = os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
			sf.tmp = tmp
		}
	} else {
		f, err = os.OpenFile(sf.tmp, os.O_RDWR, 0)
	}
	if err != nil {
		return nil, files.MapFSError(err)
	}
	sf.f = f
	s.fds.add(sf)
	return f, nil
}

// complete ends a file whose blocks are all written: its size (a trailing
// hole), then its metadata. Only the rename is left, for Finish. sf.mu is
// held.
func (s *ScatterRestore) complete(sf *scatterFile) error {
	f, err := s.open(sf) // a file of holes only has no temporary file yet
	if err != nil {
		return err
	}
	s.fds.remove(sf)
	sf.f = nil
	if err := f.Truncate(sf.e.Size); err != nil {
		f.Close()
		return files.MapFSError(err)
	}
	if err := sf.finishMeta(f); err != nil {
		return err
	}
	sf.ready = true
	s.startWriteback(sf.tmp)
	return nil
}

// maxWritebacks bounds the goroutines starting writebacks, as the
// directory backend bounds its own.
const maxWritebacks = 2

// startWriteback has the kernel start writing a completed file to disk
// while the pull goes on, as the directory backend does for packs: the
// local store and DATA_DIR usually share a file system, and the syncfs(2)
// before the pull moves its ref must wait for every dirty page on it,
// these files' too. Only a hint, on at most maxWritebacks
// goroutines; it makes nothing durable and its errors do not matter.
func (s *ScatterRestore) startWriteback(p string) {
	if s.writebacks.Add(1) > maxWritebacks {
		s.writebacks.Add(-1)
		return
	}
	go func() {
		defer s.writebacks.Add(-1)
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return
		}
		_ = unix.SyncFileRange(fd, 0, 0, unix.SYNC_FILE_RANGE_WRITE)
		unix.Close(fd)
	}()
}

// Finish completes the restore once every block is in the local store and
// the snapshot is recorded there: blocks that did not come through Write
// (the store had them already) are read from the local packs, verified,
// as Restore reads them; every file is renamed into place, symlinks are
// made, directories get their modes and mtimes, the stat cache is
// recorded (so the next save or restore reads nothing), and the marker is
// removed. On error DATA_DIR is left as an interrupted restore, which
// restore completes.
func (s *ScatterRestore) Finish(ctx context.Context) (*Result, error) {
	defer s.lock.Unlock()
	s.renamed.Store(true)
	s.fds.closeAll()
	sink := progress.Or(s.o.Progress)
	files, total := restoreTotals(s.target)
	sink.Phase("restore", files, total)
	oldCache := statcache.LoadStatCache(s.o.CacheDir, s.root)
	packs := newPackFiles(s.r)
	defer packs.Close()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	next := 0
	for i := range s.target {
		e := &s.target[i]
		switch e.Type {
		case format.TypeSymlink:
			g.Go(func() error {
				return writeSymlink(filepath.Join(s.root, filepath.FromSlash(e.Path)), e)
			})
		case format.TypeFile:
			sf := s.files[next]
			next++
			g.Go(func() error {
				err := s.finishFile(gctx, sf, packs)
				sink.Add(1, sf.e.Size)
				return err
			})
			s.res.FilesWritten++
			s.res.BytesWritten += e.Size
		}
	}
	if err := g.Wait(); err != nil {
		s.removeTemps()
		return nil, err
	}
	if err := finishDirs(s.root, s.target); err != nil {
		return nil, err
	}
	vouched := make([]*scan.FileStat, len(s.target))
	next = 0
	for i := range s.target {
		if s.target[i].Type == format.TypeFile {
			vouched[i] = s.files[next].placed
			next++
		}
	}
	cache := statTree(s.target, nil, 0, oldCache, vouched)
	cache.Snapshot, cache.State = s.id, s.state
	_ = statcache.SaveStatCache(s.o.CacheDir, s.root, cache)
	if s.marker != "" {
		_ = os.Remove(s.marker)
	}
	res := s.res
	return &res, nil
}

// finishFile writes what Write did not bring (blocks the local store had
// already) and renames the file into place.
func (s *ScatterRestore) finishFile(ctx context.Context, sf *scatterFile, packs *packFiles) error {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	if !sf.ready {
		if err := s.fill(ctx, sf, packs); err != nil {
			return fmt.Errorf("restore %s: %w", sf.e.Path, err)
		}
	}
	if err := os.Rename(sf.tmp, sf.path); err != nil {
		return fmt.Errorf("restore %s: %w", sf.e.Path, files.MapFSError(err))
	}
	sf.tmp = ""
	if testhook.Placed != nil {
		testhook.Placed(sf.path)
	}
	sf.placed = placedStat(sf.path, sf.ours)
	return nil
}

// fill writes the blocks Write did not bring from the local store. The
// blocks written already are passed to fillSegments as content the file
// holds (as a reflinked file would), so only the rest are read.
func (s *ScatterRestore) fill(ctx context.Context, sf *scatterFile, packs *packFiles) error {
	f, err := s.open(sf)
	if err != nil {
		return err
	}
	s.fds.remove(sf)
	sf.f = nil
	have := make(map[int64]format.ID)
	var off int64
	for j, b := range sf.e.Blocks {
		if sf.written[j] {
			have[off] = b.ID
		}
		off += int64(b.Size)
	}
	err = fillSegments(ctx, s.r, f, nil, sf.e, packs, have, true)
	if err == nil {
		err = f.Truncate(sf.e.Size)
	}
	if err != nil {
		f.Close()
		return files.MapFSError(err)
	}
	if err := sf.finishMeta(f); err != nil {
		return err
	}
	sf.ready = true
	return nil
}

// finishMeta sets the complete file's metadata, takes its stat from f
// after that last change (placedStat compares it after the rename), and
// closes f. sf.mu is held.
func (sf *scatterFile) finishMeta(f *os.File) error {
	if err := setMeta(sf.tmp, sf.e, false); err != nil {
		f.Close()
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	sf.ours = scan.StatOf(fi)
	if err := f.Close(); err != nil {
		return files.MapFSError(err)
	}
	return nil
}

// Abort ends a scatter restore that will not be finished (the pull
// failed). Before any file reached its final name it undoes everything:
// temporary files, the directories it made, DATA_DIR if it created it,
// and the marker, so DATA_DIR is as it was. Once Finish has begun (the
// snapshot is local) it removes only temporary files and keeps the
// marker: an interrupted restore, which `restore` completes. Abort after
// a successful Finish does nothing, so callers may defer it.
func (s *ScatterRestore) Abort() {
	s.fds.closeAll()
	s.removeTemps()
	if !s.renamed.Load() {
		s.undo()
	}
	s.lock.Unlock()
}

// removeTemps deletes the temporary files not renamed into place.
func (s *ScatterRestore) removeTemps() {
	for _, sf := range s.files {
		if sf.mu.TryLock() {
			if sf.tmp != "" {
				os.Remove(sf.tmp)
				sf.tmp = ""
			}
			sf.mu.Unlock()
		}
	}
}

// undo removes the directories StartScatterRestore made (they were not
// there: DATA_DIR was empty) and puts the marker back as it was.
func (s *ScatterRestore) undo() {
	for i := len(s.target) - 1; i >= 0; i-- {
		if s.target[i].Type == format.TypeDir {
			os.Remove(filepath.Join(s.root, filepath.FromSlash(s.target[i].Path)))
		}
	}
	if s.created != "" {
		for p := s.root; ; p = filepath.Dir(p) {
			if os.Remove(p) != nil || p == s.created || filepath.Dir(p) == p {
				break
			}
		}
	}
	if s.marker == "" {
		return
	}
	if s.oldMark != nil {
		_ = files.WriteFileAtomic(s.marker, s.oldMark)
	} else {
		os.Remove(s.marker)
	}
}

// fdCache is a small LRU of the open temporary files of a scatter
// restore, so that file descriptors stay bounded whatever the number of
// files. A file whose lock is held (being written) is never closed under
// its writer; the cache may then briefly hold more than max.
type fdCache struct {
	mu    sync.Mutex
	max   int
	clock uint64
	open  map[*scatterFile]uint64 // last use
}

// add records a newly opened file (its mu held) and closes the least
// recently used idle files beyond max.
func (c *fdCache) add(sf *scatterFile) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open == nil {
		c.open = map[*scatterFile]uint64{}
	}
	c.clock++
	c.open[sf] = c.clock
	if len(c.open) <= c.max {
		return
	}
	byAge := make([]*scatterFile, 0, len(c.open))
	for v := range c.open {
		if v != sf {
			byAge = append(byAge, v)
		}
	}
	slices.SortFunc(byAge, func(a, b *scatterFile) int { return cmp.Compare(c.open[a], c.open[b]) })
	for _, v := range byAge {
		if len(c.open) <= c.max {
			return
		}
		// TryLock: a file being written (whose writer may wait on this
		// cache) is skipped rather than waited for, so no lock cycle.
		if !v.mu.TryLock() {
			continue
		}
		if v.f != nil {
			v.f.Close()
			v.f = nil
		}
		delete(c.open, v)
		v.mu.Unlock()
	}
}

func (c *fdCache) touch(sf *scatterFile) {
	c.mu.Lock()
	c.clock++
	if _, ok := c.open[sf]; ok {
		c.open[sf] = c.clock
	}
	c.mu.Unlock()
}

func (c *fdCache) remove(sf *scatterFile) {
	c.mu.Lock()
	delete(c.open, sf)
	c.mu.Unlock()
}

// closeAll closes every open file, once nothing writes any more.
func (c *fdCache) closeAll() {
	c.mu.Lock()
	open := make([]*scatterFile, 0, len(c.open))
	for sf := range c.open {
		open = append(open, sf)
	}
	clear(c.open)
	c.mu.Unlock()
	for _, sf := range open {
		sf.mu.Lock()
		if sf.f != nil {
			sf.f.Close()
			sf.f = nil
		}
		sf.mu.Unlock()
	}
}
