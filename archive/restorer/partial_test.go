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

// TestPartialRestoreOrigin: after partial restores the stat cache records
// where DATA_DIR came from (for status) while save and restore trust none
// of it: a save stores what DATA_DIR holds, a full restore of the
// snapshot DATA_DIR was before writes the restored paths back, and a
// backup is skipped only when snapshots hold what would be overwritten.
func TestPartialRestoreOrigin(t *testing.T) {
	ctx := context.Background()
	r, cache := testRepo(t)
	dir := filepath.Join(t.TempDir(), "data")
	files := map[string]treetest.Spec{"sqs/q": {Content: "v1 queues"}, "dynamodb/t.db": {Content: "v1 table"}, "kinesis/s": {Content: "v1 stream"}}
	treetest.Write(t, dir, files)
	v1 := save(t, r, cache, dir, "s").Snapshot
	treetest.Write(t, dir, map[string]treetest.Spec{"sqs/q": {Content: "v2 queues"}, "dynamodb/t.db": {Content: "v2 table"}, "kinesis/s": {Content: "v2 stream"}})
	v2 := save(t, r, cache, dir, "s").Snapshot
	pastRacyWindow()

	partial := func(include string) *restorer.Result {
		t.Helper()
		res, err := restorer.Restore(ctx, r, restorer.Options{DataDir: dir, Snapshot: v1, CacheDir: cache, Only: scan.Filter{Include: []string{include}}})
		if err != nil {
			t.Fatal(err)
		}
		pastRacyWindow()
		return res
	}
	if res := partial("sqs"); res.Backup != nil || res.FilesWritten != 1 {
		t.Fatalf("first partial restore: %+v", res)
	}
	origin, changes, err := restorer.DataDirOrigin(ctx, r, dir, cache)
	if err != nil || origin == nil || origin.Whole() || origin.Base != v2 || len(origin.Partial) != 1 || origin.Partial[0].Snapshot != v1 || len(changes) != 0 {
		t.Fatalf("origin after restoring sqs of v1 over v2: %+v, %v, %v", origin, changes, err)
	}
	// Other paths of the same version: what they overwrite is v2's, so
	// no backup.
	if res := partial("dynamodb"); res.Backup != nil || res.FilesWritten != 1 {
		t.Fatalf("second partial restore: %+v", res)
	}
	// Unsaved content where a partial restore writes is saved first.
	treetest.Write(t, dir, map[string]treetest.Spec{"kinesis/s": {Content: "unsaved stream"}})
	if _, changes, _ := restorer.DataDirOrigin(ctx, r, dir, cache); len(changes) != 1 || changes[0].Path != "kinesis/s" {
		t.Errorf("changes after writing kinesis/s: %+v", changes)
	}
	pastRacyWindow()
	if res := partial("kinesis"); res.Backup == nil {
		t.Fatalf("unsaved kinesis/s overwritten without a backup: %+v", res)
	}

	// A save stores DATA_DIR as it is (all v1 now, read or vouched for).
	want := treetest.MustRead(t, dir)
	v3 := save(t, r, cache, dir, "s").Snapshot
	other := filepath.Join(t.TempDir(), "other")
	restore(t, r, "", other, v3)
	treetest.AssertEqual(t, want, treetest.MustRead(t, other))
	if got, _ := os.ReadFile(filepath.Join(other, "sqs/q")); string(got) != "v1 queues" {
		t.Errorf("saved sqs/q %q", got)
	}
	if origin, _, _ := restorer.DataDirOrigin(ctx, r, dir, cache); origin == nil || !origin.Whole() || origin.Snapshot != v3 {
		t.Errorf("origin after the save: %+v", origin)
	}
}

// TestFullRestoreAfterPartial: the stat cache of a partial restore
// records no snapshot, so a full restore of the version DATA_DIR was
// before puts the restored paths back rather than taking DATA_DIR for
// that version already; and no backup is due, as snapshots hold it all.
func TestFullRestoreAfterPartial(t *testing.T) {
	ctx := context.Background()
	r, cache := testRepo(t)
	dir := filepath.Join(t.TempDir(), "data")
	treetest.Write(t, dir, map[string]treetest.Spec{"sqs/q": {Content: "v1"}, "s3/o": {Content: "v1"}})
	v1 := save(t, r, cache, dir, "s").Snapshot
	treetest.Write(t, dir, map[string]treetest.Spec{"sqs/q": {Content: "v2"}, "s3/o": {Content: "v2"}})
	want := treetest.MustRead(t, dir)
	v2 := save(t, r, cache, dir, "s").Snapshot
	pastRacyWindow()
	_, err := restorer.Restore(ctx, r, restorer.Options{DataDir: dir, Snapshot: v1, CacheDir: cache, Only: scan.Filter{Include: []string{"sqs/**"}}})
	must(t, err)
	pastRacyWindow()
	res := restore(t, r, cache, dir, v2)
	if res.FilesWritten != 1 || res.Backup != nil {
		t.Errorf("full restore of v2 after a partial restore of v1: %+v", res)
	}
	treetest.AssertEqual(t, want, treetest.MustRead(t, dir))
}
