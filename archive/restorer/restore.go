package restorer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"time"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/datadir"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/saver"
	"github.com/statepack/statepack/archive/scan"
	"github.com/statepack/statepack/archive/statcache"
	"github.com/statepack/statepack/internal/files"
	"github.com/statepack/statepack/internal/progress"
)

// Options describe one restore.
type Options struct {
	DataDir     string
	Snapshot    format.ID
	Only        scan.Filter // when not empty, only matching paths are touched
	NoBackup    bool
	BackupState string // state that receives unsaved DATA_DIR content
	CacheDir    string
	Host        string
	User        string
	Tool        string
	Progress    progress.Sink
	LockWait    time.Duration
	// Force restores into a non-empty DATA_DIR that statepack has no
	// record of (see CheckRestore); its content is still saved first
	// unless NoBackup.
	Force bool
	// KeepSetuid keeps the setuid and setgid bits of files; by default
	// restore clears them, as tar and restic do (see restoreModes).
	KeepSetuid bool
}

// DefaultBackupState receives what restore saves before overwriting.
const DefaultBackupState = "restore-backup"

// Result reports what a restore did.
type Result struct {
	Snapshot     format.ID
	Backup       *saver.Result // set when unsaved content was saved first
	FilesWritten int
	BytesWritten int64
	FilesSkipped int   // already identical
	BytesReused  int64 // of BytesWritten, copied from the files they replace
	Removed      int   // paths not in the snapshot
	Resumed      bool
}

// Restore makes DataDir exactly the snapshot (invariant 3), after saving
// content that no snapshot holds yet (invariant 4).
func Restore(ctx context.Context, r *archive.Repository, o Options) (*Result, error) {
	root, err := filepath.Abs(o.DataDir)
	if o.DataDir == "" {
		return nil, datadir.ErrNoDataDir
	}
	if err != nil {
		return nil, err
	}
	if err := datadir.CheckDataDir(o.DataDir, r.OwnedPaths(o.CacheDir)...); err != nil {
		return nil, err
	}
	// DATA_DIR is locked before it is walked (invariant 8). One that is
	// not there yet is created only once the snapshot checks (below), and
	// locked then.
	var dlock *datadir.DataDirLock
	if st, err := os.Stat(root); err == nil && st.IsDir() {
		if dlock, err = datadir.LockDataDir(ctx, root, o.LockWait); err != nil {
			return nil, err
		}
		defer dlock.Unlock()
	}
	lock, err := r.Lock(ctx, false, "restore", o.LockWait)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	// One walk of DATA_DIR serves the backup check and the restore (a
	// backup save walks again, and does not change what it walks). It, the
	// index and the manifest do not depend on one another, and are most of
	// a no-op restore (a CI cache hit): they run at once.
	walk := startScan(root, o.Only)
	known := statcache.LoadStatCache(o.CacheDir, root) // what DATA_DIR was when last saved or restored
	res, m, done := alreadyRestored(ctx, r, root, o, known, walk)
	if done {
		return res, nil
	}
	var lists *format.BlockLists
	m, lists, err = loadForRestore(ctx, r, o.Snapshot, m)
	if err == nil {
		m.Entries = restoreModes(m.Entries, o.KeepSetuid)
		err = prepareRoot(root)
	}
	pre, werr := walk.wait()
	if err != nil {
		return nil, err
	}
	if werr != nil {
		return nil, werr
	}
	if dlock == nil {
		// Created just now: another restore may have created it too,
		// and written it before this one got the lock.
		if dlock, err = datadir.LockDataDir(ctx, root, o.LockWait); err != nil {
			return nil, err
		}
		defer dlock.Unlock()
		known = statcache.LoadStatCache(o.CacheDir, root)
		if pre, err = startScan(root, o.Only).wait(); err != nil {
			return nil, err
		}
	}
	if err := guardUnknown(r, root, o, foundOf(pre)); err != nil {
		return nil, err
	}
	if pre != nil {
		pre.known = known
	}
	res = &Result{Snapshot: o.Snapshot}
	marker := restoreMarkerPath(o.CacheDir, root)
	if _, err := os.Stat(marker); err == nil {
		res.Resumed = true // the first attempt already saved what was there
	} else if !o.NoBackup {
		if res.Backup, err = backupIfChanged(ctx, r, root, o, o.Snapshot, m, lists, pre); err != nil {
			return nil, fmt.Errorf("save DATA_DIR before restoring (pass --no-backup to skip): %w", err)
		}
	}
	if err := writeMarker(marker, o.Snapshot); err != nil {
		return nil, backupNamed(fmt.Errorf("record restore in %s: %w", o.CacheDir, err), res.Backup)
	}
	cache, err := applyTree(ctx, r, root, m, lists, o, res, pre)
	if err != nil {
		return nil, backupNamed(err, res.Backup)
	}
	_ = statcache.SaveStatCache(o.CacheDir, root, cache)
	if marker != "" {
		_ = os.Remove(marker)
	}
	return res, nil
}

// RestoreError is a restore that failed after it saved DATA_DIR's
// previous content (invariant 4). DATA_DIR is then partly restored; the
// error names the backup, so that the user knows where that content is
// and how to get it back.
type RestoreError struct {
	Err    error
	State  string // the backup's state
	Backup format.ID
}

// Error implements error.
func (e *RestoreError) Error() string { return e.Err.Error() + "; " + e.Note() }

// Unwrap returns the error that stopped the restore.
func (e *RestoreError) Unwrap() error { return e.Err }

// Note says where DATA_DIR's previous content is.
func (e *RestoreError) Note() string {
	return fmt.Sprintf("DATA_DIR's previous content is saved as %s %s: `statepack restore %s` brings it back", e.State, e.Backup.Short(), e.Backup.Short())
}

// backupNamed makes err a *RestoreError naming backup, when one was made.
func backupNamed(err error, backup *saver.Result) error {
	if err == nil || backup == nil {
		return err
	}
	return &RestoreError{Err: err, State: backup.State, Backup: backup.Snapshot}
}

// alreadyRestored answers a restore of the snapshot DATA_DIR already is
// (a CI cache hit) without the index or the block lists: it holds when
// DATA_DIR's stat cache records that snapshot, no restore of it was
// interrupted, and the walk finds exactly the snapshot's paths, each with
// its type, mode, owner and mtime, each symlink with its target, and each
// file as the cache vouches for it (same stat, outside the racy window)
// with the snapshot's blocks or list blocks. Anything else, or an error,
// leaves the restore to the full path, which reports what is wrong; the
// snapshot, when it was loaded (unexpanded), is returned for that path.
func alreadyRestored(ctx context.Context, r *archive.Repository, root string, o Options, cache *statcache.StatCache, walk *pendingScan) (*Result, *format.Manifest, bool) {
	if !o.Only.Empty() || cache == nil || cache.Snapshot != o.Snapshot {
		return nil, nil, false
	}
	if _, err := os.Lstat(restoreMarkerPath(o.CacheDir, root)); err == nil {
		return nil, nil, false
	}
	m, err := r.LoadManifestUnexpanded(ctx, o.Snapshot)
	if err != nil {
		return nil, nil, false
	}
	m.Entries = restoreModes(m.Entries, o.KeepSetuid)
	pre, err := walk.wait()
	if err != nil || pre == nil || len(pre.temps) > 0 || len(pre.found) != len(m.Entries) {
		return nil, m, false
	}
	res := &Result{Snapshot: o.Snapshot}
	for i := range m.Entries {
		e, c := &m.Entries[i], &pre.found[i]
		if !sameAsRecorded(e, c, cache) {
			return nil, m, false
		}
		if e.Type != format.TypeDir {
			res.FilesSkipped++
		}
	}
	return res, m, true
}

// sameAsRecorded reports whether the walked path c is entry e of the
// snapshot the stat cache records, judged without reading the file.
func sameAsRecorded(e *format.Entry, c *scan.Scanned, cache *statcache.StatCache) bool {
	if c.Path != e.Path || c.Type != e.Type || !metaMatches(e, c) {
		return false
	}
	switch e.Type {
	case format.TypeSymlink:
		return c.Target == e.Target
	case format.TypeFile:
		return c.Size == e.Size && cache.Holds(e, c.Stat)
	}
	return true
}

// loadForRestore loads the index and, meanwhile, the snapshot unless m
// (unexpanded) is it already; then reads the snapshot's block lists (found
// through the index, verified) and makes sure every block is indexed
// before a byte is written. The lists are not expanded: each file's
// blocks are walked through them as it is written (BlockLists.Chunks),
// so that a snapshot naming one list block a million times costs what
// restore writes, not what the snapshot claims.
func loadForRestore(ctx context.Context, r *archive.Repository, id format.ID, m *format.Manifest) (*format.Manifest, *format.BlockLists, error) {
	indexed := make(chan error, 1)
	go func() {
		_, err := r.LoadIndex(ctx)
		indexed <- err
	}()
	var err error
	if m == nil {
		m, err = r.LoadManifestUnexpanded(ctx, id)
	}
	if ierr := <-indexed; ierr != nil {
		return nil, nil, ierr
	}
	if err != nil {
		return nil, nil, err
	}
	lists, err := r.ReadBlockLists(ctx, m)
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot %s on %s: %w", id.Short(), r.Location(), err)
	}
	if err := checkBlocks(r, id, m, lists); err != nil {
		return nil, nil, err
	}
	return m, lists, nil
}

// pendingScan is a walk of DATA_DIR under way.
type pendingScan struct {
	done chan struct{}
	scan *treeScan
	err  error
}

// startScan walks root on a goroutine of its own, unless only is set (a
// partial restore walks what it selects, later). A root not there yet
// scans as empty: prepareRoot creates it once the snapshot checks, so
// that a restore that fails leaves no DATA_DIR behind.
func startScan(root string, only scan.Filter) *pendingScan {
	p := &pendingScan{done: make(chan struct{})}
	if !only.Empty() {
		close(p.done)
		return p
	}
	go func() {
		defer close(p.done)
		if _, err := os.Lstat(root); errors.Is(err, os.ErrNotExist) {
			p.scan = &treeScan{}
			return
		}
		found, temps, err := scan.ScanTreeTemps(root, scan.Filter{}, func(string) {})
		p.scan, p.err = &treeScan{found: found, temps: temps}, err
	}()
	return p
}

// wait returns the scan (nil when none was made) once the walk is done.
func (p *pendingScan) wait() (*treeScan, error) {
	<-p.done
	if p.err != nil {
		return nil, p.err
	}
	return p.scan, nil
}

// checkBlocks makes sure every block is indexed before a byte is written.
func checkBlocks(r *archive.Repository, id format.ID, m *format.Manifest, lists *format.BlockLists) error {
	var err error
	lists.Each(m, func(e *format.Entry, b format.BlockRef) {
		if err == nil && !r.Index().Has(b.ID) {
			err = fmt.Errorf("snapshot %s is incomplete in %s: block %s of %s is missing; nothing was changed (pull it again, or run `statepack verify`)", id.Short(), r.Location(), b.ID.Short(), e.Path)
		}
	})
	return err
}

func prepareRoot(root string) error {
	st, err := os.Stat(root)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(root, 0o755); err != nil {
			return fmt.Errorf("create DATA_DIR %s: %w", root, files.MapFSError(err))
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("DATA_DIR %s: %w", root, files.MapFSError(err))
	}
	if !st.IsDir() {
		return fmt.Errorf("DATA_DIR %s is not a directory", root)
	}
	return nil
}

func restoreMarkerPath(cacheDir, root string) string {
	if cacheDir == "" {
		return ""
	}
	return statcache.StatCachePath(cacheDir, root) + ".restoring"
}

func writeMarker(p string, id format.ID) error {
	if p == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return files.WriteFileAtomic(p, []byte(id.String()+"\n"))
}

// InterruptedRestore reports the snapshot an unfinished restore into
// dataDir was writing, if any.
func InterruptedRestore(cacheDir, dataDir string) (format.ID, bool) {
	root, err := filepath.Abs(dataDir)
	if err != nil || cacheDir == "" {
		return format.ID{}, false
	}
	data, err := os.ReadFile(restoreMarkerPath(cacheDir, root))
	if err != nil {
		return format.ID{}, false
	}
	id, err := format.ParseID(string(data[:min(64, len(data))]))
	return id, err == nil
}

// backupIfChanged saves DATA_DIR as a version of the backup state unless
// what the restore would overwrite (the paths o.Only selects) is empty,
// already the snapshot being restored, or still the snapshot DATA_DIR was
// last saved as or restored from: then a snapshot holds all of it.
func backupIfChanged(ctx context.Context, r *archive.Repository, root string, o Options, id format.ID, m *format.Manifest, lists *format.BlockLists, pre *treeScan) (*saver.Result, error) {
	same, err := unchangedSinceKnown(ctx, r, root, o.CacheDir, o.Only, id, m, lists, pre)
	if err != nil || same {
		return nil, err
	}
	state := o.BackupState
	if state == "" {
		state = DefaultBackupState
	}
	so := saver.Options{DataDir: root, State: state, Message: "saved by restore of " + o.Snapshot.Short() + " before overwriting",
		CacheDir: o.CacheDir, Host: o.Host, User: o.User, Tool: o.Tool, Progress: o.Progress}
	res, entries, err := saver.SaveTree(ctx, r, root, so)
	if err != nil {
		return nil, err
	}
	backup := &format.Manifest{Version: format.FormatVersion, State: state, Message: so.Message, Created: time.Now().UTC(),
		Host: o.Host, User: o.User, Tool: o.Tool, Entries: entries}
	if err := saver.Commit(ctx, r, backup, res); err != nil {
		return nil, err
	}
	return res, nil
}

// treeScan is a walk of DATA_DIR that several steps of a restore share.
type treeScan struct {
	found []scan.Scanned
	temps []string             // restore's temporary files
	known *statcache.StatCache // DATA_DIR's stat cache as the restore began
}

// unchangedSinceKnown reports whether root, where only selects, is empty,
// or matches the snapshot being restored or the one recorded in its stat
// cache, by stat data alone. pre, when set,
// is root's walk, with the stat cache read as it began; target (manifest tm
// with its block lists tl, not expanded) is the snapshot being restored,
// which is the recorded one when DATA_DIR is already at it. Neither
// snapshot's lists are expanded: files are compared by their list blocks,
// or walked through them (adoptLists).
func unchangedSinceKnown(ctx context.Context, r *archive.Repository, root, cacheDir string, only scan.Filter, target format.ID, tm *format.Manifest, tl *format.BlockLists, pre *treeScan) (bool, error) {
	var found []scan.Scanned
	if pre != nil {
		found = pre.found
	} else {
		var err error
		if found, err = scan.ScanTree(root, only, func(string) {}); err != nil {
			return false, err
		}
	}
	if len(found) == 0 {
		return true, nil
	}
	var cache *statcache.StatCache
	if pre != nil {
		cache = pre.known
	} else {
		cache = statcache.LoadStatCache(cacheDir, root)
	}
	if cache == nil {
		return false, nil
	}
	vouched := scannedEntries(found, cache) // by stat data alone
	// Already the target where the restore looks (restoring the same
	// services again): the restore writes nothing, so nothing is lost.
	if len(diffTrees(selectEntries(tm.Entries, only), vouched)) == 0 {
		return true, nil
	}
	// What DATA_DIR was last made: the snapshot it was saved as or
	// restored from, or after partial restores their snapshots' paths
	// over the one before. Whichever it is, a match below compares the
	// content on disk with snapshots' content, so it holds only when
	// snapshots hold all of it.
	var known []format.Entry
	var sources []manifestLists
	switch {
	case cache.Snapshot == target:
		known, sources = tm.Entries, []manifestLists{{tm, tl}}
	case !cache.Snapshot.IsZero():
		m, lists, err := r.LoadManifestLists(ctx, cache.Snapshot)
		if err != nil {
			return false, nil // origin gone: keep what is there
		}
		known, sources = m.Entries, []manifestLists{{m, lists}}
	case len(cache.Partial) > 0:
		var err error
		if known, sources, err = expectedTree(ctx, r, cache.Base, cache.Partial); err != nil {
			return false, nil // a snapshot of it gone: keep what is there
		}
	default:
		return false, nil
	}
	if len(diffTrees(selectEntries(known, only), vouched)) == 0 {
		return true, nil
	}
	// Stat data alone says "changed"; files the cache cannot vouch for
	// (racy ones among them) are hashed before deciding.
	cur, err := currentEntries(ctx, r, root, cacheDir)
	if err != nil {
		return false, err
	}
	for _, src := range sources {
		adoptLists(src.m.Entries, src.lists, cur)
	}
	return len(diffTrees(selectEntries(known, only), selectEntries(cur, only))) == 0, nil
}

// adoptLists gives each file of cur whose blocks are exactly those that
// the list blocks of the same path in snap name those list blocks
// instead, so that diffTrees finds them the same without snap's lists
// expanded: each is walked a list block at a time (BlockLists.Chunks).
func adoptLists(snap []format.Entry, lists *format.BlockLists, cur []format.Entry) {
	listed := map[string]*format.Entry{}
	for i := range snap {
		if e := &snap[i]; e.Type == format.TypeFile && len(e.Lists) > 0 && len(e.Blocks) == 0 {
			listed[e.Path] = e
		}
	}
	for i := range cur {
		c := &cur[i]
		e := listed[c.Path]
		if e == nil || c.Type != format.TypeFile || c.Size != e.Size || !walksAs(lists, e, c.Blocks) {
			continue
		}
		c.Blocks, c.Lists = nil, e.Lists
	}
}

// walksAs reports whether e's blocks, walked through lists, are blocks.
func walksAs(lists *format.BlockLists, e *format.Entry, blocks []format.BlockRef) bool {
	for part := range lists.Chunks(e) {
		if len(part) > len(blocks) || !slices.Equal(part, blocks[:len(part)]) {
			return false
		}
		blocks = blocks[len(part):]
	}
	return len(blocks) == 0
}

// scannedEntries turns a scan into entries, taking file content from the
// stat cache where it vouches for it; other files get no blocks, which
// makes them differ from any snapshot with content.
func scannedEntries(found []scan.Scanned, cache *statcache.StatCache) []format.Entry {
	out := make([]format.Entry, len(found))
	for i, e := range found {
		out[i] = e.Entry
		if e.Type == format.TypeFile {
			if ce, ok := cache.Fresh(e.Path, e.Stat); ok {
				out[i].Blocks, out[i].Lists = ce.Blocks, ce.Lists
			} else {
				out[i].Blocks = []format.BlockRef{{Size: uint32(e.Size)}} // unknown content
			}
		}
	}
	return out
}

// selectEntries keeps the entries the filter chooses plus their parents.
func selectEntries(entries []format.Entry, f scan.Filter) []format.Entry {
	if f.Empty() {
		return entries
	}
	need := map[string]bool{}
	for _, e := range entries {
		if f.Selected(e.Path) {
			need[e.Path] = true
			for d := path.Dir(e.Path); d != "."; d = path.Dir(d) {
				need[d] = true
			}
		}
	}
	return slices.DeleteFunc(slices.Clone(entries), func(e format.Entry) bool { return !need[e.Path] })
}
