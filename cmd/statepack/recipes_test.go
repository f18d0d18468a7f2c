package main

// The CI recipes (docs/ci-recipes.md), run as written. Each `<!-- recipe: NAME -->` sh
// block of the "CI recipes" section runs under bash -euo pipefail against a
// real S3 server (MinIO), with the statepack binary first on PATH and
// stand-ins where the recipe starts LocalStack: a `docker` that hands its
// arguments to this test's server, and that server answering LocalStack's
// health and state endpoints and writing a LocalStack-like DATA_DIR (with
// internal/datagen) whenever LocalStack would. Every recipe runs more than
// once, each time on a fresh machine (home, store, workspace): first a cache
// miss, then runs that must start LocalStack from exactly the tree the run
// before pushed. The CI files beside the blocks are parsed too: their steps
// must run exactly the block's lines, and define the variables those lines
// use. The GitHub workflow leaves statepack to this repository's actions
// (restore/, save/): its steps run in order, the actions through
// internal/actiontest as the Actions runner runs them, their inputs
// checked against their action.yml.

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/statepack/statepack/internal/actiontest"
	"github.com/statepack/statepack/internal/datagen"
	"github.com/statepack/statepack/internal/miniotest"
	"github.com/statepack/statepack/internal/testbin"
	"github.com/statepack/statepack/internal/treetest"
)

// recipeNames are the recipes the README must have, each with a scenario
// below. A new recipe block fails the test until it gets one.
var recipeNames = []string{"github-actions", "gitlab", "compose"}

// recipe is one marked sh block of the README and the YAML of its section.
type recipe struct {
	name string
	sh   string // the block's text
	yaml string // the section's YAML block; empty when it has none
}

// recipesFile holds the CI recipes; the README links to it.
const recipesFile = "docs/ci-recipes.md"

// readRecipes extracts the marked sh blocks, and the YAML block of each
// recipe's section (### heading), from recipesFile.
func readRecipes(t *testing.T) map[string]recipe {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", recipesFile))
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	begin := strings.Index(text, "<!-- recipes:")
	end := strings.Index(text, "<!-- /recipes -->")
	if begin < 0 || end < begin {
		t.Fatal(recipesFile + ": no <!-- recipes: ... --> ... <!-- /recipes --> section")
	}
	lines := strings.Split(text[begin:end], "\n")
	marker := regexp.MustCompile(`^<!-- recipe: ([a-z0-9-]+) -->$`)
	recipes := map[string]recipe{}
	var section []string // recipes of the current ### section
	var yamlOf string    // the current section's YAML block
	flush := func() {
		for _, n := range section {
			r := recipes[n]
			r.yaml = yamlOf
			recipes[n] = r
		}
		section, yamlOf = nil, ""
	}
	// fence returns the body of the fenced block opening at lines[i].
	fence := func(i int) (string, int) {
		for j := i + 1; j < len(lines); j++ {
			if strings.TrimSpace(lines[j]) == "```" {
				return strings.Join(lines[i+1:j], "\n") + "\n", j
			}
		}
		t.Fatalf(recipesFile+": the block opened by %q is not closed", lines[i])
		return "", 0
	}
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		switch {
		case strings.HasPrefix(line, "### "):
			flush()
		case marker.MatchString(line):
			name := marker.FindStringSubmatch(line)[1]
			if _, dup := recipes[name]; dup {
				t.Fatalf(recipesFile+": recipe %q is marked twice", name)
			}
			if i+1 >= len(lines) || strings.TrimSpace(lines[i+1]) != "```sh" {
				t.Fatalf(recipesFile+": <!-- recipe: %s --> must be right before a ```sh block", name)
			}
			var body string
			body, i = fence(i + 1)
			recipes[name] = recipe{name: name, sh: body}
			section = append(section, name)
		case line == "```yaml" || line == "```yml":
			if yamlOf != "" {
				t.Fatalf(recipesFile+": two YAML blocks in one recipe section (before line %q)", line)
			}
			yamlOf, i = fence(i)
		case strings.HasPrefix(line, "```"):
			_, i = fence(i)
		}
	}
	flush()
	for _, n := range recipeNames {
		if _, ok := recipes[n]; !ok {
			t.Errorf(recipesFile+": recipe %q is missing (a ```sh block right after <!-- recipe: %s -->)", n, n)
		}
	}
	for n := range recipes {
		if !slices.Contains(recipeNames, n) {
			t.Errorf(recipesFile+": recipe %q has no scenario in recipes_test.go", n)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return recipes
}

// TestReadmeRecipes runs every recipe of the README as written.
func TestReadmeRecipes(t *testing.T) {
	recipes := readRecipes(t)
	if _, err := exec.LookPath("curl"); err != nil {
		if miniotest.InCI() {
			t.Fatalf("the recipes and the docker stand-in need curl: %v", err)
		}
		t.Skipf("the recipes and the docker stand-in need curl: %v", err)
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatalf("the recipes run under bash: %v", err)
	}
	s3 := recipeS3(t)
	sp := testbin.Path(t)
	for _, name := range recipeNames {
		r := recipes[name]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			bucket := s3.NewBucket(ctx, t)
			h := &recipeHarness{
				t:      t,
				recipe: r,
				remote: fmt.Sprintf("s3://%s/recipes-%s/%s", bucket, miniotest.RandomHex(4), name),
				s3:     s3,
				world:  newFakeWorld(t, int64(len(name))),
			}
			h.bin = h.binDir(sp)
			switch name {
			case "github-actions":
				h.runGitHub(githubScenarios(), sp)
			case "gitlab":
				h.runCI(gitlabScenarios(), h.gitlabEnv)
			case "compose":
				h.runCompose()
			}
		})
	}
}

// recipeS3 starts an S3 server for this test alone and stops it at the
// end (the package's TestMain is testbin's, so miniotest.Main cannot stop
// a shared one). Like miniotest.Get it skips without a server, except in CI.
func recipeS3(t *testing.T) *miniotest.Server {
	t.Helper()
	if testing.Short() {
		t.Skip("S3 test against MinIO skipped in -short mode")
	}
	srv, err := miniotest.Start(context.Background())
	if err != nil {
		if miniotest.InCI() {
			t.Fatalf("CI=true and no S3 server for the tests: %v", err)
		}
		t.Skipf("no S3 server for the tests (set %s, or CI=true to make this fatal): %v", miniotest.EnvMinIO, err)
	}
	t.Cleanup(srv.Stop)
	return srv
}

// recipeHarness runs one recipe, run after run, against one remote.
type recipeHarness struct {
	t      *testing.T
	recipe recipe
	remote string
	s3     *miniotest.Server
	bin    string // statepack and the docker stand-in
	world  *fakeWorld
	pushed treetest.Tree // what the previous run pushed; nil before the first
	ciSets []ciScenario  // the CI recipe's scenarios
	linted bool          // the CI file has been checked against the block
}

// ciVars are the names of the variables the CI sets in any of the
// scenarios (a merge request's only in some), plus extra, for checkVars.
func (h *recipeHarness) ciVars(extra ...string) map[string]string {
	out := map[string]string{}
	for _, sc := range h.ciSets {
		for k := range sc.vars {
			out[k] = ""
		}
	}
	for _, k := range extra {
		out[k] = ""
	}
	return out
}

// binDir makes the directory put first on PATH: statepack and docker.
func (h *recipeHarness) binDir(statepack string) string {
	dir := h.t.TempDir()
	if err := os.Symlink(statepack, filepath.Join(dir, "statepack")); err != nil {
		h.t.Fatal(err)
	}
	shim := "#!/bin/sh\n" +
		"# docker stand-in of recipes_test.go: the test's server does what docker would.\n" +
		"printf '%s\\0' \"$PWD\" \"$@\" | curl -sSf --data-binary @- " + h.world.url + "/_fake/docker\n"
	if err := os.WriteFile(filepath.Join(dir, "docker"), []byte(shim), 0o755); err != nil {
		h.t.Fatal(err)
	}
	return dir
}

// s3Env is what statepack needs to reach the test's bucket.
func (h *recipeHarness) s3Env() map[string]string {
	return map[string]string{
		"STATEPACK_REMOTE":      h.remote,
		"AWS_ENDPOINT_URL":      h.s3.Endpoint,
		"AWS_ACCESS_KEY_ID":     h.s3.AccessKey,
		"AWS_SECRET_ACCESS_KEY": h.s3.SecretKey,
		"AWS_REGION":            cmp.Or(h.s3.Region, "us-east-1"),
	}
}

// machine is one fresh machine: a home (so a fresh default store) and a
// working directory (the CI workspace, or the compose project).
type machine struct {
	home, dir string
}

func (h *recipeHarness) newMachine() machine {
	root := h.t.TempDir()
	m := machine{home: filepath.Join(root, "home"), dir: filepath.Join(root, "work")}
	for _, d := range []string{m.home, m.dir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			h.t.Fatal(err)
		}
	}
	return m
}

// runBlock runs the recipe's block as written, with exactly env (and PATH:
// the stand-ins, then the test's own), in dir.
func (h *recipeHarness) runBlock(label string, m machine, env map[string]string) {
	t := h.t
	t.Helper()
	script := filepath.Join(m.home, "recipe-"+h.recipe.name+".sh")
	if err := os.WriteFile(script, []byte(h.recipe.sh), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", script)
	cmd.Dir = m.dir
	cmd.Env = []string{"PATH=" + h.bin + string(os.PathListSeparator) + os.Getenv("PATH"), "HOME=" + m.home}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	t.Logf("recipe %s, %s:\n%s", h.recipe.name, label, out.String())
	if err != nil {
		t.Fatalf("recipe %s, %s: %v (output above)%s", h.recipe.name, label, err, h.world.misuse())
	}
}

// runner runs statepack on machine m with env, to look at what a run left.
func (h *recipeHarness) runner(m machine, env map[string]string) *testbin.Runner {
	r := &testbin.Runner{T: h.t, Env: testbin.Env{"HOME": m.home}}
	for k, v := range h.s3Env() {
		r.Env[k] = v
	}
	for k, v := range env {
		if strings.HasPrefix(k, "AWS_") || k == "STATEPACK_REMOTE" || k == "DATA_DIR" {
			r.Env[k] = v
		}
	}
	return r
}

func (h *recipeHarness) decode(res testbin.Result, v any) {
	h.t.Helper()
	if err := json.Unmarshal([]byte(res.Stdout), v); err != nil {
		h.t.Fatalf("%v\n%s", err, res)
	}
}

// checkRemote checks that the remote holds exactly the states want, that
// state's head there is the one the run saved, and its labels.
func (h *recipeHarness) checkRemote(r *testbin.Runner, state string, want []string, labels map[string]string) {
	t := h.t
	t.Helper()
	var remote listOutput
	h.decode(r.MustRun("list", "--remote", "--json"), &remote)
	heads := map[string]string{}
	var names []string
	for _, s := range remote.States {
		heads[s.State] = s.Snapshot
		names = append(names, s.State)
	}
	sort.Strings(names)
	if !slices.Equal(names, sorted(want...)) {
		t.Errorf("list --remote --json: states %v, want %v", names, sorted(want...))
	}
	var local logOutput
	h.decode(r.MustRun("--json", "log", state), &local)
	if len(local.Versions) == 0 || heads[state] != local.Versions[0].Snapshot {
		t.Errorf("remote head of %s is %q, want the version this run saved (%+v)", state, heads[state], local.Versions)
	}
	if labels == nil {
		return
	}
	var log logOutput
	h.decode(r.MustRun("--json", "log", state, "--remote"), &log)
	if len(log.Versions) == 0 {
		t.Fatalf("log %s --remote: no versions", state)
	}
	for k, v := range labels {
		if got := log.Versions[0].Labels[k]; got != v {
			t.Errorf("pushed %s has label %s=%q, want %q (labels %v)", state, k, got, v, log.Versions[0].Labels)
		}
	}
}

// checkEvents checks what LocalStack went through in one run, and returns
// the tree the run pushed: the one LocalStack wrote at the first save.
//
// kinds is the expected sequence; the first start must find the tree the
// previous run pushed (none at a cache miss); every load must find the
// pushed tree back; a stop must have changed it (so that the restore had
// work to do); and DATA_DIR must end as the pushed tree.
func (h *recipeHarness) checkEvents(dataDir string, kinds ...string) treetest.Tree {
	t := h.t
	t.Helper()
	events := h.world.take()
	var got []string
	for _, e := range events {
		got = append(got, e.kind)
	}
	if !slices.Equal(got, kinds) {
		t.Fatalf("LocalStack went through %v, want %v", got, kinds)
	}
	var pushed treetest.Tree
	for _, e := range events {
		if e.kind == "save" {
			pushed = e.tree
			break
		}
	}
	want := h.pushed
	if want == nil {
		want = treetest.Tree{} // a cache miss: LocalStack starts empty
	}
	for i, e := range events {
		switch e.kind {
		case "start":
			if i == 0 {
				assertTree(t, "LocalStack started with", want, e.tree)
			}
		case "load":
			assertTree(t, "LocalStack loaded", pushed, e.tree)
		case "stop":
			if len(treetest.Diff(pushed, e.tree)) == 0 {
				t.Errorf("LocalStack's stop changed nothing")
			}
		}
	}
	assertTree(t, "DATA_DIR at the end", pushed, readTree(t, dataDir))
	return pushed
}

func assertTree(t *testing.T, what string, want, got treetest.Tree) {
	t.Helper()
	if d := treetest.Diff(want, got); len(d) > 0 {
		if len(d) > 10 {
			d = append(d[:10], fmt.Sprintf("... and %d more", len(d)-10))
		}
		t.Fatalf("%s a tree that is not the expected one (%d paths expected):\n%s", what, len(want), strings.Join(d, "\n"))
	}
}

// readTree is treetest.Read, with an absent directory an empty tree.
func readTree(t *testing.T, dir string) treetest.Tree {
	t.Helper()
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return treetest.Tree{}
	}
	return treetest.MustRead(t, dir)
}

// ciScenario is one CI run: the variables the CI sets, and what the run
// must push.
type ciScenario struct {
	label  string
	vars   map[string]string // the CI's own variables (the workspace is added)
	state  string            // the state the run saves and pushes
	labels map[string]string // its labels
	remote []string          // the states on the remote afterwards
}

// githubScenarios: a push to main on an empty remote (a cache miss), then
// a pull request that starts from main's state (the fallback), then the
// same pull request again, from its own.
func githubScenarios() []ciScenario {
	common := map[string]string{"CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "acme/orders",
		"GITHUB_RUN_ID": "1001", "GITHUB_JOB": "e2e", "RUNNER_OS": "Linux"}
	push := map[string]string{"GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/heads/main", "GITHUB_REF_NAME": "main",
		"GITHUB_REF_TYPE": "branch", "GITHUB_HEAD_REF": "", "GITHUB_BASE_REF": "", "GITHUB_SHA": "1111111111111111111111111111111111111111"}
	pr := func(sha string) map[string]string {
		return map[string]string{"GITHUB_EVENT_NAME": "pull_request", "GITHUB_REF": "refs/pull/42/merge", "GITHUB_REF_NAME": "42/merge",
			"GITHUB_REF_TYPE": "branch", "GITHUB_HEAD_REF": "feature/orders", "GITHUB_BASE_REF": "main", "GITHUB_SHA": sha}
	}
	return []ciScenario{
		{"push to main, empty remote", merge(common, push), "main", map[string]string{"commit": push["GITHUB_SHA"], "branch": "main"}, []string{"main"}},
		{"pull request #42, from main", merge(common, pr("2222222222222222222222222222222222222222")), "pr-42",
			map[string]string{"commit": "2222222222222222222222222222222222222222", "branch": "feature/orders"}, []string{"main", "pr-42"}},
		{"pull request #42 again, from its own", merge(common, pr("3333333333333333333333333333333333333333")), "pr-42",
			map[string]string{"commit": "3333333333333333333333333333333333333333", "branch": "feature/orders"}, []string{"main", "pr-42"}},
	}
}

// gitlabScenarios: the same story as a branch pipeline on main and two
// merge request pipelines (which have no CI_COMMIT_BRANCH).
func gitlabScenarios() []ciScenario {
	common := map[string]string{"CI": "true", "GITLAB_CI": "true", "CI_DEFAULT_BRANCH": "main", "CI_PROJECT_PATH": "acme/orders",
		"CI_PIPELINE_ID": "2002", "CI_JOB_NAME": "e2e"}
	branch := map[string]string{"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main", "CI_COMMIT_REF_NAME": "main",
		"CI_COMMIT_REF_SLUG": "main", "CI_COMMIT_SHA": "4444444444444444444444444444444444444444"}
	mr := func(sha string) map[string]string {
		return map[string]string{"CI_PIPELINE_SOURCE": "merge_request_event", "CI_MERGE_REQUEST_IID": "7",
			"CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature/orders", "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
			"CI_COMMIT_REF_NAME": "feature/orders", "CI_COMMIT_REF_SLUG": "feature-orders", "CI_COMMIT_SHA": sha}
	}
	return []ciScenario{
		{"branch pipeline on main, empty remote", merge(common, branch), "main", map[string]string{"commit": branch["CI_COMMIT_SHA"], "branch": "main"}, []string{"main"}},
		{"merge request !7, from main", merge(common, mr("5555555555555555555555555555555555555555")), "mr-7",
			map[string]string{"commit": "5555555555555555555555555555555555555555", "branch": "feature/orders"}, []string{"main", "mr-7"}},
		{"merge request !7 again, from its own", merge(common, mr("6666666666666666666666666666666666666666")), "mr-7",
			map[string]string{"commit": "6666666666666666666666666666666666666666", "branch": "feature/orders"}, []string{"main", "mr-7"}},
	}
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// runCI runs a CI recipe through its scenarios, each on a fresh runner.
// envOf gives the job's environment: the CI's variables and what the CI
// file defines, with the secrets and endpoints pointed at the test's.
func (h *recipeHarness) runCI(scenarios []ciScenario, envOf func(sc ciScenario, workspace string) map[string]string) {
	h.ciSets = scenarios
	for _, sc := range scenarios {
		m := h.newMachine()
		env := envOf(sc, m.dir)
		h.linted = true
		if h.t.Failed() { // the CI file does not match the block: no use running it
			h.t.FailNow()
		}
		dataDir := env["DATA_DIR"]
		if !filepath.IsAbs(dataDir) {
			h.t.Fatalf("DATA_DIR of the CI file is %q, want an absolute path in the workspace", dataDir)
		}
		h.world.expect(dataDir)
		h.runBlock(sc.label, m, env)
		h.pushed = h.checkEvents(dataDir, "start", "save")
		h.checkRemote(h.runner(m, env), sc.state, sc.remote, sc.labels)
	}
}

// githubExpressions are the ${{ }} expressions the workflow may use in env
// values, evaluated for a scenario as GitHub would.
func (h *recipeHarness) githubExpressions(sc ciScenario, workspace string) map[string]string {
	state := sc.vars["GITHUB_REF_NAME"]
	if sc.vars["GITHUB_EVENT_NAME"] == "pull_request" {
		state = "pr-" + strings.TrimSuffix(strings.TrimPrefix(sc.vars["GITHUB_REF"], "refs/pull/"), "/merge")
	}
	return map[string]string{
		"${{ github.workspace }}": workspace,
		"${{ github.event_name == 'pull_request' && format('pr-{0}', github.event.number) || github.ref_name }}": state,
		"${{ secrets.AWS_ACCESS_KEY_ID }}":     h.s3.AccessKey,
		"${{ secrets.AWS_SECRET_ACCESS_KEY }}": h.s3.SecretKey,
		"${{ secrets.LOCALSTACK_AUTH_TOKEN }}": "ls-test-token",
	}
}

// githubJob is the workflow's job, as far as the test reads it.
type githubJob struct {
	Env   map[string]string `yaml:"env"`
	Steps []githubStep      `yaml:"steps"`
}

// githubStep is one step of the workflow: an action (uses) or a script
// (run).
type githubStep struct {
	Name string            `yaml:"name"`
	Uses string            `yaml:"uses"`
	Run  string            `yaml:"run"`
	With map[string]string `yaml:"with"`
	Env  map[string]string `yaml:"env"`
}

// ourAction is the directory of this repository's action a step uses
// (statepack/statepack/DIR@REF), or "".
func ourAction(uses string) string {
	rest, ok := strings.CutPrefix(uses, "statepack/statepack/")
	if !ok {
		return ""
	}
	dir, _, _ := strings.Cut(rest, "@")
	return dir
}

// githubWorkflow checks the workflow against the block and the actions it
// uses against their action.yml, and returns its job and which of its
// steps are the block's.
func (h *recipeHarness) githubWorkflow(root string) (githubJob, map[int]bool) {
	t := h.t
	var wf struct {
		Jobs map[string]githubJob `yaml:"jobs"`
	}
	if err := yaml.Unmarshal([]byte(h.recipe.yaml), &wf); err != nil {
		t.Fatalf("the GitHub Actions workflow does not parse: %v", err)
	}
	if len(wf.Jobs) != 1 {
		t.Fatalf("the workflow has %d jobs, want 1", len(wf.Jobs))
	}
	var job githubJob
	for _, j := range wf.Jobs {
		job = j
	}
	var parts []scriptPart
	index := map[string]int{} // part name -> step index
	for i, st := range job.Steps {
		if st.Run != "" {
			p := scriptPart{name: fmt.Sprintf("step %d (%s)", i+1, st.Name), body: st.Run, env: merge(job.Env, st.Env)}
			parts = append(parts, p)
			index[p.name] = i
		}
	}
	block := map[int]bool{}
	first, last := len(job.Steps), -1
	for _, p := range h.checkParts(parts, false) {
		h.checkVars(p, h.ciVars("GITHUB_WORKSPACE"), nil)
		i := index[p.name]
		block[i] = true
		first, last = min(first, i), max(last, i)
	}
	// The actions: known inputs, the required ones given, a remote and
	// the bucket's keys; restore before the block's steps, save after.
	where := map[string][]int{}
	for i, st := range job.Steps {
		action := ourAction(st.Uses)
		if action == "" {
			continue
		}
		where[action] = append(where[action], i)
		name := fmt.Sprintf("step %d (%s)", i+1, st.Uses)
		meta, err := actiontest.ReadMetadata(filepath.Join(root, action))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for k := range st.With {
			if _, ok := meta.Inputs[k]; !ok {
				t.Errorf("%s: input %q is not one of %s/action.yml's (%v)", name, k, action, slices.Sorted(maps.Keys(meta.Inputs)))
			}
		}
		for k, in := range meta.Inputs {
			if _, ok := st.With[k]; in.Required && !ok {
				t.Errorf("%s: the required input %q is missing", name, k)
			}
		}
		env := merge(job.Env, st.Env)
		if st.With["remote"] == "" && env["STATEPACK_REMOTE"] == "" {
			t.Errorf("%s: no remote (the remote input, or STATEPACK_REMOTE in its env)", name)
		}
		for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
			if env[k] == "" {
				t.Errorf("%s: no %s in its env for the bucket", name, k)
			}
		}
	}
	if r := where["restore"]; len(r) != 1 || r[0] > first {
		t.Errorf("the workflow must use statepack/statepack/restore once, before the block's steps (at steps %v)", r)
	}
	if s := where["save"]; len(s) != 1 || s[0] < last {
		t.Errorf("the workflow must use statepack/statepack/save once, after the block's steps (at steps %v)", s)
	}
	if t.Failed() {
		t.FailNow()
	}
	return job, block
}

// runGitHub runs the GitHub Actions workflow through its scenarios, each
// a job on a fresh runner (internal/actiontest): its steps in order, the
// restore and save actions of this repository as the Actions runner runs
// them (installing the release binary the test serves, built from this
// tree, as GitHub's releases would serve it), the block as written where
// its steps are, and neither checkout nor the user's tests.
func (h *recipeHarness) runGitHub(scenarios []ciScenario, statepack string) {
	t := h.t
	h.ciSets = scenarios
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	job, block := h.githubWorkflow(root)
	meta, err := actiontest.ReadMetadata(filepath.Join(root, "restore"))
	if err != nil {
		t.Fatal(err)
	}
	rel := actiontest.ServeRelease(t, statepack, meta.Inputs["version"].Default)
	expr := regexp.MustCompile(`\$\{\{.*?\}\}`)
	envExpr := regexp.MustCompile(`^\$\{\{ env\.([A-Za-z_][A-Za-z0-9_]*) \}\}$`)
	var before []string // the states on the remote before the run
	for _, sc := range scenarios {
		r := actiontest.NewRunner(t, root)
		r.InputDefaults["release-url"] = rel.URL
		r.Env["GORACE"] = "atexit_sleep_ms=0" // the release holds testbin's binary, a race build under -race
		maps.Copy(r.Env, sc.vars)
		exprs := h.githubExpressions(sc, r.Workspace)
		eval := func(what, v string, env map[string]string) string {
			return expr.ReplaceAllStringFunc(v, func(e string) string {
				if m := envExpr.FindStringSubmatch(e); m != nil && env != nil {
					val, ok := env[m[1]]
					if !ok {
						t.Fatalf("the workflow's %s uses %s, which the job's env does not set", what, e)
					}
					return val
				}
				val, ok := exprs[e]
				if !ok {
					t.Fatalf("the workflow's %s uses %s, which the test cannot evaluate: add it to githubExpressions", what, e)
				}
				return val
			})
		}
		env := map[string]string{}
		for k, v := range job.Env {
			env[k] = eval("env "+k, v, nil)
		}
		for _, k := range []string{"LOCALSTACK_URL", "DATA_DIR"} {
			if env[k] == "" {
				t.Fatalf("the workflow's job does not define %s", k)
			}
		}
		env["LOCALSTACK_URL"] = h.world.url
		maps.Copy(r.Env, env)
		dataDir := env["DATA_DIR"]
		if !filepath.IsAbs(dataDir) {
			t.Fatalf("DATA_DIR of the workflow is %q, want an absolute path in the workspace", dataDir)
		}
		h.world.expect(dataDir)
		m := machine{home: r.Home, dir: r.Workspace}
		blockRan := false
		for i, st := range job.Steps {
			label := fmt.Sprintf("%s, step %d (%s)", sc.label, i+1, cmp.Or(st.Name, st.Uses))
			switch action := ourAction(st.Uses); {
			case action != "":
				with := map[string]string{}
				for k, v := range st.With {
					with[k] = eval("input "+k, v, env)
				}
				if _, ok := with["remote"]; ok {
					with["remote"] = h.remote
				}
				stepEnv := map[string]string{}
				for k, v := range st.Env {
					stepEnv[k] = eval("env "+k, v, env)
				}
				maps.Copy(stepEnv, h.s3Env())
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				res := r.Run(ctx, actiontest.Step{Action: action, With: with, Env: stepEnv})
				cancel()
				t.Logf("recipe %s, %s:\n%s", h.recipe.name, label, res.Log)
				if res.Err != nil {
					t.Fatalf("recipe %s, %s: %v (output above)%s", h.recipe.name, label, res.Err, h.world.misuse())
				}
				if action == "restore" {
					want := "fallback"
					switch {
					case len(before) == 0:
						want = ""
					case slices.Contains(before, sc.state):
						want = "exact"
					}
					if got := res.Outputs["cache-hit"]; got != want {
						t.Errorf("%s: cache-hit is %q, want %q", label, got, want)
					}
				}
			case block[i] && !blockRan:
				// The block's steps, as the block: the workflow runs
				// exactly its lines (githubWorkflow), and no action step
				// comes between them.
				blockEnv := maps.Clone(env)
				for j := range job.Steps {
					if block[j] {
						for k, v := range job.Steps[j].Env {
							blockEnv[k] = eval("env "+k, v, env)
						}
					}
				}
				h.runBlock(label, m, merge(r.Env, blockEnv))
				blockRan = true
			}
		}
		h.pushed = h.checkEvents(dataDir, "start", "save")
		h.checkRemote(h.runner(m, env), sc.state, sc.remote, sc.labels)
		before = sc.remote
	}
}

// gitlabEnv checks .gitlab-ci.yml against the block and returns the job's
// environment for sc.
func (h *recipeHarness) gitlabEnv(sc ciScenario, workspace string) map[string]string {
	t := h.t
	var file map[string]yaml.Node
	if err := yaml.Unmarshal([]byte(h.recipe.yaml), &file); err != nil {
		t.Fatalf(".gitlab-ci.yml does not parse: %v", err)
	}
	type job struct {
		Variables    map[string]string `yaml:"variables"`
		BeforeScript []string          `yaml:"before_script"`
		Script       []string          `yaml:"script"`
	}
	platform := merge(sc.vars, map[string]string{"CI_PROJECT_DIR": workspace})
	// The project's masked CI/CD variables, which the README names.
	project := map[string]string{
		"AWS_ACCESS_KEY_ID": h.s3.AccessKey, "AWS_SECRET_ACCESS_KEY": h.s3.SecretKey,
		"AWS_REGION": cmp.Or(h.s3.Region, "us-east-1"), "LOCALSTACK_AUTH_TOKEN": "ls-test-token",
	}
	global := map[string]string{} // top-level variables: every job's
	if node, ok := file["variables"]; ok {
		if err := node.Decode(&global); err != nil {
			t.Fatalf(".gitlab-ci.yml: variables: %v", err)
		}
	}
	var env map[string]string
	for name, node := range file {
		var j job
		if name == "workflow" || name == "variables" || name == "stages" || name == "default" || node.Kind != yaml.MappingNode {
			continue
		}
		if err := node.Decode(&j); err != nil {
			t.Fatalf(".gitlab-ci.yml: job %s: %v", name, err)
		}
		j.Variables = merge(global, j.Variables)
		var parts []scriptPart
		for i, s := range append(slices.Clone(j.BeforeScript), j.Script...) {
			parts = append(parts, scriptPart{name: fmt.Sprintf("job %s, script entry %d", name, i+1), body: s, env: j.Variables})
		}
		mine := h.checkParts(parts, true)
		if len(mine) == 0 {
			continue
		}
		if env != nil {
			t.Fatalf(".gitlab-ci.yml: two jobs run the block's lines")
		}
		// One job is one shell: what an entry assigns, later ones see.
		all := scriptPart{name: "job " + name, env: j.Variables}
		for _, p := range mine {
			all.body += p.body + "\n"
		}
		if !h.linted {
			h.checkVars(all, merge(h.ciVars("CI_PROJECT_DIR"), project), nil)
		}
		env = merge(platform, project)
		for k, v := range j.Variables {
			env[k] = os.Expand(v, func(name string) string { return platform[name] })
		}
	}
	if env == nil {
		t.Fatalf(".gitlab-ci.yml: no job runs the block's lines")
	}
	return h.pointAtTest(env, t)
}

// pointAtTest points what the CI file sets at the test's S3 server and
// LocalStack stand-in.
func (h *recipeHarness) pointAtTest(env map[string]string, t *testing.T) map[string]string {
	for _, k := range []string{"STATEPACK_REMOTE", "LOCALSTACK_URL", "DATA_DIR"} {
		if env[k] == "" {
			t.Fatalf("the CI file does not define %s", k)
		}
	}
	env = merge(env, h.s3Env())
	env["LOCALSTACK_URL"] = h.world.url
	return env
}

// scriptPart is a CI step's (or script entry's) shell text and the
// variables the CI file gives it.
type scriptPart struct {
	name string
	body string
	env  map[string]string
}

// commandLines are a script's lines without blank lines and comments,
// trimmed: what must be the same in the block and in the CI file.
func commandLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// checkParts checks that the parts made of the block's lines, in order,
// are exactly the block's lines, and returns them. A part mixing the
// block's lines with others fails. With optional, a file that runs none of
// them returns nothing instead of failing (another job of the file).
func (h *recipeHarness) checkParts(parts []scriptPart, optional bool) []scriptPart {
	t := h.t
	block := commandLines(h.recipe.sh)
	var mine []scriptPart
	var lines []string
	for _, p := range parts {
		cl := commandLines(p.body)
		in := 0
		for _, l := range cl {
			if slices.Contains(block, l) {
				in++
			}
		}
		switch {
		case in == 0:
		case in < len(cl):
			t.Fatalf("%s mixes the block's lines with others; keep the block's lines in steps of their own:\n%s", p.name, p.body)
		default:
			mine = append(mine, p)
			lines = append(lines, cl...)
		}
	}
	if len(mine) == 0 && optional {
		return nil
	}
	if !slices.Equal(lines, block) {
		t.Fatalf("the CI file does not run exactly the lines of the %s block:\nblock:\n  %s\nCI file:\n  %s",
			h.recipe.name, strings.Join(block, "\n  "), strings.Join(lines, "\n  "))
	}
	return mine
}

var (
	shellRef    = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`)
	shellAssign = regexp.MustCompile(`(?:^|[\s;{(])(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=`)
)

// checkVars checks that every variable p's text uses is set by the CI
// (platform), by the CI file for this part, or by the text itself, and
// that a part running statepack has its remote, keys and DATA_DIR.
func (h *recipeHarness) checkVars(p scriptPart, platform map[string]string, user []string) {
	t := h.t
	have := map[string]bool{"PWD": true, "HOME": true}
	for k := range platform {
		have[k] = true
	}
	for k := range p.env {
		have[k] = true
	}
	for _, k := range user {
		have[k] = true
	}
	for _, m := range shellAssign.FindAllStringSubmatch(p.body, -1) {
		have[m[1]] = true
	}
	for _, m := range shellRef.FindAllStringSubmatch(p.body, -1) {
		if !have[m[1]] {
			t.Errorf("%s uses $%s, which neither the CI nor the CI file sets for it", p.name, m[1])
		}
	}
	if strings.Contains(p.body, "statepack ") {
		for _, k := range []string{"STATEPACK_REMOTE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "DATA_DIR"} {
			if !have[k] {
				t.Errorf("%s runs statepack without %s", p.name, k)
			}
		}
	}
}

// runCompose runs the compose recipe on two machines: the first finds the
// remote empty and pushes its checkpoint; the second (a teammate) starts
// from it.
func (h *recipeHarness) runCompose() {
	t := h.t
	var compose composeFile
	if err := yaml.Unmarshal([]byte(h.recipe.yaml), &compose); err != nil {
		t.Fatalf("the docker-compose.yml of the compose recipe does not parse: %v", err)
	}
	h.checkVars(scriptPart{name: "the compose block", body: h.recipe.sh}, nil, []string{"STATEPACK_REMOTE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"})
	for i, who := range []string{"first machine, empty remote", "second machine, from the first's checkpoint"} {
		m := h.newMachine()
		if err := os.WriteFile(filepath.Join(m.dir, "docker-compose.yml"), []byte(h.recipe.yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		env := h.s3Env()
		env["LOCALSTACK_URL"] = h.world.url
		env["LOCALSTACK_AUTH_TOKEN"] = "ls-test-token"
		dataDir := filepath.Join(m.dir, "localstack-data", "state")
		h.world.expect(dataDir)
		h.runBlock(who, m, env)
		h.pushed = h.checkEvents(dataDir, "start", "save", "stop", "start", "load")
		h.checkRemote(h.runner(m, env), "dev-seed", []string{"dev-seed"}, nil)
		if i == 0 && t.Failed() {
			t.FailNow()
		}
	}
}

// composeFile is the part of a compose file the stand-in reads.
type composeFile struct {
	Services map[string]struct {
		Image       string   `yaml:"image"`
		Environment any      `yaml:"environment"` // a list of K=V, or a map
		Volumes     []string `yaml:"volumes"`
	} `yaml:"services"`
}

// fakeWorld is docker and LocalStack, as far as the recipes can tell: one
// HTTP server for the docker stand-in's calls and LocalStack's endpoints.
// LocalStack writes its state into DATA_DIR when asked to save and when it
// stops, as a LocalStack-like tree made by datagen (generated when empty,
// else mutated one step further).
type fakeWorld struct {
	t   *testing.T
	url string

	mu       sync.Mutex
	seed     int64
	step     int          // the last datagen.Mutate step, across runs
	stateDir string       // DATA_DIR of the current run: the volume's state/
	running  bool         // LocalStack is up
	events   []worldEvent // of the current run
	failures []string     // what went wrong in the stand-ins
}

// worldEvent is one thing LocalStack did and the state tree right after.
type worldEvent struct {
	kind string // start, save, stop, load
	tree treetest.Tree
}

func newFakeWorld(t *testing.T, seed int64) *fakeWorld {
	w := &fakeWorld{t: t, seed: seed}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /_fake/docker", w.docker)
	mux.HandleFunc("GET /_localstack/health", func(rw http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		defer w.mu.Unlock()
		if !w.running {
			http.Error(rw, "LocalStack is not running", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(rw, `{"services": {"dynamodb": "running", "kinesis": "running", "s3": "running", "sqs": "running"}}`)
	})
	mux.HandleFunc("POST /_localstack/state/{op}", w.state)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	w.url = srv.URL
	return w
}

// expect starts a run whose DATA_DIR is dataDir.
func (w *fakeWorld) expect(dataDir string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stateDir, w.running, w.events, w.failures = dataDir, false, nil, nil
}

// misuse describes what the recipe did wrong to the stand-ins, if anything.
func (w *fakeWorld) misuse() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.failures) == 0 {
		return ""
	}
	return "\nthe docker/LocalStack stand-ins were used wrongly:\n" + strings.Join(w.failures, "\n")
}

// take returns the run's events, failing the test on a stand-in failure.
func (w *fakeWorld) take() []worldEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.failures) > 0 {
		w.t.Fatalf("the docker/LocalStack stand-ins were used wrongly:\n%s", strings.Join(w.failures, "\n"))
	}
	return w.events
}

// fail records a misuse and answers it with an error (the stand-in's curl
// then fails, and so does the recipe).
func (w *fakeWorld) fail(rw http.ResponseWriter, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	w.failures = append(w.failures, msg)
	http.Error(rw, msg, http.StatusBadRequest)
}

func (w *fakeWorld) record(kind string) error {
	tree, err := treetest.Read(w.stateDir)
	if err != nil {
		return err
	}
	w.events = append(w.events, worldEvent{kind: kind, tree: tree})
	return nil
}

// writeState is LocalStack writing its state into DATA_DIR.
func (w *fakeWorld) writeState() error {
	entries, err := os.ReadDir(w.stateDir)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	if len(entries) == 0 {
		_, err = datagen.Generate(w.stateDir, datagen.Options{Seed: w.seed, Size: 512 << 10})
		return err
	}
	w.step++
	_, err = datagen.Mutate(w.stateDir, w.seed, w.step)
	return err
}

// state answers POST /_localstack/state/{save,load} with one JSON line per
// service, as LocalStack does.
func (w *fakeWorld) state(rw http.ResponseWriter, r *http.Request) {
	w.mu.Lock()
	defer w.mu.Unlock()
	op := r.PathValue("op")
	switch {
	case op != "save" && op != "load":
		w.fail(rw, "LocalStack: unknown state operation %q", op)
		return
	case !w.running:
		w.fail(rw, "LocalStack was asked to %s its state while it is not running", op)
		return
	}
	if op == "save" {
		if err := w.writeState(); err != nil {
			w.fail(rw, "LocalStack could not write its state: %v", err)
			return
		}
	}
	if err := w.record(op); err != nil {
		w.fail(rw, "read %s: %v", w.stateDir, err)
		return
	}
	enc := json.NewEncoder(rw)
	for _, s := range []string{"dynamodb", "kinesis", "s3", "sqs"} {
		_ = enc.Encode(map[string]string{"service": s, "status": "ok"})
	}
}

// docker does what `docker run` and `docker compose up|start|stop` would
// do to LocalStack, after checking that the recipe runs LocalStack with
// persistence and with its volume's state/ as DATA_DIR.
func (w *fakeWorld) docker(rw http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	args := strings.Split(strings.TrimSuffix(string(body), "\x00"), "\x00")
	cwd, args := args[0], args[1:]
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(args) == 0 {
		w.fail(rw, "docker: no command")
		return
	}
	var volume string
	var op string
	switch args[0] {
	case "run":
		v, err := dockerRunVolume(args[1:])
		if err != nil {
			w.fail(rw, "docker %s: %v", strings.Join(args, " "), err)
			return
		}
		volume, op = v, "start"
	case "compose":
		v, o, err := composeVolume(cwd, args[1:])
		if err != nil {
			w.fail(rw, "docker %s: %v", strings.Join(args, " "), err)
			return
		}
		volume, op = v, o
	default:
		w.fail(rw, "docker %s: the stand-in knows run and compose only", strings.Join(args, " "))
		return
	}
	if got := filepath.Join(volume, "state"); got != w.stateDir {
		w.fail(rw, "docker %s: LocalStack's state would be in %s, but DATA_DIR is %s", strings.Join(args, " "), got, w.stateDir)
		return
	}
	switch op {
	case "start":
		if w.running {
			w.fail(rw, "docker %s: LocalStack is already running", strings.Join(args, " "))
			return
		}
		// docker creates a missing bind-mount source; LocalStack its state/.
		if err := os.MkdirAll(w.stateDir, 0o755); err != nil {
			w.fail(rw, "%v", err)
			return
		}
		w.running = true
	case "stop":
		if !w.running {
			w.fail(rw, "docker %s: LocalStack is not running", strings.Join(args, " "))
			return
		}
		// LocalStack writes its state as it shuts down.
		if err := w.writeState(); err != nil {
			w.fail(rw, "LocalStack could not write its state: %v", err)
			return
		}
		w.running = false
	}
	if err := w.record(op); err != nil {
		w.fail(rw, "read %s: %v", w.stateDir, err)
		return
	}
	fmt.Fprintln(rw, "localstack")
}

// dockerRunVolume checks `docker run` of LocalStack and returns the host
// directory mounted as its volume.
func dockerRunVolume(args []string) (string, error) {
	var env, volumes []string
	image := ""
	for i := 0; i < len(args) && image == ""; i++ {
		a := args[i]
		name, value, hasValue := strings.Cut(a, "=")
		switch name {
		case "-d", "--detach", "--rm", "-i", "-t", "-it":
		case "-e", "--env", "-v", "--volume", "--name", "-p", "--publish", "--network":
			if !hasValue {
				if i+1 >= len(args) {
					return "", fmt.Errorf("%s needs a value", a)
				}
				i++
				value = args[i]
			}
			switch name {
			case "-e", "--env":
				env = append(env, value)
			case "-v", "--volume":
				volumes = append(volumes, value)
			}
		default:
			if strings.HasPrefix(a, "-") {
				return "", fmt.Errorf("the stand-in does not know %s", a)
			}
			image = a
		}
	}
	if !strings.Contains(image, "localstack") {
		return "", fmt.Errorf("image %q is not LocalStack", image)
	}
	return localstackVolume(env, volumes, "")
}

// composeVolume checks `docker compose up|start|stop [localstack]` against
// the compose file in cwd; it returns the volume's host directory and what
// happens to LocalStack.
func composeVolume(cwd string, args []string) (string, string, error) {
	raw, err := os.ReadFile(filepath.Join(cwd, "docker-compose.yml"))
	if err != nil {
		return "", "", err
	}
	var f composeFile
	if err := yaml.Unmarshal(raw, &f); err != nil {
		return "", "", err
	}
	svc, ok := f.Services["localstack"]
	if !ok || !strings.Contains(svc.Image, "localstack") {
		return "", "", fmt.Errorf("docker-compose.yml has no localstack service")
	}
	var env []string
	switch e := svc.Environment.(type) {
	case []any:
		for _, v := range e {
			env = append(env, fmt.Sprint(v))
		}
	case map[string]any:
		for k, v := range e {
			env = append(env, k+"="+fmt.Sprint(v))
		}
	}
	volume, err := localstackVolume(env, svc.Volumes, cwd)
	if err != nil {
		return "", "", err
	}
	if len(args) == 0 {
		return "", "", fmt.Errorf("no compose command")
	}
	for _, a := range args[1:] {
		if a != "-d" && a != "--detach" && a != "--wait" && a != "localstack" {
			return "", "", fmt.Errorf("the stand-in does not know %q", a)
		}
	}
	switch args[0] {
	case "up", "start":
		return volume, "start", nil
	case "stop", "down":
		return volume, "stop", nil
	}
	return "", "", fmt.Errorf("the stand-in knows up, start, stop and down only")
}

// localstackVolume checks that LocalStack gets PERSISTENCE=1 and a bind
// mount of /var/lib/localstack, and returns the mount's host directory
// (relative to base when relative).
func localstackVolume(env, volumes []string, base string) (string, error) {
	if !slices.Contains(env, "PERSISTENCE=1") {
		return "", fmt.Errorf("LocalStack runs without PERSISTENCE=1 (environment %v)", env)
	}
	for _, v := range volumes {
		src, dst, _ := strings.Cut(v, ":")
		dst, _, _ = strings.Cut(dst, ":")
		if dst != "/var/lib/localstack" {
			continue
		}
		if !filepath.IsAbs(src) {
			if base == "" || !strings.HasPrefix(src, ".") {
				return "", fmt.Errorf("volume %q: want a host path", v)
			}
			src = filepath.Join(base, src)
		}
		return filepath.Clean(src), nil
	}
	return "", fmt.Errorf("no bind mount of /var/lib/localstack in %v", volumes)
}
