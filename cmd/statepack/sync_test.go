package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/statepack/statepack/internal/treetest"
)

// TestRemoteFlow: two machines share a state through a directory remote.
func TestRemoteFlow(t *testing.T) {
	a, b := newEnv(t), newEnv(t)
	remoteDir := filepath.Join(a.root, "remote")
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
