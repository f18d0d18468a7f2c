package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/statepack/statepack/internal/treetest"
)

// TestLocalFlow walks issue 2's session as a user types it: save twice,
// inspect, restore an older version exactly, verify, forget and prune.
func TestLocalFlow(t *testing.T) {
	e := newEnv(t)
	e.write(sampleTree())
	v1 := treetest.MustRead(t, e.data)

	var s1, s2 saveOutput
	e.runJSON(&s1, "save", "orders-e2e", "-m", "after stage 1", "--label", "ci=true", "--label", "branch=main")
	if s1.Files != 6 || s1.Dirs == 0 || s1.Symlinks != 1 || s1.Parent != "" || len(s1.Snapshot) != 64 {
		t.Fatalf("first save: %+v", s1)
	}

	e.write(map[string]treetest.Spec{
		"kinesis/stream.json":  {Content: `{"records": [1, 2, 3]}`},
		"s3/bucket/new-object": {Content: "new"},
	})
	if err := os.Remove(filepath.Join(e.data, "s3/bucket/ünïcode")); err != nil {
		t.Fatal(err)
	}
	v2 := treetest.MustRead(t, e.data)
	e.runJSON(&s2, "save", "orders-e2e", "-m", "after stage 2")
	if s2.Parent != s1.Snapshot || s2.NewBlocks == 0 || s2.FilesRead >= s2.Files+1 {
		t.Fatalf("second save: %+v (first %s)", s2, s1.Snapshot)
	}

	list := e.MustRun("list")
	for _, want := range []string{"orders-e2e", s2.Snapshot[:8], "2 "} {
		if !strings.Contains(list.Stdout, want) {
			t.Errorf("list lacks %q:\n%s", want, list.Stdout)
		}
	}
	log := e.MustRun("log", "orders-e2e")
	if i, j := strings.Index(log.Stdout, s2.Snapshot[:8]), strings.Index(log.Stdout, s1.Snapshot[:8]); i < 0 || j < 0 || i > j {
		t.Errorf("log is not newest first:\n%s", log.Stdout)
	}
	if !strings.Contains(log.Stdout, "after stage 1") || !strings.Contains(log.Stdout, "branch=main,ci=true") {
		t.Errorf("log lacks message or labels:\n%s", log.Stdout)
	}
	show := e.MustRun("show", "orders-e2e~1", "--files")
	for _, want := range []string{s1.Snapshot, "s3/bucket/ünïcode", "current -> kinesis/stream.json", "after stage 1"} {
		if !strings.Contains(show.Stdout, want) {
			t.Errorf("show --files lacks %q:\n%s", want, show.Stdout)
		}
	}

	var d diffOutput
	e.runJSON(&d, "diff", "orders-e2e~1", "orders-e2e")
	if d.Added != 1 || d.Removed != 1 || d.Modified != 1 || d.From != s1.Snapshot || d.To != s2.Snapshot {
		t.Fatalf("diff of the versions: %+v", d)
	}
	e.runJSON(&d, "diff", "orders-e2e")
	if len(d.Changes) != 0 || d.DataDir != e.data || d.To != "" {
		t.Fatalf("diff with the unchanged DATA_DIR: %+v", d)
	}
	e.write(map[string]treetest.Spec{"scratch": {Content: "x"}})
	e.runJSON(&d, "diff", "orders-e2e")
	if d.Added != 1 || d.Removed != 0 || d.Modified != 0 || d.Changes[0].Path != "scratch" {
		t.Fatalf("diff with DATA_DIR after adding a file: %+v", d)
	}
	if out := e.MustRun("diff", "orders-e2e"); !strings.Contains(out.Stdout, "+ scratch") {
		t.Errorf("human diff: %s", out.Stdout)
	}

	var st statusOutput
	e.runJSON(&st, "status")
	if st.Persistence != "initialized" || st.Snapshot != s2.Snapshot || st.State != "orders-e2e" || !st.Changed || st.Added != 1 {
		t.Fatalf("status: %+v", st)
	}

	var r restoreOutput
	e.runJSON(&r, "restore", "orders-e2e~1")
	if r.Snapshot != s1.Snapshot || r.Backup == nil {
		t.Fatalf("restore: %+v (DATA_DIR held an unsaved file, so a backup was due)", r)
	}
	treetest.AssertEqual(t, v1, treetest.MustRead(t, e.data))
	e.MustRun("restore", r.Backup.Snapshot[:12])
	back := treetest.MustRead(t, e.data)
	if _, ok := back["scratch"]; !ok {
		t.Fatalf("restoring the backup did not bring back the unsaved file")
	}
	delete(back, "scratch")
	treetest.AssertEqual(t, v2, back)

	var ver verifyOutput
	e.runJSON(&ver, "verify", "--read-data")
	if !ver.OK || ver.BytesRead == 0 || ver.Snapshots < 3 {
		t.Fatalf("verify --read-data: %+v", ver)
	}
	var f forgetOutput
	e.runJSON(&f, "forget", "orders-e2e", "--keep-last", "1")
	if len(f.Kept) != 1 || f.Kept[0] != s2.Snapshot || len(f.Removed) != 1 || f.Removed[0] != s1.Snapshot {
		t.Fatalf("forget: %+v", f)
	}
	var p pruneOutput
	e.runJSON(&p, "prune")
	if p.PacksRemoved+p.PacksRepacked == 0 {
		t.Errorf("prune reclaimed nothing: %+v", p)
	}
	e.runJSON(&ver, "verify", "--read-data")
	if !ver.OK {
		t.Fatalf("verify after prune: %+v", ver)
	}
	if res := e.Run("show", s1.Snapshot[:10]); res.Code != exitNotFound {
		t.Errorf("the forgotten version is still there: %s", res)
	}
	e.MustRun("restore", "orders-e2e", "--no-backup")
	treetest.AssertEqual(t, v2, treetest.MustRead(t, e.data))
}
