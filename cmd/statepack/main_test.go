package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/statepack/statepack/internal/testbin"
	"github.com/statepack/statepack/internal/treetest"
)

func TestMain(m *testing.M) { testbin.Main(m) }

// env is one isolated user: a home, a store, a DATA_DIR, and the built
// binary to run with them.
type env struct {
	*testbin.Runner
	t     *testing.T
	root  string
	store string
	data  string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	r := testbin.New(t)
	root := t.TempDir()
	e := &env{Runner: r, t: t, root: root, store: filepath.Join(root, "store"), data: filepath.Join(root, "data")}
	r.Env["STATEPACK_STORE"] = e.store
	r.Env["DATA_DIR"] = e.data
	if err := os.MkdirAll(e.data, 0o755); err != nil {
		t.Fatal(err)
	}
	return e
}

// write creates files under DATA_DIR.
func (e *env) write(files map[string]treetest.Spec) { e.t.Helper(); treetest.Write(e.t, e.data, files) }

// sampleTree is a small DATA_DIR with the kinds of entries LocalStack's has.
func sampleTree() map[string]treetest.Spec {
	return map[string]treetest.Spec{
		"api_states/sqs/000000000000/us-east-1/store.state": {Content: strings.Repeat("sqs state ", 3000)},
		"api_states/s3/000000000000/us-east-1/store.state":  {Content: strings.Repeat("s3 state ", 2000)},
		"dynamodb/000000000000_us-east-1.db":                {Content: strings.Repeat("\x00page", 20000), Mode: 0o600},
		"kinesis/stream.json":                               {Content: `{"records": []}`},
		"s3/bucket/object with spaces.txt":                  {Content: "hello, world"},
		"s3/bucket/ünïcode":                                 {Content: ""},
		"empty-dir":                                         {Dir: true},
		"current":                                           {Link: "kinesis/stream.json"},
	}
}

// runJSON runs args with --json, requires success and decodes stdout into
// v, rejecting fields v does not declare.
func (e *env) runJSON(v any, args ...string) testbin.Result {
	e.t.Helper()
	res := e.MustRun(append([]string{"--json"}, args...)...)
	dec := json.NewDecoder(strings.NewReader(res.Stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		e.t.Fatalf("decode %s: %v\n%s", strings.Join(args, " "), err, res.Stdout)
	}
	if dec.More() {
		e.t.Fatalf("%s printed more than one JSON document:\n%s", strings.Join(args, " "), res.Stdout)
	}
	return res
}

// keysOf decodes one JSON object and returns its keys, sorted.
func keysOf(t *testing.T, doc string) []string {
	t.Helper()
	var m map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader([]byte(doc)))
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, doc)
	}
	if dec.More() {
		t.Fatalf("more than one JSON document:\n%s", doc)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sorted(s ...string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}
