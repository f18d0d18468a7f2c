package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/statepack/statepack/internal/output"
	"github.com/statepack/statepack/internal/treetest"
)

// goTypeName catches Go type names leaking into messages.
var goTypeName = regexp.MustCompile(`\*?\b(main|archive|remote|cli|fs|os|errors)\.[A-Z]\w*`)

// TestErrors runs each mistake a user can make and checks the exit status,
// the JSON code, and that the one-line message names the cause.
func TestErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(e *env) // optional
		args  []string
		exit  int
		code  string
		want  []string // substrings of the message
	}{
		{name: "bad flag", args: []string{"save", "x", "--bogus"}, exit: 2, code: "usage", want: []string{"-bogus", "statepack save --help"}},
		{name: "bad global flag value", args: []string{"--timeout", "soon", "list"}, exit: 2, code: "usage", want: []string{"timeout"}},
		{name: "missing argument", args: []string{"restore"}, exit: 2, code: "usage", want: []string{"missing SNAPSHOT"}},
		{name: "too many arguments", args: []string{"log", "a", "b"}, exit: 2, code: "usage", want: []string{"too many"}},
		{name: "unknown command", args: []string{"frobnicate"}, exit: 2, code: "usage", want: []string{`unknown command "frobnicate"`}},
		{name: "mistyped command", args: []string{"restor"}, exit: 2, code: "usage", want: []string{`unknown command "restor"`, `did you mean "restore"?`}},
		{name: "bad state name", args: []string{"save", "no/slashes"}, exit: 2, code: "usage", want: []string{"invalid state name"}},
		{name: "bad snapshot name", args: []string{"restore", "a b~x"}, exit: 2, code: "usage", want: []string{"invalid snapshot name"}},
		{name: "bad pattern", args: []string{"save", "x", "--include", "a[b"}, exit: 2, code: "usage", want: []string{"invalid pattern"}},
		{name: "bad label", args: []string{"save", "x", "--label", "novalue"}, exit: 2, code: "usage", want: []string{"key=value"}},
		{name: "forget without a rule", args: []string{"forget", "x"}, exit: 2, code: "usage", want: []string{"--keep-last"}},
		{name: "pack size too large", args: []string{"init", "--pack-size", "256MiB"}, exit: 2, code: "usage", want: []string{"--pack-size 256MiB", "1 MiB to 64 MiB"}},
		{name: "no remote", args: []string{"push", "x"}, exit: 2, code: "usage", want: []string{"no remote is set", "STATEPACK_REMOTE"}},
		{name: "malformed remote", args: []string{"push", "x", "--remote", "s3://"}, exit: 2, code: "usage", want: []string{"invalid remote"}},
		{name: "unknown state", setup: saved, args: []string{"restore", "nope"}, exit: 3, code: "not_found", want: []string{"state 'nope' not found", "`statepack list`"}},
		{name: "unknown version", setup: saved, args: []string{"show", "main~5"}, exit: 3, code: "not_found", want: []string{"main~5", "`statepack log main` lists its versions"}},
		{name: "mistyped state", setup: saved, args: []string{"restore", "mian"}, exit: 3, code: "not_found", want: []string{"state 'mian' not found", "did you mean 'main'?"}},
		{name: "unknown id prefix", setup: saved, args: []string{"show", "0123456789abcdef"}, exit: 3, code: "not_found", want: []string{"0123456789abcdef"}},
		{name: "ambiguous id prefix", setup: twinSnapshots, args: []string{"show", "abcdef01"}, exit: 2, code: "usage", want: []string{"matches 2 snapshots", "more digits"}},
		{name: "DATA_DIR unset", setup: func(e *env) { delete(e.Env, "DATA_DIR") }, args: []string{"save", "x"}, exit: 1, code: "no_data_dir",
			want: []string{"DATA_DIR is not set", "set DATA_DIR or pass --data-dir"}},
		{name: "DATA_DIR not a directory", setup: func(e *env) { e.Env["DATA_DIR"] = writeFile(e, "file", "x") }, args: []string{"save", "x"}, exit: 1, code: "failed",
			want: []string{"is not a directory"}},
		{name: "DATA_DIR missing", setup: func(e *env) { e.Env["DATA_DIR"] = filepath.Join(e.root, "nowhere") }, args: []string{"save", "x"}, exit: 1, code: "failed",
			want: []string{"does not exist"}},
		{name: "store not a repository", setup: func(e *env) { writeFile(e, "store/precious.txt", "mine") }, args: []string{"list"}, exit: 1, code: "not_repository",
			want: []string{"holds no statepack repository", "--store"}},
		{name: "store of a newer format", setup: newerStore, args: []string{"list"}, exit: 1, code: "newer_format", want: []string{"upgrade statepack"}},
		{name: "DATA_DIR inside the store", setup: func(e *env) { e.Env["DATA_DIR"] = filepath.Join(e.store, "data") }, args: []string{"save", "x"}, exit: 1, code: "failed",
			want: []string{"refusing DATA_DIR", "inside the store", "apart from"}},
		{name: "DATA_DIR contains the store", setup: func(e *env) { e.Env["STATEPACK_STORE"] = filepath.Join(e.data, ".store") }, args: []string{"save", "x"}, exit: 1, code: "failed",
			want: []string{"contains the store"}},
		{name: "DATA_DIR with a leading space", setup: func(e *env) { e.Env["DATA_DIR"] = " " + e.data }, args: []string{"restore", "x"}, exit: 2, code: "usage",
			want: []string{"white space"}},
		{name: "DATA_DIR is the store", setup: func(e *env) { e.Env["DATA_DIR"] = e.store }, args: []string{"restore", "x"}, exit: 1, code: "failed", want: []string{"is the store"}},
		{name: "locked", setup: locked, args: []string{"save", "main"}, exit: 1, code: "locked", want: []string{"locked by `prune`", fmt.Sprintf("PID %d", os.Getpid()), "statepack unlock"}},
		{name: "timeout", setup: saved, args: []string{"--timeout", "1ns", "save", "main"}, exit: 1, code: "canceled", want: []string{"--timeout"}},
		{name: "remote missing", setup: saved, args: []string{"list", "--remote=/nonexistent/remote"}, exit: 1, code: "not_repository", want: []string{"statepack init --remote"}},
		{name: "pull absent everywhere", setup: pushed, args: []string{"pull", "pr-1", "--fallback", "pr-2"}, exit: 3, code: "not_found", want: []string{"pr-1", "pr-2"}},
		{name: "pull from a missing directory", args: []string{"pull", "main", "--remote", "/nonexistent/typo/remote"}, exit: 1, code: "failed",
			want: []string{"remote directory /nonexistent/typo/remote does not exist", "statepack init --remote"}},
		{name: "endpoint without its scheme, answering plain HTTP", setup: plainHTTPServer, args: []string{"list", "--remote", "s3://bucket/p"}, exit: 1, code: "failed",
			want: []string{"answers plain HTTP", "AWS_ENDPOINT_URL=http://"}},
		{name: "pull from an empty directory", setup: emptyRemoteDir, args: []string{"pull", "main"}, exit: 3, code: "not_found",
			want: []string{"nothing was pushed there yet"}},
		{name: "push not a fast-forward", setup: diverged, args: []string{"push", "main"}, exit: 1, code: "conflict", want: []string{"pull first, or push --force"}},
		{name: "LocalStack down at restore", setup: saved, args: []string{"restore", "main", "--localstack=http://127.0.0.1:1"}, exit: 1, code: "failed",
			want: []string{"LocalStack is not reachable at http://127.0.0.1:1", "nothing was changed", "start LocalStack"}},
		{name: "init with other parameters", setup: func(e *env) { e.MustRun("init") }, args: []string{"init", "--pack-size", "32MiB"}, exit: 1, code: "failed",
			want: []string{"other parameters", "packs 16 MiB", "cannot change", "leave out the parameters"}},
		{name: "verify finds damage", setup: damaged, args: []string{"verify", "--read-data"}, exit: 1, code: "corrupt", want: []string{"problem"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if tc.setup != nil {
				tc.setup(e)
			}
			res := e.Run(tc.args...)
			checkFailure(t, res.Code, res.Stderr, tc.exit, tc.want, false)
			if goTypeName.MatchString(res.Stderr) {
				t.Errorf("message shows a Go type name: %s", res.Stderr)
			}
			jres := e.Run(append([]string{"--json"}, tc.args...)...)
			var doc output.ErrorDoc
			dec := json.NewDecoder(strings.NewReader(jres.Stderr))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&doc); err != nil {
				t.Fatalf("--json error is not JSON: %v\n%s", err, jres.Stderr)
			}
			if jres.Code != tc.exit || doc.Error.Code != tc.code {
				t.Errorf("--json: exit %d code %q, want %d %q: %s", jres.Code, doc.Error.Code, tc.exit, tc.code, jres.Stderr)
			}
		})
	}
}

func checkFailure(t *testing.T, code int, stderr string, exit int, want []string, _ bool) {
	t.Helper()
	if code != exit {
		t.Errorf("exit %d, want %d; stderr: %s", code, exit, stderr)
	}
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "statepack: ") {
		t.Errorf("want one line starting with \"statepack: \", got:\n%s", stderr)
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("message lacks %q: %s", w, stderr)
		}
	}
}

// plainHTTPServer points the S3 settings at a plain HTTP server, written
// without a scheme (so taken as HTTPS), as a newcomer writes MinIO's.
func plainHTTPServer(e *env) {
	srv := httptest.NewServer(http.NotFoundHandler())
	e.t.Cleanup(srv.Close)
	e.Env["AWS_ENDPOINT_URL"] = strings.TrimPrefix(srv.URL, "http://")
	e.Env["AWS_ACCESS_KEY_ID"], e.Env["AWS_SECRET_ACCESS_KEY"], e.Env["AWS_REGION"] = "key", "secret", "us-east-1"
}

// emptyRemoteDir points STATEPACK_REMOTE at an existing, empty directory.
func emptyRemoteDir(e *env) {
	d := filepath.Join(e.root, "empty-remote")
	if err := os.MkdirAll(d, 0o755); err != nil {
		e.t.Fatal(err)
	}
	e.Env["STATEPACK_REMOTE"] = d
}

func writeFile(e *env, rel, content string) string {
	e.t.Helper()
	p := filepath.Join(e.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// saved: a store with one state, main.
func saved(e *env) {
	e.write(sampleTree())
	e.MustRun("save", "main")
}

// pushed: main saved and pushed to a directory remote.
func pushed(e *env) {
	saved(e)
	e.Env["STATEPACK_REMOTE"] = filepath.Join(e.root, "remote")
	e.MustRun("init", "--remote")
	e.MustRun("push", "main")
}

// diverged: the remote's main has a version the local main lacks.
func diverged(e *env) {
	pushed(e)
	other := newEnv(e.t)
	other.Env["STATEPACK_REMOTE"] = e.Env["STATEPACK_REMOTE"]
	other.MustRun("pull", "main", "--restore")
	other.write(map[string]treetest.Spec{"their-change": {Content: "theirs"}})
	other.MustRun("save", "main")
	other.MustRun("push", "main")
	e.write(map[string]treetest.Spec{"my-change": {Content: "mine"}})
	e.MustRun("save", "main")
}

// twinSnapshots: two snapshot objects whose ids share 8 hex digits.
func twinSnapshots(e *env) {
	saved(e)
	for _, id := range []string{strings.Repeat("abcdef01", 7) + "00000001", strings.Repeat("abcdef01", 7) + "00000002"} {
		writeFile(e, "store/snapshots/"+id, "not a manifest")
	}
}

// newerStore: a repository written by a future statepack.
func newerStore(e *env) {
	writeFile(e, "store/config", `{"version": 99, "id": "x", "chunker": {"min": 16384, "avg": 65536, "max": 262144}, "pack_size": 16777216}`)
}

// locked: prune (this live process) holds the exclusive lock.
func locked(e *env) {
	saved(e)
	host, _ := os.Hostname()
	lock, _ := json.Marshal(map[string]any{"exclusive": true, "host": host, "pid": os.Getpid(), "command": "prune", "time": time.Now().UTC()})
	writeFile(e, "store/locks/0123456789abcdef", string(lock))
}

// damaged: one byte of a pack flipped.
func damaged(e *env) {
	saved(e)
	packs, _ := filepath.Glob(filepath.Join(e.store, "packs", "*", "*"))
	if len(packs) == 0 {
		e.t.Fatal("no packs")
	}
	data, err := os.ReadFile(packs[0])
	if err != nil {
		e.t.Fatal(err)
	}
	data[len(data)/3] ^= 0xff
	if err := os.WriteFile(packs[0], data, 0o644); err != nil {
		e.t.Fatal(err)
	}
}
