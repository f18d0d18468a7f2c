package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/statepack/statepack/internal/output"
	"github.com/statepack/statepack/internal/treetest"
)

// TestRestoreLocalStackDown: restore --localstack with LocalStack down,
// or not ready, refuses before it touches anything: DATA_DIR keeps its
// unsaved content and no backup version is made.
func TestRestoreLocalStackDown(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	starting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "starting", http.StatusServiceUnavailable)
	}))
	defer starting.Close()
	for name, url := range map[string]string{"down": down.URL, "not ready": starting.URL} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			saved(e)
			e.write(map[string]treetest.Spec{"api_states/sqs/unsaved": {Content: "only here"}})
			before := treetest.MustRead(t, e.data)
			res := e.Run("restore", "main", "--localstack="+url, "--services", "sqs")
			checkFailure(t, res.Code, res.Stderr, 1, []string{url, "nothing was changed", "start LocalStack"}, false)
			treetest.AssertEqual(t, before, treetest.MustRead(t, e.data))
			var list listOutput
			e.runJSON(&list, "list")
			if len(list.States) != 1 {
				t.Errorf("states after the refused restore: %+v", list.States)
			}
		})
	}
}

// TestRestoreLocalStackFailsAfter: when LocalStack answers but does not
// load what restore wrote, restore says what it did (DATA_DIR restored,
// where its previous content went) and that LocalStack was not reloaded,
// with exit status 4; running it again once LocalStack works writes
// nothing and only loads.
func TestRestoreLocalStackFailsAfter(t *testing.T) {
	e := newEnv(t)
	saved(e)
	want := treetest.MustRead(t, e.data)
	e.write(map[string]treetest.Spec{"api_states/sqs/unsaved": {Content: "only here"}})
	bad := localStack(t, "sqs", nil)
	res := e.Run("restore", "main", "--localstack="+bad.URL)
	checkFailure(t, res.Code, res.Stderr, 4, []string{
		"DATA_DIR restored from main", "saved as restore-backup", "LocalStack was not reloaded", "could not load the state of sqs", "run the same command again",
	}, false)
	treetest.AssertEqual(t, want, treetest.MustRead(t, e.data))
	jres := e.Run("--json", "restore", "main", "--localstack="+bad.URL)
	var doc output.ErrorDoc
	if err := json.Unmarshal([]byte(jres.Stderr), &doc); err != nil || jres.Code != 4 || doc.Error.Code != output.CodeNotLoaded {
		t.Errorf("--json: exit %d, %v: %s", jres.Code, err, jres.Stderr)
	}
	calls := make(chan string, 4)
	good := localStack(t, "", calls)
	var r restoreOutput
	e.runJSON(&r, "restore", "main", "--localstack="+good.URL)
	if r.FilesWritten != 0 || r.Backup != nil || r.LocalStack == nil || <-calls != "load" {
		t.Errorf("restore again: %+v", r)
	}
}

// TestHelpOptionalValue: --localstack may be given alone, and its help
// says so rather than showing a placeholder value.
func TestHelpOptionalValue(t *testing.T) {
	e := newEnv(t)
	for _, cmd := range []string{"save", "restore"} {
		res := e.MustRun(cmd, "--help")
		if !strings.Contains(res.Stdout, "--localstack[=URL]") || strings.Contains(res.Stdout, "--localstack value") {
			t.Errorf("%s --help:\n%s", cmd, res.Stdout)
		}
	}
}

// TestInitExisting: init on a store that exists says there is nothing to
// do and how to use it; with other parameters it refuses, in human units,
// saying what to do instead.
func TestInitExisting(t *testing.T) {
	e := newEnv(t)
	if res := e.MustRun("init"); !strings.HasPrefix(res.Stdout, "created a statepack repository") {
		t.Fatalf("first init: %s", res)
	}
	res := e.MustRun("init")
	for _, want := range []string{"already holds a statepack repository", "64 KiB", "nothing to do", "statepack save STATE"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("init again lacks %q: %s", want, res.Stdout)
		}
	}
	res = e.Run("init", "--chunk-avg", "128KiB")
	checkFailure(t, res.Code, res.Stderr, 1, []string{"other parameters", "16 KiB/64 KiB/256 KiB", "packs 16 MiB", "leave out the parameters", "--store"}, false)
	if strings.Contains(res.Stderr, "65536") {
		t.Errorf("sizes in bytes: %s", res.Stderr)
	}
}

// TestRestoreBarCountsFiles: on a terminal, the restore bar counts the
// files it restores, not the directories around them.
func TestRestoreBarCountsFiles(t *testing.T) {
	e := newEnv(t)
	e.write(bigTree())
	e.MustRun("save", "main")
	if err := os.RemoveAll(e.data); err != nil {
		t.Fatal(err)
	}
	term, _ := runOnTerminal(t, e, "restore", "main")
	if !strings.Contains(term, "/7 files") {
		t.Errorf("the bar does not count the 7 files: %q", term)
	}
	if _, err := os.Stat(filepath.Join(e.data, "s3/bucket/large.bin")); err != nil {
		t.Error(err)
	}
}

// TestStatusAfterPartialRestore: after restore --services, status says
// what DATA_DIR is (the version it was, with the service's paths from
// another) rather than "never saved or restored", and tells changes
// since; a save then stores exactly what DATA_DIR holds.
func TestStatusAfterPartialRestore(t *testing.T) {
	e := newEnv(t)
	e.write(sampleTree())
	var v1, v2, v3 saveOutput
	e.runJSON(&v1, "save", "main")
	e.write(map[string]treetest.Spec{
		"api_states/sqs/000000000000/us-east-1/store.state": {Content: "sqs v2"},
		"dynamodb/000000000000_us-east-1.db":                {Content: "dynamodb v2"},
	})
	e.runJSON(&v2, "save", "main")
	e.MustRun("restore", "main~1", "--services", "sqs")

	var st statusOutput
	e.runJSON(&st, "status")
	p := st.Partial
	if st.Snapshot != "" || p == nil || p.Base != v2.Snapshot || p.BaseState != "main" || len(p.Restores) != 1 ||
		p.Restores[0].Snapshot != v1.Snapshot || strings.Join(p.Restores[0].Only, ",") != "api_states/sqs" || st.Changed {
		t.Fatalf("status after restore --services sqs: %+v %+v", st, p)
	}
	human := e.MustRun("status").Stdout
	for _, want := range []string{"main " + v2.Snapshot[:8] + " (saved or restored)", "api_states/sqs restored from main " + v1.Snapshot[:8], "none since then"} {
		if !strings.Contains(human, want) {
			t.Errorf("human status lacks %q:\n%s", want, human)
		}
	}
	if strings.Contains(human, "never saved") {
		t.Errorf("human status:\n%s", human)
	}

	// Restoring the same paths again is recorded once; other paths add a line.
	e.MustRun("restore", "main~1", "--services", "sqs")
	e.MustRun("restore", "main~1", "--only", "kinesis/**")
	e.write(map[string]treetest.Spec{"dynamodb/000000000000_us-east-1.db": {Content: "changed since"}})
	e.runJSON(&st, "status")
	if p := st.Partial; p == nil || len(p.Restores) != 2 || p.Restores[1].Only[0] != "kinesis/**" || !st.Changed || st.Modified != 1 || st.Added+st.Removed != 0 {
		t.Fatalf("status after a second partial restore and a change: %+v %+v", st, st.Partial)
	}

	// The save stores DATA_DIR as it is: sqs from v1, dynamodb as changed.
	want := treetest.MustRead(t, e.data)
	e.runJSON(&v3, "save", "main")
	st = statusOutput{}
	e.runJSON(&st, "status")
	if st.Partial != nil || st.Snapshot != v3.Snapshot || st.Changed {
		t.Fatalf("status after the save: %+v", st)
	}
	other := filepath.Join(e.root, "other")
	e.MustRun("--data-dir", other, "restore", v3.Snapshot[:12])
	treetest.AssertEqual(t, want, treetest.MustRead(t, other))
	if got, _ := os.ReadFile(filepath.Join(other, "api_states/sqs/000000000000/us-east-1/store.state")); !strings.HasPrefix(string(got), "sqs state") {
		t.Errorf("the save after the partial restore holds sqs %q, want v1's", got)
	}
}

// TestStatusPartialIntoNew: a partial restore into a DATA_DIR statepack
// never saved: status names it and compares the restored paths only.
func TestStatusPartialIntoNew(t *testing.T) {
	e := newEnv(t)
	e.write(sampleTree())
	var v1 saveOutput
	e.runJSON(&v1, "save", "main")
	fresh := filepath.Join(e.root, "fresh")
	e.MustRun("--data-dir", fresh, "restore", "main", "--only", "kinesis/**")
	treetest.Write(t, fresh, map[string]treetest.Spec{"unrelated": {Content: "x"}})
	var st statusOutput
	e.runJSON(&st, "--data-dir", fresh, "status")
	if p := st.Partial; p == nil || p.Base != "" || len(p.Restores) != 1 || p.Restores[0].Snapshot != v1.Snapshot || st.Changed {
		t.Fatalf("status: %+v %+v", st, st.Partial)
	}
	human := e.MustRun("--data-dir", fresh, "status").Stdout
	for _, want := range []string{"never saved or restored as a whole", "kinesis/** restored from main", "none in the restored paths since then"} {
		if !strings.Contains(human, want) {
			t.Errorf("human status lacks %q:\n%s", want, human)
		}
	}
}
