package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/statepack/statepack/internal/testbin"
	"github.com/statepack/statepack/internal/treetest"
)

// TestStatusPersistence: status reports persistence the way LocalStack's
// /health does, and looking does not create the store.
func TestStatusPersistence(t *testing.T) {
	tests := []struct {
		name    string
		dataDir bool
		want    string
	}{
		{"DATA_DIR unset", false, "disabled"},
		{"DATA_DIR set", true, "initialized"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if !tc.dataDir {
				delete(e.Env, "DATA_DIR")
			}
			var st statusOutput
			e.runJSON(&st, "status")
			if st.Persistence != tc.want || st.Features["persistence"] != tc.want || st.StoreExists {
				t.Errorf("status: %+v", st)
			}
			if _, err := os.Stat(e.store); err == nil {
				t.Errorf("status created the store")
			}
			human := e.MustRun("status")
			if !strings.Contains(human.Stdout, "persistence  "+tc.want) {
				t.Errorf("human status:\n%s", human.Stdout)
			}
		})
	}
}

// TestQuiet: --quiet prints nothing at all when things go well.
func TestQuiet(t *testing.T) {
	e := newEnv(t)
	e.write(sampleTree())
	for _, args := range [][]string{
		{"--quiet", "save", "main"}, {"save", "main", "-q"}, {"-q", "list"}, {"log", "main", "--quiet"},
		{"-q", "restore", "main"}, {"-q", "verify", "--read-data"}, {"-q", "status"}, {"-q", "prune"},
	} {
		res := e.MustRun(args...)
		if res.Stdout != "" || res.Stderr != "" {
			t.Errorf("%v printed:\n%s", args, res)
		}
	}
}

// TestFlagsAnywhere: global flags and command flags work before or after
// the arguments, the way users type them.
func TestFlagsAnywhere(t *testing.T) {
	e := newEnv(t)
	e.write(sampleTree())
	other := filepath.Join(e.root, "other-store")
	e.MustRun("save", "main", "--store", other, "-m", "msg")
	e.MustRun("--store", other, "forget", "main", "--keep-last", "1")
	var list listOutput
	e.runJSON(&list, "list", "--store="+other)
	if len(list.States) != 1 || list.States[0].Message != "msg" {
		t.Errorf("list of the other store: %+v", list)
	}
	e.runJSON(&list, "list")
	if len(list.States) != 0 {
		t.Errorf("the default store got a state: %+v", list)
	}
}

// TestEnvCommand: where each setting comes from, with secrets masked
// everywhere (also in errors, at any verbosity).
func TestEnvCommand(t *testing.T) {
	e := newEnv(t)
	e.Env["AWS_SECRET_ACCESS_KEY"] = "supersecret"
	e.Env["AWS_SESSION_TOKEN"] = "sessiontokenvalue"
	e.Env["AWS_ACCESS_KEY_ID"] = "AKIDEXAMPLE"
	var out envOutput
	e.runJSON(&out, "--data-dir", e.data, "env")
	got := map[string]settingOutput{}
	for _, s := range out.Settings {
		got[s.Name] = s
	}
	want := map[string][2]string{
		"store": {e.store, "env"}, "data-dir": {e.data, "flag"}, "remote": {"", "unset"},
		"AWS_SECRET_ACCESS_KEY": {"****", "env"}, "AWS_SESSION_TOKEN": {"****", "env"}, "AWS_ACCESS_KEY_ID": {"AKIDEXAMPLE", "env"},
	}
	for name, w := range want {
		if g := got[name]; g.Value != w[0] || g.Source != w[1] {
			t.Errorf("%s = %+v, want value %q from %s", name, g, w[0], w[1])
		}
	}
	delete(e.Env, "STATEPACK_STORE")
	e.runJSON(&out, "env")
	if out.Settings[0].Source != "default" || out.Settings[0].Value != filepath.Join(e.Env["XDG_DATA_HOME"], "statepack") {
		t.Errorf("default store: %+v", out.Settings[0])
	}
	e.Env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:1"
	runs := []testbin.Result{
		e.Run("env"), e.Run("--json", "env"), e.Run("--debug", "env"),
		e.Run("--debug", "--timeout", "3s", "push", "main", "--remote", "s3://bucket/prefix"),
		e.Run("--debug", "--json", "--timeout", "3s", "list", "--remote=s3://bucket"),
	}
	for _, r := range runs {
		if strings.Contains(r.Stdout+r.Stderr, "supersecret") || strings.Contains(r.Stdout+r.Stderr, "sessiontokenvalue") {
			t.Errorf("a secret leaked:\n%s", r)
		}
	}
}

// TestCompletion: scripts for the three shells, and state names offered.
func TestCompletion(t *testing.T) {
	e := newEnv(t)
	e.write(sampleTree())
	e.MustRun("save", "orders-e2e")
	for shell, want := range map[string]string{"bash": "complete -o bashdefault", "zsh": "compdef _statepack statepack", "fish": "complete -c statepack"} {
		res := e.MustRun("completion", shell)
		if !strings.Contains(res.Stdout, want) || !strings.Contains(res.Stdout, "generate-bash-completion") && shell != "fish" {
			t.Errorf("completion %s:\n%s", shell, res.Stdout)
		}
	}
	if res := e.MustRun("restore", "--generate-bash-completion"); !strings.Contains(res.Stdout, "orders-e2e") {
		t.Errorf("restore completion does not offer the state:\n%s", res)
	}
	if res := e.MustRun("--generate-bash-completion"); !strings.Contains(res.Stdout, "save") || !strings.Contains(res.Stdout, "pull") {
		t.Errorf("command completion:\n%s", res)
	}
}

// TestVersion: --version and the version command name the format version;
// version and commit come from -ldflags -X.
func TestVersion(t *testing.T) {
	e := newEnv(t)
	res := e.MustRun("--version")
	for _, want := range []string{"v0.0.0-test", "testcommit", "go1.", "repository format 1"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("--version lacks %q: %s", want, res.Stdout)
		}
	}
	var v versionOutput
	e.runJSON(&v, "version")
	if v.Version != "v0.0.0-test" || v.Commit != "testcommit" || v.FormatVersion != 1 || !strings.HasPrefix(v.GoVersion, "go") {
		t.Errorf("version --json: %+v", v)
	}
}

// TestHelp: every command explains itself with an example.
func TestHelp(t *testing.T) {
	e := newEnv(t)
	app := newSession(nil, nil).newApp()
	for _, c := range app.Commands {
		res := e.MustRun(c.Name, "--help")
		if !strings.Contains(res.Stdout, "Example") || !strings.Contains(res.Stdout, "statepack "+c.Name) {
			t.Errorf("%s --help has no example:\n%s", c.Name, res.Stdout)
		}
	}
}

// localStack is a server that speaks LocalStack's state protocol: POST
// /_localstack/state/{save,load} answers one JSON line per service; GET
// /_localstack/health says it is up.
func localStack(t *testing.T, failing string, calls chan<- string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/_localstack/health" {
			fmt.Fprintln(w, `{"services": {"sqs": "running", "dynamodb": "running"}}`)
			return
		}
		if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/_localstack/state/") {
			http.NotFound(w, r)
			return
		}
		if calls != nil {
			calls <- strings.TrimPrefix(r.URL.Path, "/_localstack/state/")
		}
		var req struct{ Services []string }
		_ = json.NewDecoder(r.Body).Decode(&req)
		services := req.Services
		if len(services) == 0 {
			services = []string{"sqs", "dynamodb"}
		}
		enc := json.NewEncoder(w)
		for _, s := range services {
			status := "ok"
			if s == failing {
				status = "error"
			}
			_ = enc.Encode(map[string]string{"service": s, "status": status})
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestLocalStack: save asks LocalStack to write its state first and names
// a service that failed; restore asks it to load after; a LocalStack that
// is down is a clear error.
func TestLocalStack(t *testing.T) {
	e := newEnv(t)
	e.write(sampleTree())
	calls := make(chan string, 10)
	srv := localStack(t, "", calls)
	var s saveOutput
	e.runJSON(&s, "save", "main", "--localstack", srv.URL, "--services", "sqs")
	if s.LocalStack == nil || len(s.LocalStack.Services) != 1 || s.LocalStack.Services[0].Service != "sqs" || <-calls != "save" {
		t.Fatalf("save --localstack: %+v", s.LocalStack)
	}
	if s.Files != 1 {
		t.Errorf("--services sqs saved %d files, want the one under api_states/sqs", s.Files)
	}
	var r restoreOutput
	e.runJSON(&r, "restore", "main", "--localstack="+srv.URL, "--services", "sqs", "--no-backup")
	if r.LocalStack == nil || <-calls != "load" {
		t.Fatalf("restore --localstack: %+v", r.LocalStack)
	}
	if _, err := os.Stat(filepath.Join(e.data, "kinesis/stream.json")); err != nil {
		t.Errorf("restore --services sqs touched other services: %v", err)
	}

	bad := localStack(t, "dynamodb", nil)
	res := e.Run("save", "main", "--localstack="+bad.URL, "--services", "sqs,dynamodb")
	checkFailure(t, res.Code, res.Stderr, 1, []string{"dynamodb", "LocalStack"}, false)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	res = e.Run("save", "main", "--localstack", down.URL)
	checkFailure(t, res.Code, res.Stderr, 1, []string{"not reachable", down.URL}, false)
}

// TestInterrupt: SIGINT stops a command cleanly, with its own message.
func TestInterrupt(t *testing.T) {
	e := newEnv(t)
	e.write(sampleTree())
	hold := make(chan struct{})
	arrived := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-hold:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(hold)
	cmd := e.Command("save", "main", "--localstack="+srv.URL)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-arrived:
	case <-time.After(30 * time.Second):
		t.Fatal("save never called LocalStack")
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Fatalf("exit %d (%v), want 1; stderr: %s", code, err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("stderr: %s", stderr.String())
	}
	if locks, _ := filepath.Glob(filepath.Join(e.store, "locks", "*")); len(locks) != 0 {
		t.Errorf("locks left behind: %v", locks)
	}
	e.write(map[string]treetest.Spec{"after": {Content: "x"}})
	e.MustRun("save", "main")
}

// TestInterruptedRestore: status reports a restore that did not finish,
// and running restore again completes it.
func TestInterruptedRestore(t *testing.T) {
	e := newEnv(t)
	e.write(sampleTree())
	var s saveOutput
	e.runJSON(&s, "save", "main")
	caches, _ := filepath.Glob(filepath.Join(e.store, "cache", "datadir-*"))
	if len(caches) != 1 {
		t.Fatalf("stat cache files: %v", caches)
	}
	// What a restore killed half-way leaves: its marker beside the cache.
	if err := os.WriteFile(caches[0]+".restoring", []byte(s.Snapshot+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var st statusOutput
	e.runJSON(&st, "status")
	if st.InterruptedRestore != s.Snapshot {
		t.Fatalf("status: %+v", st)
	}
	if human := e.MustRun("status"); !strings.Contains(human.Stdout, "did not finish") || !strings.Contains(human.Stdout, "statepack restore "+s.Snapshot[:8]) {
		t.Errorf("human status:\n%s", human.Stdout)
	}
	var r restoreOutput
	e.runJSON(&r, "restore", s.Snapshot[:8])
	if !r.Resumed {
		t.Errorf("restore: %+v", r)
	}
	e.runJSON(&st, "status")
	if st.InterruptedRestore != "" {
		t.Errorf("still interrupted after restore: %+v", st)
	}
}

// TestDebug: --debug adds the wrapped errors, for bug reports.
func TestDebug(t *testing.T) {
	e := newEnv(t)
	res := e.Run("--debug", "restore", "nope")
	if res.Code != 3 || !strings.Contains(res.Stderr, "debug: error chain") || strings.Count(res.Stderr, "\n") < 3 {
		t.Errorf("--debug:\n%s", res)
	}
	res = e.Run("--debug", "--json", "restore", "nope")
	var doc struct{ Error struct{ Debug []string } }
	if err := json.Unmarshal([]byte(res.Stderr), &doc); err != nil || len(doc.Error.Debug) == 0 {
		t.Errorf("--debug --json: %v\n%s", err, res)
	}
}

// TestLockWait: prune refuses at once while a writer on another host holds
// a shared lock, and with --lock-wait waits for it to go away.
func TestLockWait(t *testing.T) {
	e := newEnv(t)
	e.write(sampleTree())
	e.MustRun("save", "main")
	lock := filepath.Join(e.store, "locks", "0123456789abcdef")
	info := fmt.Sprintf(`{"exclusive": false, "host": "ci-runner-7", "pid": 4242, "command": "save", "time": %q}`, time.Now().UTC().Format(time.RFC3339Nano))
	if err := os.MkdirAll(filepath.Dir(lock), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lock, []byte(info), 0o644); err != nil {
		t.Fatal(err)
	}
	res := e.Run("prune")
	if res.Code != 1 || !strings.Contains(res.Stderr, "ci-runner-7") {
		t.Fatalf("prune under a live lock: want exit 1 naming the holder, got %d:\n%s", res.Code, res.Stderr)
	}
	if res := e.Run("--lock-wait", "-1s", "prune"); res.Code != 2 {
		t.Fatalf("negative --lock-wait: want usage error, got %d", res.Code)
	}
	// The holder finishes while prune waits.
	go func() {
		time.Sleep(300 * time.Millisecond)
		os.Remove(lock)
	}()
	e.MustRun("prune", "--lock-wait", "30s")
}
