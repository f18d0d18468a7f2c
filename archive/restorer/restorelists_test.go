package restorer_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/statepack/statepack/archive/restorer"
	"github.com/statepack/statepack/internal/treetest"
)

// TestRestoreBackupCheckWithoutExpanding: restore decides whether DATA_DIR
// holds unsaved content without expanding the block lists of either
// snapshot (the one restored, the one DATA_DIR was at): a large file
// whose stat changed but whose content did not is hashed and walked
// against the snapshot's list blocks, and found the same (no backup);
// one whose content changed, at the same size, is saved first
// (invariant 4). status and diff compare the same way.
func TestRestoreBackupCheckWithoutExpanding(t *testing.T) {
	for _, tc := range []struct {
		name       string
		toOld      bool // restore the older snapshot, not the one DATA_DIR is at
		change     bool // change a byte of the large file, keeping its size
		wantBackup bool
	}{
		{"stat changed, same snapshot", false, false, false},
		{"stat changed, other snapshot", true, false, false},
		{"content changed, same snapshot", false, true, true},
		{"content changed, other snapshot", true, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, cache := testRepo(t)
			dir := filepath.Join(t.TempDir(), "data")
			content := []byte(strings.Repeat("page of a database, ", 400000)) // 8 MB: 128 blocks in list blocks
			for i := range content {
				content[i] ^= byte(i * 2654435761 >> 24)
			}
			treetest.Write(t, dir, map[string]treetest.Spec{"db": {Content: string(content)}, "small": {Content: "v0"}})
			v0tree := treetest.MustRead(t, dir)
			v0 := save(t, r, cache, dir, "s")
			treetest.Write(t, dir, map[string]treetest.Spec{"small": {Content: "v1"}})
			v1tree := treetest.MustRead(t, dir)
			v1 := save(t, r, cache, dir, "s")
			db := filepath.Join(dir, "db")
			if tc.change {
				f, err := os.OpenFile(db, os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := f.WriteAt([]byte{content[3<<20] ^ 1}, 3<<20); err != nil {
					t.Fatal(err)
				}
				f.Close()
			}
			if err := os.Chmod(db, 0o644); err != nil { // a new ctime: the stat cache no longer vouches
				t.Fatal(err)
			}
			// status and diff walk the lists as the backup check does.
			_, _, changes, err := restorer.DataDirChanges(context.Background(), r, dir, cache)
			if err != nil || (len(changes) > 0) != tc.change {
				t.Errorf("status: %v changes (%v), want changes %v", changes, err, tc.change)
			}
			if d, err := restorer.Diff(context.Background(), r, v0.Snapshot, v1.Snapshot); err != nil || len(d) != 1 || d[0].Path != "small" {
				t.Errorf("diff of the two snapshots: %v (%v), want small alone", d, err)
			}
			target, want := v1.Snapshot, v1tree
			if tc.toOld {
				target, want = v0.Snapshot, v0tree
			}
			res := restore(t, r, cache, dir, target)
			if (res.Backup != nil) != tc.wantBackup {
				t.Errorf("backup made: %v, want %v", res.Backup != nil, tc.wantBackup)
			}
			treetest.AssertEqual(t, want, treetest.MustRead(t, dir))
		})
	}
}
