package restorer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/saver"
	"github.com/statepack/statepack/archive/scan"
	"github.com/statepack/statepack/archive/statcache"
	"github.com/statepack/statepack/internal/files"
	"github.com/statepack/statepack/internal/progress"
)

// applyTree changes root into the snapshot's tree and returns the stat
// cache that describes the result.
func applyTree(ctx context.Context, r *archive.Repository, root string, m *format.Manifest, lists *format.BlockLists, o Options, res *Result, pre *treeScan) (*statcache.StatCache, error) {
	sink := progress.Or(o.Progress)
	target := selectEntries(m.Entries, o.Only)
	var found []scan.Scanned
	if pre != nil {
		if err := removeTemps(root, pre.temps); err != nil {
			return nil, err
		}
		found = pre.found
	} else {
		if err := removeStaleTemps(root); err != nil {
			return nil, err
		}
		var err error
		if found, err = scan.ScanTree(root, o.Only, func(string) {}); err != nil {
			return nil, err
		}
	}
	oldCache := statcache.LoadStatCache(o.CacheDir, root)
	cur := make(map[string]*scan.Scanned, len(found))
	for i := range found {
		cur[found[i].Path] = &found[i]
	}
	want := make(map[string]*format.Entry, len(target))
	for i := range target {
		want[target[i].Path] = &target[i]
	}
	if err := removeExtra(root, found, want, res); err != nil {
		return nil, err
	}
	if err := makeDirs(root, target); err != nil {
		return nil, err
	}
	files, total := restoreTotals(target)
	sink.Phase("restore", files, total)
	vouched, err := writeFiles(ctx, r, root, target, lists, cur, oldCache, sink, res)
	if err != nil {
		return nil, err
	}
	if err := finishDirs(root, target); err != nil {
		return nil, err
	}
	cache := statTree(target, lists, int64(r.Config().Chunker.Min), oldCache, vouched)
	if o.Only.Empty() {
		cache.Snapshot, cache.State = o.Snapshot, m.State
	} else {
		// DATA_DIR is now no one snapshot; what it was before (which a
		// backup just made may be) is recorded for status alone.
		cache.RecordPartial(oldCache, statcache.PartialRestore{Snapshot: o.Snapshot, State: m.State,
			Include: slices.Clone(o.Only.Include), Exclude: slices.Clone(o.Only.Exclude)})
	}
	return cache, nil
}

// restoreTotals is what the restore phase counts: the regular files of
// target (each reported done once, written or found identical; not
// directories or symlinks) and their size.
func restoreTotals(target []format.Entry) (files, bytes int64) {
	for i := range target {
		if target[i].Type == format.TypeFile {
			files++
			bytes += target[i].Size
		}
	}
	return files, bytes
}

// removeTemps deletes the temporary files of a killed restore that a walk
// of root found (scan.ScanTreeTemps), making their directories writable first.
func removeTemps(root string, temps []string) error {
	for _, rel := range temps {
		p := filepath.Join(root, filepath.FromSlash(rel))
		makeWritable(filepath.Dir(p))
		if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
			makeWritable(p)
		}
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("remove %s: %w", rel, files.MapFSError(err))
		}
	}
	return nil
}

// removeStaleTemps deletes the temporary files of a restore that was
// killed. scan.ScanTree skips them (save must not store them), so they are
// never extra paths; left alone they would stay in DATA_DIR for good,
// where an application sees them (LocalStack: as S3 objects). For a
// restore that walks DATA_DIR anyway, the walk's temps go to removeTemps.
func removeStaleTemps(root string) error {
	_, temps, err := scan.ScanTreeTemps(root, scan.Filter{}, func(string) {})
	if err != nil {
		return err
	}
	return removeTemps(root, temps)
}

// removeExtra deletes what the snapshot does not have, and what has the
// wrong type, deepest first.
func removeExtra(root string, found []scan.Scanned, want map[string]*format.Entry, res *Result) error {
	for i := len(found) - 1; i >= 0; i-- {
		e := &found[i]
		w := want[e.Path]
		if w != nil && w.Type == e.Type {
			continue
		}
		p := filepath.Join(root, filepath.FromSlash(e.Path))
		// Removing needs write access to the parent, whatever the type:
		// a file in a read-only directory of ours is no obstacle.
		makeWritable(filepath.Dir(p))
		var err error
		if e.Type == format.TypeDir {
			makeWritable(p)
			err = removeDir(p, e.Path) // its walked entries went first
		} else if err = os.Remove(p); errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
		if err != nil {
			return err
		}
		res.Removed++
	}
	return nil
}

// removeDir removes the directory p (rel in DATA_DIR) once the entries the
// walk found in it are gone. What is left is what the walk skips, so no
// backup holds it: a FIFO, socket or device node, which hold no data and
// go; or a name that is not UTF-8 or is reserved for restore's temporary
// files, which restore refuses to delete (invariant 9).
func removeDir(p, rel string) error {
	err := os.Remove(p)
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	left, rerr := os.ReadDir(p)
	if rerr != nil {
		return fmt.Errorf("remove %s: %w", rel, files.MapFSError(err))
	}
	for _, d := range left {
		if d.Type()&(fs.ModeNamedPipe|fs.ModeSocket|fs.ModeDevice) == 0 {
			return fmt.Errorf("remove %s: it holds %q, which save skips, so no backup has it: move it out of DATA_DIR and restore again", rel, d.Name())
		}
		if err := os.Remove(filepath.Join(p, d.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", rel, files.MapFSError(err))
		}
	}
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("remove %s: %w", rel, files.MapFSError(err))
	}
	return nil
}

// makeWritable gives the owner write access to a directory so restore can
// change its entries; finishDirs sets the final mode afterwards.
func makeWritable(dir string) {
	if st, err := os.Lstat(dir); err == nil && st.IsDir() {
		makeWritableAs(dir, st)
	}
}

// makeWritableAs is makeWritable for a directory already lstat'ed as st.
func makeWritableAs(dir string, st fs.FileInfo) {
	if st.Mode().Perm()&0o700 != 0o700 {
		_ = os.Chmod(dir, st.Mode().Perm()|0o700)
	}
}

// makeDirs creates the snapshot's directories, parents first. Each one is
// checked to be a real directory, never a symlink, so no later write can
// leave DATA_DIR (invariant 5).
func makeDirs(root string, target []format.Entry) error {
	for _, e := range target {
		if e.Type != format.TypeDir {
			continue
		}
		p := filepath.Join(root, filepath.FromSlash(e.Path))
		st, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(p, 0o700); err != nil {
				return fmt.Errorf("create %s: %w", e.Path, files.MapFSError(err))
			}
		case err != nil:
			return fmt.Errorf("stat %s: %w", e.Path, files.MapFSError(err))
		case !st.IsDir():
			return fmt.Errorf("%s is in the way of a directory", e.Path)
		default:
			makeWritableAs(p, st)
		}
	}
	makeWritable(root)
	return nil
}

// finishDirs sets directory modes, owners and mtimes deepest first, after
// their content, so writing children does not disturb them. A directory
// that already has them (every one, in a no-op restore) costs one lstat,
// not a chown, a chmod and a utimes.
func finishDirs(root string, target []format.Entry) error {
	for i := len(target) - 1; i >= 0; i-- {
		e := &target[i]
		if e.Type != format.TypeDir {
			continue
		}
		p := filepath.Join(root, filepath.FromSlash(e.Path))
		if fi, err := os.Lstat(p); err == nil && fi.IsDir() && statMatches(e, scan.StatOf(fi)) {
			continue
		}
		if err := setMeta(p, e, false); err != nil {
			return err
		}
	}
	return nil
}

// restoreModes returns entries as restore makes them: unless keepSetuid,
// files lose their setuid and setgid bits, as tar and restic restore
// them by default. A snapshot comes from a remote anyone with write
// access to it controls, and restored as root a setuid file owned by
// root is a root shell for whoever runs it. Directories keep theirs
// (setgid on a directory only passes its group on to new files). The
// entries are copied when one changes, never modified in place.
func restoreModes(entries []format.Entry, keepSetuid bool) []format.Entry {
	if keepSetuid {
		return entries
	}
	var out []format.Entry
	for i := range entries {
		e := &entries[i]
		if e.Type != format.TypeFile || e.Mode&0o6000 == 0 {
			continue
		}
		if out == nil {
			out = slices.Clone(entries)
		}
		out[i].Mode &^= 0o6000
	}
	if out == nil {
		return entries
	}
	return out
}

// statMatches reports whether st has the mode, mtime and owner of e.
func statMatches(e *format.Entry, st scan.FileStat) bool {
	return st.Mode == e.Mode&0o7777 && st.MTime == e.MTime && st.UID == e.UID && st.GID == e.GID
}

func setMeta(p string, e *format.Entry, link bool) error {
	if os.Geteuid() == 0 {
		if err := os.Lchown(p, int(e.UID), int(e.GID)); err != nil {
			return fmt.Errorf("chown %s: %w", e.Path, err)
		}
	}
	if !link {
		if err := unix.Chmod(p, e.Mode&0o7777); err != nil {
			return fmt.Errorf("chmod %s: %w", e.Path, err)
		}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(e.MTime), unix.NsecToTimespec(e.MTime)}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set mtime of %s: %w", e.Path, err)
	}
	return nil
}

// writeFiles writes files and symlinks, four at a time.
//
// It returns, per entry of target, the stat the stat cache may record
// for it (invariant 8), nil where it may not: a file restore wrote and
// found unchanged after moving it into place (placedStat), or a file
// already identical, metadata included, whose stat from the walk the
// old cache vouched for. A file whose metadata restore set in place is
// not vouched for: setting its mtime would hide a write made meanwhile.
func writeFiles(ctx context.Context, r *archive.Repository, root string, target []format.Entry, lists *format.BlockLists, cur map[string]*scan.Scanned, cache *statcache.StatCache, sink progress.Sink, res *Result) ([]*scan.FileStat, error) {
	packs := newPackFiles(r)
	packs.lists = lists
	defer packs.Close()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	var written, skipped atomic.Int64
	var bytes atomic.Int64
	vouched := make([]*scan.FileStat, len(target))
	for _, i := range SpreadByDir(target) {
		e := &target[i]
		g.Go(func() error {
			p := filepath.Join(root, filepath.FromSlash(e.Path))
			c := cur[e.Path]
			var err error
			switch {
			case identical(e, c, cache):
				skipped.Add(1)
				if metaMatches(e, c) {
					vouched[i] = &c.Stat
				}
				err = fixMeta(p, e, c)
			case e.Type == format.TypeSymlink:
				err = writeSymlink(p, e)
			default:
				var over *scan.FileStat
				if c != nil && c.Type == format.TypeFile {
					over = &c.Stat
				}
				vouched[i], err = writeFile(gctx, r, p, e, packs, oldBlocks(e, c, cache), over)
				written.Add(1)
				bytes.Add(e.Size)
			}
			if e.Type == format.TypeFile {
				sink.Add(1, e.Size)
			}
			return err
		})
	}
	err := g.Wait()
	res.FilesWritten, res.FilesSkipped, res.BytesWritten = int(written.Load()), int(skipped.Load()), bytes.Load()
	res.BytesReused = packs.reused.Load()
	return vouched, err
}

// SpreadByDir returns the indices of target's files and symlinks in an
// order that takes one from each directory in turn. Creating a file locks
// its directory, and on a file system that has just freed many inodes
// (ext4 skips recently freed ones) a create costs up to a millisecond
// inside that lock: workers writing neighbouring files of one directory
// wait for each other, while workers in different directories create at
// once.
func SpreadByDir(target []format.Entry) []int {
	var groups [][]int
	at := map[string]int{}
	for i := range target {
		if target[i].Type == format.TypeDir {
			continue
		}
		dir := path.Dir(target[i].Path)
		g, ok := at[dir]
		if !ok {
			g = len(groups)
			at[dir] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	order := make([]int, 0, len(target))
	for round := 0; len(groups) > 0; round++ {
		live := groups[:0]
		for _, g := range groups {
			order = append(order, g[round])
			if round+1 < len(g) {
				live = append(live, g)
			}
		}
		groups = live
	}
	return order
}

// identical reports whether the path on disk already has the entry's
// content: the same symlink target, or a file the stat cache vouches for
// with the same blocks.
func identical(e *format.Entry, c *scan.Scanned, cache *statcache.StatCache) bool {
	if c == nil || c.Type != e.Type {
		return false
	}
	if e.Type == format.TypeSymlink {
		return c.Target == e.Target
	}
	return cache.Holds(e, c.Stat)
}

func fixMeta(p string, e *format.Entry, c *scan.Scanned) error {
	if metaMatches(e, c) {
		return nil
	}
	return setMeta(p, e, e.Type == format.TypeSymlink)
}

// metaMatches reports whether the path on disk, as the walk found it,
// has the entry's mode, mtime and owner.
func metaMatches(e *format.Entry, c *scan.Scanned) bool { return statMatches(e, c.Stat) }

func writeSymlink(p string, e *format.Entry) error {
	tmp := filepath.Join(filepath.Dir(p), format.RestoreTmpPrefix+files.RandomSuffix())
	if err := os.Symlink(e.Target, tmp); err != nil {
		return fmt.Errorf("create symlink %s: %w", e.Path, files.MapFSError(err))
	}
	if err := setMeta(tmp, e, true); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("create symlink %s: %w", e.Path, files.MapFSError(err))
	}
	return nil
}

// statTree records the restored files' stat data with their blocks, so the
// next save reads none of them and the next restore rewrites none.
// vouched[i] is the stat of target[i] restore can vouch for (writeFiles,
// ScatterRestore.Finish), nil where it cannot: such a file is left out,
// and read again by the next save. Files whose blocks are in list blocks
// (lists, nil when expanded) have them expanded for the cache while they
// are cut as this repository cuts (blocks of minBlock bytes or more but
// the last: the cache then costs a fraction of what restore wrote and
// verified), or up to statCacheBlocks in all. A file beyond both, such
// as one list block of tiny blocks named a million times, is recorded by
// its list blocks alone: the next restore still skips it
// (StatCache.Holds), the next save reads it again. The cache then costs
// what restore did, not what a snapshot claims.
func statTree(target []format.Entry, lists *format.BlockLists, minBlock int64, old *statcache.StatCache, vouched []*scan.FileStat) *statcache.StatCache {
	c := &statcache.StatCache{Files: map[string]*statcache.StatEntry{}}
	if old != nil {
		for p, e := range old.Files {
			c.Files[p] = e // entries outside --only stay valid
		}
	}
	var newest int64
	budget := statCacheBlocks
	for i := range target {
		e := &target[i]
		if e.Type != format.TypeFile {
			continue
		}
		st := vouched[i]
		if st == nil {
			delete(c.Files, e.Path)
			continue
		}
		limit := budget
		if minBlock > 0 {
			limit = max(limit, int(e.Size/minBlock)+1)
		}
		blocks := lists.Expanded(e, limit)
		budget = max(0, budget-len(blocks))
		c.Files[e.Path] = &statcache.StatEntry{Size: st.Size, MTime: st.MTime, CTime: st.CTime, Ino: st.Ino, Blocks: blocks, Lists: e.Lists}
		newest = max(newest, st.CTime)
	}
	// Files restore just wrote have a ctime of about now. Waiting out the
	// racy window (at most a tenth of a second, and only after writing)
	// lets the cache vouch for them: any later change gets a later ctime
	// (and an mtime other than the snapshot's, which placedStat checked).
	if wait := time.Duration(newest + statcache.RacyWindow - time.Now().UnixNano()); wait > 0 && wait <= time.Duration(statcache.RacyWindow) {
		time.Sleep(wait + time.Millisecond)
	}
	c.Recorded = time.Now().UnixNano()
	return c
}

// placedStat returns the stat of p when p is still the file restore
// wrote, whose stat was ours when it was finished (taken from its
// descriptor after the last write and the last metadata change): the
// same inode, size and mtime. Its ctime may have moved on: the rename
// into place sets it. A write after the rename sets the mtime to the
// time of writing, not the snapshot's, so it cannot go unseen; the stat
// returned (not ours) is what the cache records, so a write after this
// check shows as a changed stat. nil when p is not the file restore
// wrote, or was changed since.
func placedStat(p string, ours scan.FileStat) *scan.FileStat {
	fi, err := os.Lstat(p)
	if err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	st := scan.StatOf(fi)
	if st.Ino != ours.Ino || st.Size != ours.Size || st.MTime != ours.MTime || st.Mode != ours.Mode || st.CTime < ours.CTime {
		return nil
	}
	return &st
}

// hashFile chunks and hashes a file without storing it, for diff.
func hashFile(ctx context.Context, r *archive.Repository, root, rel string, sp *saver.Splitters) ([]format.BlockRef, error) {
	f, err := os.Open(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", rel, files.MapFSError(err))
	}
	defer f.Close()
	ck, err := sp.ForFile(f) // cut as save cuts, or equal files would differ
	if err != nil {
		return nil, err
	}
	ck.Reset(f)
	var out []format.BlockRef
	for {
		data, err := ck.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", rel, err)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		out = append(out, format.BlockRef{ID: r.BlockID(data), Size: uint32(len(data))})
	}
}

// statCacheBlocks bounds the blocks of list files one restore records in
// the stat cache (36 bytes each in memory, about as many on disk): a
// million blocks are 64 GiB of files at the default block size.
const statCacheBlocks = 1 << 20
