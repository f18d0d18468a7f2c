package scan

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/internal/files"
)

// walkWorkers is how many directories are read at once. A walk is one
// lstat(2) per path, all from the kernel's caches on a no-op save, so it
// is bound by syscall time on every core rather than by a disk.
const walkWorkers = 4

// treeWalk is a parallel walk of a directory tree: workers take
// directories from a shared queue, read them and lstat their entries, and
// queue the subdirectories they find. The order entries are found in
// varies; ScanTree sorts them afterwards, and warnings are sorted by path
// so that what a user reads does not depend on scheduling.
type treeWalk struct {
	root   string
	filter Filter

	mu      sync.Mutex
	more    *sync.Cond // a directory was queued, or the walk ended
	queue   []string   // directories to read, relative to root ("" for root)
	busy    int        // workers reading a directory
	err     error      // the first error; it ends the walk
	found   []Scanned
	warning []walkWarning
	temps   []string // restore's temporary files, skipped
}

// walkWarning is a path skipped with a reason, reported after the walk.
type walkWarning struct{ rel, msg string }

// walkTree returns every entry below root not excluded by f, in no
// particular order, the warnings for what it skipped, sorted by path, and
// the temporary files of a restore it skipped.
func walkTree(root string, f Filter) ([]Scanned, []string, []string, error) {
	w := &treeWalk{root: root, filter: f, queue: []string{""}}
	w.more = sync.NewCond(&w.mu)
	var wg sync.WaitGroup
	for range walkWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.work()
		}()
	}
	wg.Wait()
	if w.err != nil {
		return nil, nil, nil, w.err
	}
	slices.SortFunc(w.warning, func(a, b walkWarning) int { return strings.Compare(a.rel, b.rel) })
	msgs := make([]string, len(w.warning))
	for i, wn := range w.warning {
		msgs[i] = wn.msg
	}
	return w.found, msgs, w.temps, nil
}

// work reads queued directories until none is left and no worker can
// queue more, or an error ended the walk.
func (w *treeWalk) work() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		for len(w.queue) == 0 && w.busy > 0 && w.err == nil {
			w.more.Wait()
		}
		if len(w.queue) == 0 || w.err != nil {
			w.more.Broadcast()
			return
		}
		dir := w.queue[len(w.queue)-1]
		w.queue = w.queue[:len(w.queue)-1]
		w.busy++
		w.mu.Unlock()
		found, dirs, warnings, temps, err := w.readDir(dir)
		w.mu.Lock()
		w.busy--
		w.found = append(w.found, found...)
		w.temps = append(w.temps, temps...)
		w.queue = append(w.queue, dirs...)
		w.warning = append(w.warning, warnings...)
		if err != nil && w.err == nil {
			w.err = err
		}
		w.more.Broadcast()
	}
}

// readDir reads one directory (rel to the root) and lstats its entries.
// It returns the entries, the subdirectories to walk, the warnings and
// restore's temporary files.
func (w *treeWalk) readDir(rel string) (found []Scanned, dirs []string, warnings []walkWarning, temps []string, err error) {
	dir := filepath.Join(w.root, filepath.FromSlash(rel))
	f, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) && rel != "" {
		return nil, nil, nil, nil, nil // removed while scanning
	}
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("read %s: %w", dir, err)
	}
	list, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("read %s: %w", dir, err)
	}
	for _, d := range list {
		r := d.Name()
		if rel != "" {
			r = rel + "/" + r
		}
		if !utf8.ValidString(r) {
			warnings = append(warnings, walkWarning{r, fmt.Sprintf("skipped %q: name is not valid UTF-8", r)})
			continue
		}
		if format.IsRestoreTemp(d.Name()) {
			if d.IsDir() { // restore makes none: not ours, left alone
				warnings = append(warnings, walkWarning{r, fmt.Sprintf("skipped %s: the name is reserved for restore's temporary files", r)})
				continue
			}
			temps = append(temps, r)
			warnings = append(warnings, walkWarning{r, fmt.Sprintf("skipped %s: a temporary file of an interrupted restore (the next restore removes it)", r)})
			continue
		}
		if w.filter.Excluded(r) {
			continue
		}
		p := filepath.Join(dir, d.Name())
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed while scanning
		}
		if err != nil {
			return nil, nil, nil, nil, fmt.Errorf("stat %s: %w", p, err)
		}
		e, ok, err := entryOf(p, r, fi)
		if err != nil {
			return nil, nil, nil, nil, err
		}
		if !ok {
			warnings = append(warnings, walkWarning{r, fmt.Sprintf("skipped %s: %s is not a file, directory or symlink", r, files.ModeKind(fi.Mode()))})
			continue
		}
		found = append(found, e)
		if e.Type == format.TypeDir {
			dirs = append(dirs, r)
		}
	}
	return found, dirs, warnings, temps, nil
}
