package datagen

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"
)

// Size limits of Options.Size.
const (
	// DefaultSize is the size generated when Options.Size is zero.
	DefaultSize = 64 << 20
	// MinSize is the smallest size that still produces the whole layout.
	MinSize = 64 << 10
	// MaxSize bounds Options.Size (and keeps size arithmetic far from
	// overflow).
	MaxSize = 1 << 40
)

// ErrNotEmpty is returned by Generate when its directory already has
// entries.
var ErrNotEmpty = errors.New("directory is not empty")

// Options says which tree Generate builds.
type Options struct {
	// Seed selects the tree: the same seed and size give the same tree.
	Seed int64
	// Size is the approximate total of file content in bytes (within
	// ±10%, in practice within a few KiB); zero means DefaultSize.
	Size int64
}

// Stats counts what Generate created below its directory (the directory
// itself is not counted).
type Stats struct {
	Files    int   `json:"files"`    // regular files, empty ones included
	Dirs     int   `json:"dirs"`     // directories, empty ones included
	Symlinks int   `json:"symlinks"` // symbolic links
	Bytes    int64 `json:"bytes"`    // total size of the regular files
}

// Generate creates dir (with its parents) when absent and fills it with a
// LocalStack-like data directory determined by opt: the same Options always
// produce the same names, contents, modes and modification times. dir must
// be empty or absent. Files are written in parallel; on error the tree is
// left incomplete.
func Generate(dir string, opt Options) (Stats, error) {
	size := cmp.Or(opt.Size, DefaultSize)
	if size < MinSize || size > MaxSize {
		return Stats{}, fmt.Errorf("datagen: size %d bytes is not between 64 KiB and 1 TiB", size)
	}
	if err := prepareRoot(dir); err != nil {
		return Stats{}, err
	}
	p := newPlan(size, opt.Seed)
	if err := p.write(dir); err != nil {
		return Stats{}, fmt.Errorf("datagen: %w", err)
	}
	return p.stats(), nil
}

// prepareRoot makes sure dir exists and is empty.
func prepareRoot(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("datagen: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("datagen: %w", err)
	case len(entries) > 0:
		return fmt.Errorf("datagen: %s: %w", dir, ErrNotEmpty)
	}
	return nil
}

// write creates the plan's tree under root: directories, then files (in
// parallel), then symlinks, then the directories' times, deepest first, once
// nothing more is added to them.
func (p *plan) write(root string) error {
	for _, d := range p.dirs {
		name := filepath.Join(root, filepath.FromSlash(d.path))
		if err := os.Mkdir(name, 0o755); err != nil {
			return err
		}
		if err := os.Chmod(name, 0o755); err != nil { // whatever the umask
			return err
		}
	}
	if err := p.writeFiles(root); err != nil {
		return err
	}
	for _, l := range p.links {
		name := filepath.Join(root, filepath.FromSlash(l.path))
		if err := os.Symlink(l.target, name); err != nil {
			return err
		}
		if err := lchtimes(name, l.mtime); err != nil {
			return err
		}
	}
	for _, d := range slices.Backward(p.dirs) {
		name := filepath.Join(root, filepath.FromSlash(d.path))
		if err := os.Chtimes(name, d.mtime, d.mtime); err != nil {
			return err
		}
	}
	rootTime := baseTime.Add(25 * time.Hour)
	return os.Chtimes(root, rootTime, rootTime)
}

// writeFiles writes the plan's files with one worker per CPU, largest files
// first, and returns the first error.
func (p *plan) writeFiles(root string) error {
	order := make([]*fileSpec, len(p.files))
	for i := range p.files {
		order[i] = &p.files[i]
	}
	slices.SortStableFunc(order, func(a, b *fileSpec) int { return cmp.Compare(b.size, a.size) })

	jobs := make(chan *fileSpec)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for range min(runtime.GOMAXPROCS(0), len(order)) {
		wg.Go(func() {
			buf := make([]byte, 0, pieceSize+64<<10)
			for f := range jobs {
				var err error
				if buf, err = writeFile(root, f, buf); err != nil {
					mu.Lock()
					firstErr = cmpErr(firstErr, err)
					mu.Unlock()
				}
			}
		})
	}
	for _, f := range order {
		mu.Lock()
		failed := firstErr != nil
		mu.Unlock()
		if failed {
			break
		}
		jobs <- f
	}
	close(jobs)
	wg.Wait()
	return firstErr
}

// cmpErr returns first unless it is nil.
func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// writeFile creates one file with its content, mode and times. It returns
// buf, possibly grown, for the next file.
func writeFile(root string, f *fileSpec, buf []byte) ([]byte, error) {
	name := filepath.Join(root, filepath.FromSlash(f.path))
	out, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return buf, err
	}
	if f.src != nil {
		buf, err = writeContent(out, f.src(newRNG(f.seed, streamContent)), f.size, buf)
	}
	if err == nil {
		err = out.Chmod(f.mode) // after writing, so that 0444 files can be written
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chtimes(name, f.mtime, f.mtime)
	}
	return buf, err
}
