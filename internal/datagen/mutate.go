package datagen

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// MutateStats counts what one Mutate step changed.
type MutateStats struct {
	FilesChanged int `json:"files_changed"` // existing files whose content changed
	FilesAdded   int `json:"files_added"`   // new files
	FilesDeleted int `json:"files_deleted"` // removed files
	// PagesChanged counts the PageSize (4 KiB) pages of the files after the
	// step whose bytes differ from the bytes at the same offsets of the same
	// file before it: pages rewritten in place, pages whose content an
	// insertion shifted, appended pages (and a last page that an append
	// extended), and all pages of new files. Deleted files count nothing.
	PagesChanged int `json:"pages_changed"`
	// ChangedBytes is PagesChanged * PageSize: the bytes a tool that
	// compared the trees page by page would find changed.
	ChangedBytes int64 `json:"changed_bytes"`
}

// Mutate changes the tree in dir the way one LocalStack test stage does:
// it rewrites a few random pages of every DynamoDB database in place and
// appends a few more (updating the SQLite header page), rewrites one or two
// service stores with new records inserted near their start, appends
// records to Kinesis streams, deletes one S3 object and adds a few, and
// moves the modification times of what it touched forward. The changes are
// a function of (seed, step) and of the tree, so the same step applied to
// identical trees gives identical trees. Steps count from 1; step n's times
// are later than step n-1's and than Generate's.
func Mutate(dir string, seed int64, step int) (MutateStats, error) {
	if step < 1 {
		return MutateStats{}, fmt.Errorf("datagen: mutate step %d: steps count from 1", step)
	}
	if fi, err := os.Stat(dir); err != nil {
		return MutateStats{}, fmt.Errorf("datagen: %w", err)
	} else if !fi.IsDir() {
		return MutateStats{}, fmt.Errorf("datagen: %s is not a directory", dir)
	}
	day := baseTime.Add(time.Duration(step+1) * 24 * time.Hour)
	m := &mutator{
		root:    dir,
		step:    step,
		g:       newRNG(uint64(seed), streamMutate^uint64(step)<<32),
		day:     day,
		touched: map[string]bool{},
	}
	for _, change := range []func() error{m.databases, m.stores, m.streams, m.objects, m.touchDirs} {
		if err := change(); err != nil {
			return MutateStats{}, fmt.Errorf("datagen: mutate step %d: %w", step, err)
		}
	}
	m.stats.ChangedBytes = int64(m.stats.PagesChanged) * PageSize
	return m.stats, nil
}

// mutator carries one Mutate step.
type mutator struct {
	root    string
	step    int
	g       *rng
	day     time.Time       // the step's day: all its times fall on it
	touched map[string]bool // directories whose entries changed
	stats   MutateStats
}

// fileTime returns a modification time for a file the step changed.
func (m *mutator) fileTime() time.Time {
	return m.day.Add(time.Duration(m.g.Int64N(int64(23 * time.Hour))))
}

// clock returns the content clock (Unix milliseconds) of the step's records.
func (m *mutator) clock() int64 { return m.day.UnixMilli() }

// files lists the regular files below root/sub, in lexical order, that keep
// accepts; a missing sub has none.
func (m *mutator) files(sub string, keep func(name string) bool) ([]string, error) {
	var out []string
	err := filepath.WalkDir(filepath.Join(m.root, sub), func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && keep(name) {
			out = append(out, name)
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return out, err
}

// touchDirs moves the times of the directories whose entries changed to
// the end of the step's day.
func (m *mutator) touchDirs() error {
	dirs := make([]string, 0, len(m.touched))
	for d := range m.touched {
		dirs = append(dirs, d)
	}
	slices.Sort(dirs)
	for _, d := range dirs {
		t := m.day.Add(23*time.Hour + time.Duration(m.g.Int64N(int64(time.Hour))))
		if err := os.Chtimes(d, t, t); err != nil {
			return err
		}
	}
	return nil
}
