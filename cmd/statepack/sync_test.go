package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/statepack/statepack/internal/treetest"
)

// TestRemoteFlow: two machines share a state through a directory remote.
func TestRemoteFlow(t *testing.T) {
	a, b := newEnv(t), newEnv(t)
	remoteDir := mkRemoteDir(t, a)
	a.Env["STATEPACK_REMOTE"], b.Env["STATEPACK_REMOTE"] = "file://"+remoteDir, remoteDir
	a.write(sampleTree())
	a.MustRun("save", "main", "-m", "v1")
	var push, pull syncOutput
	a.runJSON(&push, "push", "main")
	if push.UpToDate || push.Blocks == 0 || push.Packs == 0 || push.Requests == 0 {
		t.Fatalf("first push: %+v", push)
	}
	b.runJSON(&pull, "pull", "main", "--restore")
	if pull.Blocks != push.Blocks || pull.Restore == nil || pull.Snapshot != push.Snapshot {
		t.Fatalf("pull --restore: %+v", pull)
	}
	treetest.AssertEqual(t, treetest.MustRead(t, a.data), treetest.MustRead(t, b.data))

	a.write(map[string]treetest.Spec{"kinesis/stream.json": {Content: `{"records": [4]}`}})
	a.MustRun("save", "main", "-m", "v2")
	a.runJSON(&push, "push", "main")
	if push.Blocks != 1 || push.SkippedBlocks == 0 {
		t.Errorf("second push sent %d blocks (skipped %d), want only the changed one", push.Blocks, push.SkippedBlocks)
	}
	a.runJSON(&push, "push", "main")
	if !push.UpToDate || push.Blocks != 0 {
		t.Errorf("third push: %+v", push)
	}
	b.runJSON(&pull, "pull", "pr-1234", "--fallback", "nope", "--fallback", "main")
	if !pull.Fallback || pull.State != "main" || pull.Requested != "pr-1234" || pull.Blocks != 1 {
		t.Errorf("pull with fallback: %+v", pull)
	}

	var log logOutput
	b.runJSON(&log, "log", "main", "--remote")
	if len(log.Versions) != 2 || log.Versions[0].Message != "v2" {
		t.Errorf("log --remote: %+v", log)
	}
	var f forgetOutput
	a.runJSON(&f, "forget", "main", "--keep-last", "1", "--remote")
	if len(f.Removed) != 1 {
		t.Errorf("forget --remote: %+v", f)
	}
	a.MustRun("prune", "--remote")
	var ver verifyOutput
	b.runJSON(&ver, "verify", "--remote", "--read-data")
	if !ver.OK || ver.Snapshots != 1 {
		t.Errorf("verify --remote: %+v", ver)
	}

	lock, _ := json.Marshal(map[string]any{"exclusive": false, "host": "gone-host", "pid": 1, "command": "push", "time": time.Now().Add(-time.Hour)})
	if err := os.MkdirAll(filepath.Join(remoteDir, "locks"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(remoteDir, "locks", "feedfacefeedface"), lock, 0o644); err != nil {
		t.Fatal(err)
	}
	var un unlockOutput
	b.runJSON(&un, "unlock", "--remote")
	if len(un.Removed) != 1 || un.Removed[0].Host != "gone-host" || un.Remaining != 0 {
		t.Errorf("unlock --remote: %+v", un)
	}
}

// TestPullRestoreCI: the CI cache case through the binary. A fresh runner
// pulls with --restore into a DATA_DIR that does not exist yet: the tree is
// exact, the JSON restore object is the one restore --json prints, and the
// runner is then where pull followed by restore leaves another one: the
// same store contents, status reports no changes, and a save and a restore
// after it do nothing. A DATA_DIR with content takes the old way.
func TestPullRestoreCI(t *testing.T) {
	a, b, c := newEnv(t), newEnv(t), newEnv(t)
	remoteDir := mkRemoteDir(t, a)
	for _, e := range []*env{a, b, c} {
		e.Env["STATEPACK_REMOTE"] = remoteDir
	}
	a.write(sampleTree())
	a.write(map[string]treetest.Spec{
		"big/state.pkl":   {Content: strings.Repeat("pickled LocalStack state ", 200000)},
		"dynamodb/t.db":   {Content: treetest.SQLite(300, 3)},
		"ro":              {Dir: true, Mode: 0o500},
		"exec.sh":         {Content: "#!/bin/sh\n", Mode: 0o750},
		"empty/a/b/c/dir": {Dir: true},
	})
	a.MustRun("save", "ci-main")
	a.MustRun("push", "ci-main")
	want := treetest.MustRead(t, a.data)

	if err := os.Remove(b.data); err != nil { // a fresh runner: no DATA_DIR
		t.Fatal(err)
	}
	var fast, slow syncOutput
	res := b.runJSON(&fast, "pull", "ci-main", "--restore")
	if fast.Restore == nil || fast.Restore.FilesWritten == 0 || fast.Restore.Resumed || fast.Restore.Backup != nil {
		t.Fatalf("pull --restore: %+v", fast.Restore)
	}
	treetest.AssertEqual(t, want, treetest.MustRead(t, b.data))
	if got, old := keysOf(t, restoreObject(t, res.Stdout)), restoreKeys(t); !slices.Equal(got, old) {
		t.Errorf("pull --restore --json restore keys %v, restore --json prints %v", got, old)
	}

	// The same on c the old way: pull, then restore.
	c.runJSON(&slow, "pull", "ci-main")
	var rest restoreOutput
	c.runJSON(&rest, "restore", "ci-main")
	treetest.AssertEqual(t, treetest.MustRead(t, c.data), treetest.MustRead(t, b.data))
	if fast.Blocks != slow.Blocks || fast.Bytes != slow.Bytes || fast.Restore.FilesWritten != rest.FilesWritten || fast.Restore.BytesWritten != rest.BytesWritten {
		t.Errorf("pull --restore: %+v / %+v; pull then restore: %+v / %+v", fast, *fast.Restore, slow, rest)
	}
	for _, e := range []*env{b, c} {
		var v verifyOutput
		e.runJSON(&v, "verify", "--read-data")
		if !v.OK || v.Snapshots != 1 {
			t.Errorf("verify after pull: %+v", v)
		}
	}

	var st statusOutput
	b.runJSON(&st, "status")
	if st.Changed || st.InterruptedRestore != "" || st.State != "ci-main" {
		t.Errorf("status after pull --restore: %+v", st)
	}
	var again restoreOutput
	b.runJSON(&again, "restore", "ci-main")
	if again.FilesWritten != 0 || again.Backup != nil {
		t.Errorf("restore after pull --restore: %+v, want nothing written", again)
	}
	var sv saveOutput
	b.runJSON(&sv, "save", "ci-main")
	if sv.FilesRead != 0 || sv.NewBlocks != 0 {
		t.Errorf("save after pull --restore read %d files, stored %d blocks, want none", sv.FilesRead, sv.NewBlocks)
	}

	// DATA_DIR with content statepack never saw: refused before the
	// pull; with --overwrite pulled, then restored after a backup.
	d := newEnv(t)
	d.Env["STATEPACK_REMOTE"] = remoteDir
	d.write(map[string]treetest.Spec{"mine.txt": {Content: "unsaved work"}})
	if res := d.Run("pull", "ci-main", "--restore"); res.Code != 1 || !strings.Contains(res.Stderr, "never saved or restored") || !strings.Contains(res.Stderr, "--overwrite") {
		t.Fatalf("pull --restore over content statepack never saw: exit %d: %s", res.Code, res.Stderr)
	}
	var withData syncOutput
	d.runJSON(&withData, "pull", "ci-main", "--restore", "--overwrite")
	if withData.Restore == nil || withData.Restore.Backup == nil {
		t.Fatalf("pull --restore over unsaved content: %+v", withData.Restore)
	}
	treetest.AssertEqual(t, want, treetest.MustRead(t, d.data))
}

// restoreObject returns the "restore" member of a pull --json document.
func restoreObject(t *testing.T, doc string) string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatal(err)
	}
	return string(m["restore"])
}

// restoreKeys are the keys restore --json prints.
func restoreKeys(t *testing.T) []string {
	t.Helper()
	out, err := json.Marshal(restoreOutput{})
	if err != nil {
		t.Fatal(err)
	}
	return keysOf(t, string(out))
}

// mkRemoteDir makes an empty directory for a directory remote: a first
// push creates the repository in it, while a directory that does not
// exist is refused as a typo.
func mkRemoteDir(t *testing.T, e *env) string {
	t.Helper()
	d := filepath.Join(e.root, "remote")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestPushToMissingDirectory: a push to a directory that does not exist
// is refused (a mistyped path must not become a new remote) and creates
// nothing; `init --remote` makes it, and the push then goes through.
func TestPushToMissingDirectory(t *testing.T) {
	e := newEnv(t)
	e.write(sampleTree())
	e.MustRun("save", "main")
	typo := filepath.Join(e.root, "remtoe", "states")
	res := e.Run("push", "main", "--remote", typo)
	if res.Code != 1 || !strings.Contains(res.Stderr, "remote directory "+typo+" does not exist") || !strings.Contains(res.Stderr, "statepack init --remote") {
		t.Fatalf("push to a missing directory: exit %d: %s", res.Code, res.Stderr)
	}
	if _, err := os.Stat(filepath.Join(e.root, "remtoe")); !os.IsNotExist(err) {
		t.Fatalf("the push created the mistyped path: %v", err)
	}
	e.MustRun("init", "--remote", typo)
	e.MustRun("push", "main", "--remote", typo)
}
