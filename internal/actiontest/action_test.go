package actiontest

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/statepack/statepack/internal/miniotest"
	"github.com/statepack/statepack/internal/testbin"
	"github.com/statepack/statepack/internal/treetest"
)

// job is a fresh runner whose actions download the test's release where
// they would download GitHub's.
func job(t *testing.T, rel *Release) *Runner {
	r := NewRunner(t, repoRoot(t))
	r.InputDefaults["release-url"] = rel.URL
	return r
}

// dataDir is where the workflow keeps LocalStack's state on r.
func dataDir(r *Runner) string { return filepath.Join(r.Workspace, "localstack-data", "state") }

func mustSucceed(t *testing.T, what string, res Result) {
	t.Helper()
	t.Logf("%s:\n%s", what, res.Log)
	if res.Err != nil {
		t.Fatalf("%s: %v (log above)", what, res.Err)
	}
}

func mustFail(t *testing.T, what string, res Result, message string) {
	t.Helper()
	t.Logf("%s:\n%s", what, res.Log)
	if res.Err == nil {
		t.Fatalf("%s succeeded, want a failure saying %q", what, message)
	}
	if !strings.Contains(res.Log, message) {
		t.Fatalf("%s failed without saying %q (log above)", what, message)
	}
}

func checkOutputs(t *testing.T, what string, res Result, want map[string]string) {
	t.Helper()
	if !maps.Equal(res.Outputs, want) {
		t.Errorf("%s: outputs %v, want %v", what, res.Outputs, want)
	}
}

// TestRestoreAndSave runs the actions as a pull request's jobs would
// against MinIO: a cache miss on an empty remote, then a save that pushes
// main; a pull request that starts from main's state (a fallback), whose
// failed job pushes nothing and whose next job pushes its own; and a job
// that restores it exactly, into a running LocalStack. The statepack
// binary is installed from the test's release server once per machine and
// comes from the tool cache after that.
func TestRestoreAndSave(t *testing.T) {
	bin := statepackBinary(t) // before testbin's first run, which then uses it
	s3 := miniotest.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	remote := fmt.Sprintf("s3://%s/actions/%s", s3.NewBucket(ctx, t), miniotest.RandomHex(4))
	aws := map[string]string{"AWS_ENDPOINT_URL": s3.Endpoint, "AWS_ACCESS_KEY_ID": s3.AccessKey,
		"AWS_SECRET_ACCESS_KEY": s3.SecretKey, "AWS_REGION": cmp.Or(s3.Region, "us-east-1")}
	version := defaultVersion(t)
	rel := ServeRelease(t, bin, version)
	remoteHeads := func() map[string]string {
		r := testbin.New(t)
		maps.Copy(r.Env, aws)
		var list struct {
			States []struct{ State, Snapshot string }
		}
		res := r.MustRun("list", "--remote", remote, "--json")
		if err := json.Unmarshal([]byte(res.Stdout), &list); err != nil {
			t.Fatalf("%v\n%s", err, res)
		}
		heads := map[string]string{}
		for _, s := range list.States {
			heads[s.State] = s.Snapshot
		}
		return heads
	}
	step := func(r *Runner, action string, with ...string) Step {
		in := map[string]string{"remote": remote, "data-dir": dataDir(r)}
		for i := 0; i+1 < len(with); i += 2 {
			in[with[i]] = with[i+1]
		}
		return Step{Action: action, With: in, Env: aws}
	}

	// A push to main finds the remote empty: a miss, not a failure.
	a := job(t, rel)
	a.Env["GITHUB_SHA"], a.Env["GITHUB_REF_NAME"] = "1111111111111111111111111111111111111111", "main"
	res := a.Run(ctx, step(a, "restore", "state", "main", "fallback", ""))
	mustSucceed(t, "restore main on an empty remote", res)
	checkOutputs(t, "a cache miss", res, map[string]string{"cache-hit": "", "snapshot": "", "matched-state": ""})
	if !strings.Contains(res.Log, "cache miss") {
		t.Errorf("a cache miss does not say so")
	}
	toolDir := filepath.Join(a.ToolCache, "statepack", version, map[string]string{"X64": "amd64", "ARM64": "arm64"}[RunnerArch()])
	if got := a.PathAdded(); !slices.Equal(got, []string{toolDir}) {
		t.Errorf("GITHUB_PATH got %v, want the tool cache's %s", got, toolDir)
	}
	for _, p := range []string{filepath.Join(toolDir, "statepack"), toolDir + ".complete"} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("the tool cache lacks %s: %v", p, err)
		}
	}
	if n := rel.Downloads(); n != 1 {
		t.Errorf("the archive was downloaded %d times, want 1", n)
	}
	if tree := readTree(t, dataDir(a)); len(tree) != 0 {
		t.Errorf("a cache miss left DATA_DIR with %d entries", len(tree))
	}

	// The job's LocalStack wrote its state; the job succeeded: save pushes.
	treetest.Write(t, dataDir(a), map[string]treetest.Spec{
		"api_states/sqs/queues.json":    {Content: `{"orders": []}`},
		"dynamodb/orders.db":            {Content: treetest.SQLite(8, 1)},
		"api_states/s3/buckets.json":    {Content: `{"invoices": {}}`},
		"api_states/lambda/store.state": {Content: strings.Repeat("lambda ", 1000)},
	})
	res = a.Run(ctx, step(a, "save", "state", "main"))
	mustSucceed(t, "save main", res)
	mainSnap := res.Outputs["snapshot"]
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(mainSnap) {
		t.Fatalf("save's snapshot output is %q, want a snapshot id", mainSnap)
	}
	if n := rel.Downloads(); n != 1 {
		t.Errorf("the second action of the job downloaded statepack again (%d downloads): the tool cache was not reused", n)
	}
	if !strings.Contains(res.Log, "from the tool cache") {
		t.Errorf("the second action does not say it used the tool cache")
	}
	if heads := remoteHeads(); !maps.Equal(heads, map[string]string{"main": mainSnap}) {
		t.Fatalf("remote heads %v, want main at %s", heads, mainSnap)
	}
	wantMain := treetest.MustRead(t, dataDir(a))

	// A pull request's first job: its own state is not there, main's is.
	b := job(t, rel)
	b.Env["GITHUB_SHA"], b.Env["GITHUB_HEAD_REF"], b.Env["GITHUB_REF_NAME"] = "2222222222222222222222222222222222222222", "feature/orders", "42/merge"
	res = b.Run(ctx, step(b, "restore", "state", "pr-42", "fallback", "feature-orders,\n  main\n"))
	mustSucceed(t, "restore pr-42, falling back to main", res)
	checkOutputs(t, "a fallback", res, map[string]string{"cache-hit": "fallback", "snapshot": mainSnap, "matched-state": "main"})
	treetest.AssertEqual(t, wantMain, readTree(t, dataDir(b)))
	if n := rel.Downloads(); n != 2 {
		t.Errorf("a fresh machine: %d downloads in all, want 2", n)
	}

	// Its tests fail: save, run with if: always(), must push nothing.
	treetest.Write(t, dataDir(b), map[string]treetest.Spec{"api_states/sqs/queues.json": {Content: `{"orders": ["broken"]}`}})
	b.JobStatus = "failure"
	res = b.Run(ctx, step(b, "save", "state", "pr-42"))
	mustSucceed(t, "save pr-42 after a failed job", res)
	checkOutputs(t, "a refused save", res, map[string]string{"snapshot": ""})
	if !strings.Contains(res.Log, "not saving pr-42") || !strings.Contains(res.Log, "'failure'") {
		t.Errorf("the refused save does not say why")
	}
	if heads := remoteHeads(); !maps.Equal(heads, map[string]string{"main": mainSnap}) {
		t.Fatalf("a failed job changed the remote: heads %v", heads)
	}
	local := &testbin.Runner{T: t, Env: testbin.Env{"HOME": b.Home}}
	if out := local.MustRun("list").Stdout; strings.Contains(out, "pr-42") {
		t.Errorf("a failed job saved pr-42 locally:\n%s", out)
	}
	if n := rel.Downloads(); n != 2 {
		t.Errorf("a refused save downloaded statepack (%d downloads in all, want 2)", n)
	}

	// The next job passes: save has LocalStack write its state, then pushes.
	b.JobStatus = "success"
	ls := startLocalStack(t, dataDir(b))
	res = b.Run(ctx, step(b, "save", "state", "pr-42", "localstack", ls.url))
	mustSucceed(t, "save pr-42", res)
	prSnap := res.Outputs["snapshot"]
	if ops, _ := ls.done(t); !slices.Equal(ops, []string{"save"}) {
		t.Errorf("LocalStack was asked to %v, want [save]", ops)
	}
	if heads := remoteHeads(); !maps.Equal(heads, map[string]string{"main": mainSnap, "pr-42": prSnap}) {
		t.Fatalf("remote heads %v, want main at %s and pr-42 at %s", heads, mainSnap, prSnap)
	}
	wantPR := treetest.MustRead(t, dataDir(b))
	if _, ok := wantPR[savedFile]; !ok {
		t.Fatalf("what LocalStack wrote when asked to save is not in DATA_DIR")
	}
	r := &testbin.Runner{T: t, Env: testbin.Env{"HOME": t.TempDir()}}
	maps.Copy(r.Env, aws)
	var log struct {
		Versions []struct{ Labels map[string]string }
	}
	out := r.MustRun("--json", "log", "pr-42", "--remote", remote)
	if err := json.Unmarshal([]byte(out.Stdout), &log); err != nil || len(log.Versions) == 0 {
		t.Fatalf("log pr-42 --remote: %v\n%s", err, out)
	}
	if l := log.Versions[0].Labels; l["commit"] != b.Env["GITHUB_SHA"] || l["branch"] != "feature/orders" {
		t.Errorf("pushed pr-42 has labels %v, want commit %s and branch feature/orders", l, b.Env["GITHUB_SHA"])
	}

	// The pull request's next job finds its own state, and has the
	// LocalStack already running load it.
	c := job(t, rel)
	ls = startLocalStack(t, dataDir(c))
	res = c.Run(ctx, step(c, "restore", "state", "pr-42", "fallback", "main", "localstack", ls.url))
	mustSucceed(t, "restore pr-42", res)
	checkOutputs(t, "an exact hit", res, map[string]string{"cache-hit": "exact", "snapshot": prSnap, "matched-state": "pr-42"})
	treetest.AssertEqual(t, wantPR, readTree(t, dataDir(c)))
	ops, loaded := ls.done(t)
	if !slices.Equal(ops, []string{"load"}) {
		t.Fatalf("LocalStack was asked to %v, want [load]", ops)
	}
	treetest.AssertEqual(t, wantPR, loaded)
}

// TestInstallRefuses: an archive that does not match the release's
// checksums, or that cannot be checked, is never installed; an explicit
// version and release-url are where the actions download from.
func TestInstallRefuses(t *testing.T) {
	bin := statepackBinary(t)
	cases := []struct {
		name    string
		damage  func(*Release)
		message string
	}{
		{"checksum mismatch", func(rel *Release) {
			data := rel.File(rel.Archive)
			data[len(data)/2] ^= 0xff
			rel.Put(rel.Archive, data)
		}, "checksum mismatch for statepack_v9.9.9_"},
		{"no line for the archive", func(rel *Release) {
			rel.Put(ChecksumsName("v9.9.9"), []byte(ChecksumLine(ArchiveName("v9.9.9", "plan9", "mips"), []byte("x"))))
		}, "has no line for"},
		{"no checksums file", func(rel *Release) { rel.Remove(ChecksumsName("v9.9.9")) }, "the release's checksums"},
		{"no archive for the runner", func(rel *Release) { rel.Remove(rel.Archive) }, "is v9.9.9 a statepack release with a binary for"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rel := ServeRelease(t, bin, "v9.9.9")
			tc.damage(rel)
			r := NewRunner(t, repoRoot(t))
			res := r.Run(t.Context(), Step{Action: "restore", With: map[string]string{
				"state": "main", "remote": t.TempDir(), "data-dir": dataDir(r), "version": "v9.9.9", "release-url": rel.URL}})
			mustFail(t, "restore", res, tc.message)
			checkOutputs(t, "a refused install", res, map[string]string{"cache-hit": "", "snapshot": "", "matched-state": ""})
			if p := r.PathAdded(); len(p) != 0 {
				t.Errorf("a refused install added %v to PATH", p)
			}
			if _, err := os.Stat(filepath.Join(r.ToolCache, "statepack", "v9.9.9")); err == nil {
				t.Errorf("a refused install left statepack in the tool cache")
			}
		})
	}
}

// TestUnsupportedRunner: a runner statepack has no binary for fails with
// a message saying so, before downloading anything.
func TestUnsupportedRunner(t *testing.T) {
	rel := ServeRelease(t, statepackBinary(t), "v9.9.9")
	for _, tc := range []struct{ key, value, message string }{
		{"RUNNER_OS", "Windows", "for Linux runners only, not RUNNER_OS='Windows'"},
		{"RUNNER_OS", "macOS", "for Linux runners only, not RUNNER_OS='macOS'"},
		{"RUNNER_ARCH", "ARM", "for X64 and ARM64 runners only, not RUNNER_ARCH='ARM'"},
	} {
		r := NewRunner(t, repoRoot(t))
		r.Env[tc.key] = tc.value
		res := r.Run(t.Context(), Step{Action: "restore", With: map[string]string{
			"state": "main", "remote": t.TempDir(), "data-dir": dataDir(r), "version": "v9.9.9", "release-url": rel.URL}})
		mustFail(t, tc.key+"="+tc.value, res, tc.message)
	}
	if n := rel.Downloads(); n != 0 {
		t.Errorf("%d downloads for runners without a binary", n)
	}
}

// TestRequiredInputs: a step without a required input fails naming it,
// as the runner itself only warns.
func TestRequiredInputs(t *testing.T) {
	for _, tc := range []struct {
		action, message string
		with            map[string]string
	}{
		{"restore", "the state input is required", map[string]string{"remote": "/r", "data-dir": "/d"}},
		{"restore", "the data-dir input is required", map[string]string{"state": "main", "remote": "/r"}},
		{"restore", "the remote input is required", map[string]string{"state": "main", "data-dir": "/d"}},
		{"save", "the state input is required", map[string]string{"remote": "/r", "data-dir": "/d"}},
		{"save", "the data-dir input is required", map[string]string{"state": "main", "remote": "/r"}},
		{"save", "the remote input is required", map[string]string{"state": "main", "data-dir": "/d"}},
	} {
		r := NewRunner(t, repoRoot(t))
		mustFail(t, tc.action+" "+tc.message, r.Run(t.Context(), Step{Action: tc.action, With: tc.with}), tc.message)
	}
}

// TestActionMetadata: every input reaches the script as INPUT_<NAME>, both
// actions install the same release by default, and each output is one of
// the step's.
func TestActionMetadata(t *testing.T) {
	versions := map[string]string{}
	for _, action := range []string{"restore", "save"} {
		meta, err := ReadMetadata(filepath.Join(repoRoot(t), action))
		if err != nil {
			t.Fatal(err)
		}
		if len(meta.Runs.Steps) != 1 {
			t.Fatalf("%s: %d steps, want the one that runs %s.sh", action, len(meta.Runs.Steps), action)
		}
		st := meta.Runs.Steps[0]
		var script []byte
		for _, f := range []string{filepath.Join(action, action+".sh"), filepath.Join("restore", "setup.sh")} {
			text, err := os.ReadFile(filepath.Join(repoRoot(t), f))
			if err != nil {
				t.Fatal(err)
			}
			script = append(script, text...)
		}
		for name := range meta.Inputs {
			env := "INPUT_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
			if got := st.Env[env]; got != "${{ inputs."+name+" }}" {
				t.Errorf("%s: env %s is %q, want ${{ inputs.%s }}", action, env, got, name)
			}
			if !strings.Contains(string(script), env) {
				t.Errorf("%s.sh and setup.sh never read %s", action, env)
			}
		}
		for name, o := range meta.Outputs {
			if want := "${{ steps." + st.ID + ".outputs." + name + " }}"; o.Value != want {
				t.Errorf("%s: output %s is %q, want %q", action, name, o.Value, want)
			}
		}
		versions[action] = meta.Inputs["version"].Default
	}
	if versions["restore"] == "" || versions["restore"] != versions["save"] {
		t.Errorf("the actions' default versions differ or are empty: %v", versions)
	}
	if d := defaultVersion(t); !regexp.MustCompile(`^v\d+\.\d+\.\d+$`).MatchString(d) {
		t.Errorf("the default version %q is not a release tag vX.Y.Z", d)
	}
}

// readTree is treetest.Read, with an absent directory an empty tree.
func readTree(t *testing.T, dir string) treetest.Tree {
	t.Helper()
	if _, err := os.Stat(dir); err != nil {
		if os.IsNotExist(err) {
			return treetest.Tree{}
		}
		t.Fatal(err)
	}
	return treetest.MustRead(t, dir)
}
