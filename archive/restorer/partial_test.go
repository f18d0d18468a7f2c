package restorer_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/statepack/statepack/archive/restorer"
	"github.com/statepack/statepack/archive/scan"
	"github.com/statepack/statepack/internal/treetest"
)

// TestPartialRestoreBacksUpOnce: restoring some services of an older
// version (restore --services) saves a backup only when it would
// overwrite content no snapshot holds: not when what it overwrites is
// the version DATA_DIR was saved as, and not when it runs again over
// what it wrote itself, however often.
func TestPartialRestoreBacksUpOnce(t *testing.T) {
	ctx := context.Background()
	r, cache := testRepo(t)
	dir := filepath.Join(t.TempDir(), "data")
	files := map[string]treetest.Spec{"sqs/queues.json": {Content: "v1 queues"}, "dynamodb/t.db": {Content: "v1 table"}}
	treetest.Write(t, dir, files)
	old := save(t, r, cache, dir, "s").Snapshot
	files["sqs/queues.json"] = treetest.Spec{Content: "v2 queues"}
	files["dynamodb/t.db"] = treetest.Spec{Content: "v2 table"}
	treetest.Write(t, dir, files)
	save(t, r, cache, dir, "s")
	pastRacyWindow()
	only := scan.Filter{Include: []string{"sqs"}}
	for run := 1; run <= 3; run++ {
		res, err := restorer.Restore(ctx, r, restorer.Options{DataDir: dir, Snapshot: old, CacheDir: cache, Only: only})
		if err != nil {
			t.Fatal(err)
		}
		if res.Backup != nil {
			t.Errorf("run %d: a backup of content that snapshots hold (%d files written)", run, res.FilesWritten)
		}
		if want := map[bool]int{true: 1, false: 0}[run == 1]; res.FilesWritten != want {
			t.Errorf("run %d: %d files written, want %d", run, res.FilesWritten, want)
		}
		pastRacyWindow()
	}
	for p, want := range map[string]string{"sqs/queues.json": "v1 queues", "dynamodb/t.db": "v2 table"} {
		if got, err := os.ReadFile(filepath.Join(dir, p)); err != nil || string(got) != want {
			t.Errorf("after the partial restores %s holds %q (%v), want %q", p, got, err, want)
		}
	}

	// Unsaved content where the restore looks is still saved first.
	treetest.Write(t, dir, map[string]treetest.Spec{"sqs/queues.json": {Content: "unsaved"}})
	res, err := restorer.Restore(ctx, r, restorer.Options{DataDir: dir, Snapshot: old, CacheDir: cache, Only: only})
	if err != nil {
		t.Fatal(err)
	}
	if res.Backup == nil {
		t.Error("unsaved content overwritten without a backup")
	}
}
