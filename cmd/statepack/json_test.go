package main

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/statepack/statepack/internal/treetest"
)

// TestJSONSchema pins the field names of every command's --json document,
// the ones its output struct documents (and docs/json.md copies): a renamed
// or dropped field fails here.
func TestJSONSchema(t *testing.T) {
	e := newEnv(t)
	e.Env["STATEPACK_REMOTE"] = "file://" + filepath.Join(e.root, "remote")
	e.write(sampleTree())
	e.MustRun("save", "main", "-m", "one")
	e.write(map[string]treetest.Spec{"kinesis/stream.json": {Content: "changed"}})

	syncKeys := []string{"state", "requested", "fallback", "snapshot", "remote", "up_to_date", "blocks", "bytes",
		"skipped_blocks", "skipped_bytes", "packs", "requests", "lookup_published", "duration_s", "replaced", "restore"}
	snapKeys := []string{"snapshot", "parent", "state", "created", "message", "labels", "host", "user", "tool", "files", "dirs", "symlinks", "bytes"}
	restoreKeys := []string{"name", "snapshot", "data_dir", "files_written", "bytes_written", "bytes_reused", "files_skipped", "removed", "resumed", "backup", "localstack", "duration_s"}
	tests := []struct {
		name string
		args []string
		keys []string
	}{
		{"init", []string{"init"}, []string{"location", "remote", "created", "repository_id", "format_version", "chunk_min", "chunk_avg", "chunk_max", "pack_size"}},
		{"save", []string{"save", "main", "--label", "k=v"}, []string{"state", "snapshot", "parent", "files", "dirs", "symlinks", "bytes", "files_read", "bytes_read",
			"new_blocks", "new_bytes", "stored_bytes", "warnings", "localstack", "duration_s"}},
		{"list", []string{"list"}, []string{"location", "states", "damaged"}},
		{"log", []string{"log", "main"}, []string{"state", "location", "versions"}},
		{"show", []string{"show", "main~1"}, snapKeys},
		{"show --files", []string{"show", "main", "--files"}, append(snapKeys, "entries")},
		{"diff A B", []string{"diff", "main~1", "main"}, []string{"from", "to", "data_dir", "added", "removed", "modified", "changes"}},
		{"diff A", []string{"diff", "main"}, []string{"from", "to", "data_dir", "added", "removed", "modified", "changes"}},
		{"status", []string{"status"}, []string{"data_dir", "data_dir_exists", "store", "store_exists", "remote", "persistence", "features",
			"snapshot", "state", "changed", "added", "removed", "modified", "interrupted_restore"}},
		{"restore", []string{"restore", "main~1"}, restoreKeys},
		{"verify", []string{"verify"}, []string{"location", "read_data", "ok", "states", "snapshots", "indexes", "packs", "blocks", "bytes_read", "problems", "repair", "duration_s"}},
		{"init --remote", []string{"init", "--remote"}, []string{"location", "remote", "created", "repository_id", "format_version", "chunk_min", "chunk_avg", "chunk_max", "pack_size"}},
		{"push", []string{"push", "main"}, syncKeys},
		{"list --remote", []string{"list", "--remote"}, []string{"location", "states", "damaged"}},
		{"pull", []string{"pull", "main", "--restore"}, syncKeys},
		{"verify --remote", []string{"verify", "--remote", "--read-data"}, []string{"location", "read_data", "ok", "states", "snapshots", "indexes", "packs", "blocks", "bytes_read", "problems", "repair", "duration_s"}},
		{"forget", []string{"forget", "main", "--keep-last", "1"}, []string{"location", "state", "all", "kept", "removed"}},
		{"prune", []string{"prune"}, []string{"location", "snapshots_removed", "packs_removed", "packs_repacked", "packs_written", "bytes_freed", "blocks_kept", "duration_s"}},
		{"unlock", []string{"unlock", "--remote"}, []string{"location", "removed", "remaining"}},
		{"env", []string{"env"}, []string{"settings"}},
		{"completion", []string{"completion", "fish"}, []string{"shell", "script"}},
		{"version", []string{"version"}, []string{"version", "commit", "go_version", "format_version"}},
	}
	docs := map[string]string{}
	for _, tc := range tests {
		res := e.MustRun(append([]string{"--json"}, tc.args...)...)
		if got := keysOf(t, res.Stdout); !reflect.DeepEqual(got, sorted(tc.keys...)) {
			t.Errorf("%s --json fields:\n got %v\nwant %v", tc.name, got, sorted(tc.keys...))
		}
		docs[tc.name] = res.Stdout
	}

	// Nested documents, and the types scripts rely on.
	var list listOutput
	decodeStrict(t, docs["list"], &list)
	if len(list.States) != 1 || len(list.States[0].Snapshot) != 64 || list.States[0].Versions != 2 {
		t.Errorf("list: %+v", list)
	}
	st := map[string]any{}
	_ = json.Unmarshal([]byte(docs["list"]), &st)
	if got := keysOf(t, mustJSON(t, st["states"].([]any)[0])); !reflect.DeepEqual(got, sorted("state", "snapshot", "versions", "files", "bytes", "created", "host", "message")) {
		t.Errorf("list states[] fields: %v", got)
	}
	var show showOutput
	decodeStrict(t, docs["show --files"], &show)
	if got := keysOf(t, mustJSON(t, show.Entries[0])); !reflect.DeepEqual(got, sorted("path", "type", "mode", "uid", "gid", "mtime", "size", "target", "blocks")) &&
		!reflect.DeepEqual(got, sorted("path", "type", "mode", "uid", "gid", "mtime", "size", "blocks")) {
		t.Errorf("show entries[] fields: %v", got)
	}
	var diff map[string][]map[string]any
	_ = json.Unmarshal([]byte(docs["diff A B"]), &diff)
	if ch := diff["changes"]; len(ch) != 1 || ch[0]["path"] != "kinesis/stream.json" || ch[0]["kind"] != "modified" || ch[0]["old_size"] == nil || ch[0]["what"] == nil {
		t.Errorf("diff changes[]: %v", diff["changes"])
	}
	var pull syncOutput
	decodeStrict(t, docs["pull"], &pull)
	if pull.Restore == nil || pull.State != "main" || !pull.UpToDate {
		t.Errorf("pull --restore: %+v", pull)
	}
	if got := keysOf(t, mustJSON(t, pull.Restore)); !reflect.DeepEqual(got, sorted(restoreKeys...)) {
		t.Errorf("pull restore fields: %v", got)
	}
	var status map[string]any
	_ = json.Unmarshal([]byte(docs["status"]), &status)
	if f, _ := status["features"].(map[string]any); f["persistence"] != "initialized" {
		t.Errorf("status features: %v", status["features"])
	}
	if !strings.Contains(docs["save"], `"duration_s": `) || strings.Contains(docs["save"], `"warnings": null`) {
		t.Errorf("save: durations are seconds and lists are never null:\n%s", docs["save"])
	}
}

func decodeStrict(t *testing.T, doc string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode: %v\n%s", err, doc)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
