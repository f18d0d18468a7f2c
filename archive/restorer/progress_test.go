package restorer_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/statepack/statepack/archive/restorer"
	"github.com/statepack/statepack/internal/treetest"
)

// countingSink records the totals of each phase and what was reported
// done.
type countingSink struct {
	mu                    sync.Mutex
	phaseFiles, phaseSize int64
	files, bytes          int64
}

func (s *countingSink) Phase(_ string, files, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.phaseFiles, s.phaseSize, s.files, s.bytes = files, bytes, 0, 0
}

func (s *countingSink) Add(files, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files += files
	s.bytes += bytes
}

func (s *countingSink) Warn(string) {}

// TestRestoreProgressCountsFiles: the restore phase counts what the bar
// calls files (regular files, written or found identical), not
// directories or symlinks, and ends at its totals.
func TestRestoreProgressCountsFiles(t *testing.T) {
	r, cache := testRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	treetest.Write(t, src, map[string]treetest.Spec{
		"a/b/c/one": {Content: "one"}, "a/b/two": {Content: "two two"}, "d/e/f/g": {Dir: true},
		"link": {Link: "a/b/two"}, "three": {Content: "three"},
	})
	id := save(t, r, cache, src, "s").Snapshot
	dst := filepath.Join(t.TempDir(), "dst")
	for _, run := range []string{"into an empty directory", "again, one file changed"} {
		if run != "into an empty directory" {
			treetest.Write(t, dst, map[string]treetest.Spec{"three": {Content: "changed"}})
		}
		sink := &countingSink{}
		res, err := restorer.Restore(context.Background(), r, restorer.Options{DataDir: dst, Snapshot: id, CacheDir: cache, Progress: sink, NoBackup: true})
		if err != nil {
			t.Fatal(err)
		}
		if res.FilesWritten+res.FilesSkipped < 3 {
			t.Fatalf("%s: %+v", run, res)
		}
		if sink.phaseFiles != 3 || sink.phaseSize != int64(len("one")+len("two two")+len("three")) {
			t.Errorf("%s: phase totals %d files, %d bytes; want the 3 files", run, sink.phaseFiles, sink.phaseSize)
		}
		if sink.files != sink.phaseFiles || sink.bytes != sink.phaseSize {
			t.Errorf("%s: %d of %d files, %d of %d bytes reported done", run, sink.files, sink.phaseFiles, sink.bytes, sink.phaseSize)
		}
		pastRacyWindow()
	}
}
