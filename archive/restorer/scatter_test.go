package restorer_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/restorer"
	"github.com/statepack/statepack/archive/scan"
	"github.com/statepack/statepack/internal/treetest"
)

// scatterSource saves a tree of awkward entries and many small files and
// returns the store, its cache, the tree and the snapshot's manifest.
func scatterSource(t *testing.T) (*archive.Repository, string, treetest.Tree, *format.Manifest) {
	t.Helper()
	r, cache := testRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	files := map[string]treetest.Spec{}
	for p, s := range awkward {
		files[p] = s
	}
	for i := range 40 {
		files[fmt.Sprintf("many/%02d.txt", i)] = treetest.Spec{Content: strings.Repeat(fmt.Sprintf("file %d ", i), 3000+i*97)}
	}
	files["many/dup.txt"] = files["many/07.txt"]
	treetest.Write(t, src, files)
	res := save(t, r, cache, src, "s")
	m, err := r.LoadManifest(context.Background(), res.Snapshot)
	if err != nil {
		t.Fatal(err)
	}
	return r, cache, treetest.MustRead(t, src), m
}

// TestScatterRestore feeds a scatter restore most blocks in an order
// unlike the files' (reversed), with two temporary files open at most;
// Finish reads the rest from the store. The tree is exact, open files stay
// bounded, and a restore afterwards has nothing to write.
func TestScatterRestore(t *testing.T) {
	ctx := context.Background()
	r, cache, want, m := scatterSource(t)
	id := snapID(t, r)
	data := filepath.Join(t.TempDir(), "missing", "data")
	s, err := restorer.StartScatterRestore(ctx, r, id, m, restorer.Options{DataDir: data, CacheDir: cache})
	if err != nil || s == nil {
		t.Fatalf("start: %v %v", s, err)
	}
	if got, ok := restorer.InterruptedRestore(cache, data); !ok || got != id {
		t.Errorf("no restore marker while the scatter restore runs")
	}
	restorer.LimitScatterFiles(s, 2)
	var blocks []format.BlockRef
	m.AllBlocks(func(_ *format.Entry, b format.BlockRef) { blocks = append(blocks, b) })
	for i := len(blocks) - 1; i >= 0; i-- {
		if i%3 == 0 {
			continue // left for Finish to read from the store
		}
		raw, err := r.ReadBlock(ctx, blocks[i].ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Write(blocks[i].ID, raw); err != nil {
			t.Fatal(err)
		}
		if n := restorer.ScatterOpenFiles(s); n > 2 {
			t.Fatalf("%d temporary files open, limit 2", n)
		}
	}
	res, err := s.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Abort() // after Finish: nothing to undo
	treetest.AssertEqual(t, want, treetest.MustRead(t, data))
	if _, ok := restorer.InterruptedRestore(cache, data); ok {
		t.Error("the marker outlived Finish")
	}
	if res.FilesWritten == 0 || res.Snapshot != id {
		t.Errorf("result %+v", res)
	}
	if again := restore(t, r, cache, data, id); again.FilesWritten != 0 || again.Backup != nil {
		t.Errorf("restore after the scatter restore wrote %d files (backup %v)", again.FilesWritten, again.Backup)
	}
}

// TestScatterRestoreAbort: a scatter restore given up before Finish
// leaves DATA_DIR as it was: missing stays missing, empty stays empty, no
// marker and no temporary file.
func TestScatterRestoreAbort(t *testing.T) {
	ctx := context.Background()
	r, cache, _, m := scatterSource(t)
	for _, existed := range []bool{false, true} {
		data := filepath.Join(t.TempDir(), "data")
		if existed {
			if err := os.Mkdir(data, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		s, err := restorer.StartScatterRestore(ctx, r, snapID(t, r), m, restorer.Options{DataDir: data, CacheDir: cache})
		if err != nil || s == nil {
			t.Fatalf("start: %v %v", s, err)
		}
		n := 0
		m.AllBlocks(func(_ *format.Entry, b format.BlockRef) {
			if n++; n%2 == 0 {
				raw, err := r.ReadBlock(ctx, b.ID, nil)
				if err == nil {
					err = s.Write(b.ID, raw)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
		})
		s.Abort()
		entries, err := os.ReadDir(data)
		switch {
		case !existed && !os.IsNotExist(err):
			t.Errorf("DATA_DIR exists after Abort: %v %v", entries, err)
		case existed && (err != nil || len(entries) > 0):
			t.Errorf("DATA_DIR after Abort: %v %v, want it empty", entries, err)
		}
		if _, ok := restorer.InterruptedRestore(cache, data); ok {
			t.Error("Abort left the restore marker")
		}
	}
}

// TestScatterRestoreOnlyIntoEmpty: DATA_DIR with anything in it, or a
// restore of a subset, is left to Restore.
func TestScatterRestoreOnlyIntoEmpty(t *testing.T) {
	ctx := context.Background()
	r, cache, _, m := scatterSource(t)
	data := t.TempDir()
	if err := os.Mkdir(filepath.Join(data, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if s, err := restorer.StartScatterRestore(ctx, r, snapID(t, r), m, restorer.Options{DataDir: data, CacheDir: cache}); s != nil || err != nil {
		t.Errorf("into a DATA_DIR with a directory: %v %v, want nil, nil", s, err)
	}
	only := scan.Filter{Include: []string{"many/**"}}
	if s, err := restorer.StartScatterRestore(ctx, r, snapID(t, r), m, restorer.Options{DataDir: filepath.Join(data, "new"), CacheDir: cache, Only: only}); s != nil || err != nil {
		t.Errorf("with --only: %v %v, want nil, nil", s, err)
	}
}

// snapID is the head of state s.
func snapID(t *testing.T, r *archive.Repository) format.ID {
	t.Helper()
	id, _, err := r.ReadRef(context.Background(), "s")
	if err != nil {
		t.Fatal(err)
	}
	return id
}
