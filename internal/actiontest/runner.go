// Package actiontest runs this repository's GitHub Actions (restore/ and
// save/, used as statepack/statepack/restore@v1 and .../save@v1) the way
// the Actions runner runs a composite action, so that tests exercise the
// real action.yml and its scripts rather than a copy of their logic.
//
// A Runner is one job on a fresh runner machine: its own HOME, RUNNER_TEMP,
// RUNNER_TOOL_CACHE and workspace, RUNNER_OS and RUNNER_ARCH of the host.
// Run reads the action's action.yml and does what the runner does with it:
// the inputs the step gives, else their defaults (expressions evaluated);
// each `run:` step written to a file under RUNNER_TEMP and run with `bash
// --noprofile --norc -eo pipefail FILE` in the workspace, with the job's
// environment, the step's env and the action step's env (expressions
// evaluated), GITHUB_ACTION_PATH, and fresh GITHUB_OUTPUT, GITHUB_STATE,
// GITHUB_ENV, GITHUB_PATH and GITHUB_STEP_SUMMARY files; afterwards
// GITHUB_ENV and GITHUB_PATH are applied to the steps that follow, and the
// action's outputs are evaluated from its steps' outputs.
//
// It evaluates only the expressions an action of ours needs (inputs.X,
// steps.ID.outputs.X, job.status, github.action_path, runner.X), and it
// refuses what it does not emulate (`if:`, nested `uses:`, shells other
// than bash, an expression spliced into a `run:` script's text), so a
// change to an action.yml that this emulation would run differently from
// GitHub fails the tests instead of passing them.
//
// Release serves a statepack release (the archive `make release` builds
// and its checksums file) on 127.0.0.1, as GitHub serves a release's
// downloads, for the actions to install from.
package actiontest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// Metadata is the part of an action.yml that the runner reads.
type Metadata struct {
	Name        string                `yaml:"name"`
	Description string                `yaml:"description"`
	Inputs      map[string]InputSpec  `yaml:"inputs"`
	Outputs     map[string]OutputSpec `yaml:"outputs"`
	Runs        Runs                  `yaml:"runs"`
}

// InputSpec is one input of an action.
type InputSpec struct {
	Description string `yaml:"description"`
	Required    bool   `yaml:"required"`
	Default     string `yaml:"default"`
}

// OutputSpec is one output of a composite action: an expression over its
// steps' outputs.
type OutputSpec struct {
	Description string `yaml:"description"`
	Value       string `yaml:"value"`
}

// Runs is how the action runs.
type Runs struct {
	Using string          `yaml:"using"`
	Steps []CompositeStep `yaml:"steps"`
	Rest  map[string]any  `yaml:",inline"`
}

// CompositeStep is one step of a composite action. Rest holds the keys the
// emulation does not support, so that Run can refuse them.
type CompositeStep struct {
	ID    string            `yaml:"id"`
	Name  string            `yaml:"name"`
	Shell string            `yaml:"shell"`
	Env   map[string]string `yaml:"env"`
	Run   string            `yaml:"run"`
	Rest  map[string]any    `yaml:",inline"`
}

// ReadMetadata reads and checks dir/action.yml: a composite action whose
// steps this package can run as the runner would.
func ReadMetadata(dir string) (*Metadata, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "action.yml"))
	if err != nil {
		return nil, err
	}
	var m Metadata
	if err := yaml.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%s/action.yml: %w", dir, err)
	}
	where := filepath.Base(dir) + "/action.yml"
	if m.Name == "" || m.Description == "" {
		return nil, fmt.Errorf("%s: GitHub requires a name and a description", where)
	}
	if m.Runs.Using != "composite" {
		return nil, fmt.Errorf("%s: runs.using is %q; the tests run composite actions only", where, m.Runs.Using)
	}
	if len(m.Runs.Rest) > 0 {
		return nil, fmt.Errorf("%s: runs has %v, which composite actions do not have (no pre or post steps)", where, slices.Sorted(maps.Keys(m.Runs.Rest)))
	}
	for i, st := range m.Runs.Steps {
		name := fmt.Sprintf("%s: step %d", where, i+1)
		switch {
		case len(st.Rest) > 0:
			return nil, fmt.Errorf("%s has %v, which the emulation does not run", name, slices.Sorted(maps.Keys(st.Rest)))
		case st.Run == "":
			return nil, fmt.Errorf("%s has no run: script", name)
		case st.Shell != "bash":
			return nil, fmt.Errorf("%s: shell is %q; composite run steps must name one, and ours use bash", name, st.Shell)
		case strings.Contains(st.Run, "${{"):
			// The runner splices an expression into the script's text
			// before bash reads it: an input holding quotes or $(...)
			// would become code. Inputs reach the scripts through env.
			return nil, fmt.Errorf("%s splices an expression into its script; pass it through env: instead", name)
		}
	}
	return &m, nil
}

// Runner is one job on a fresh runner machine.
type Runner struct {
	t testing.TB
	// Root is the repository whose actions run: a Step whose Action is
	// "restore" runs Root/restore/action.yml.
	Root string
	// Env is the job's environment: the runner's variables (set by
	// NewRunner) and what the workflow sets for the whole job. Tests may
	// change it between steps (RUNNER_ARCH, say).
	Env map[string]string
	// JobStatus is job.status as the actions see it: "success" until a
	// test says the job failed.
	JobStatus string
	// InputDefaults stand in for an action.yml default when a step leaves
	// the input out (release-url: the test's server instead of GitHub's).
	InputDefaults map[string]string
	// Home, Temp, ToolCache and Workspace are the machine's HOME,
	// RUNNER_TEMP, RUNNER_TOOL_CACHE and GITHUB_WORKSPACE.
	Home, Temp, ToolCache, Workspace string

	path    []string          // GITHUB_PATH additions, newest first
	envFile map[string]string // GITHUB_ENV additions
	steps   int               // steps run, for file names
}

// RunnerOS and RunnerArch are the host's RUNNER_OS and RUNNER_ARCH, as a
// GitHub runner on it would set them; "" when GitHub has no such runner.
func RunnerOS() string {
	return map[string]string{"linux": "Linux", "darwin": "macOS", "windows": "Windows"}[runtime.GOOS]
}

// RunnerArch: see RunnerOS.
func RunnerArch() string {
	return map[string]string{"amd64": "X64", "arm64": "ARM64", "386": "X86", "arm": "ARM"}[runtime.GOARCH]
}

// NewRunner returns a fresh machine for one job running the actions of
// the repository at root.
func NewRunner(t testing.TB, root string) *Runner {
	t.Helper()
	base := t.TempDir()
	r := &Runner{t: t, Root: root, JobStatus: "success", InputDefaults: map[string]string{}, envFile: map[string]string{},
		Home: filepath.Join(base, "home"), Temp: filepath.Join(base, "temp"),
		ToolCache: filepath.Join(base, "toolcache"), Workspace: filepath.Join(base, "work")}
	for _, d := range []string{r.Home, r.Temp, r.ToolCache, r.Workspace} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	r.Env = map[string]string{
		"CI": "true", "GITHUB_ACTIONS": "true", "HOME": r.Home,
		"RUNNER_OS": RunnerOS(), "RUNNER_ARCH": RunnerArch(), "RUNNER_TEMP": r.Temp, "RUNNER_TOOL_CACHE": r.ToolCache,
		"GITHUB_WORKSPACE": r.Workspace, "GITHUB_REPOSITORY": "acme/orders", "GITHUB_RUN_ID": "1001", "GITHUB_JOB": "e2e",
	}
	return r
}

// Step is one `uses:` step of a workflow: the action (a directory under
// Root), its `with:` and its `env:`.
type Step struct {
	Action string
	With   map[string]string
	Env    map[string]string
}

// Result is what one action step did.
type Result struct {
	Outputs map[string]string // the action's outputs
	Log     string            // stdout and stderr of its steps
	Err     error             // why a step failed; nil when all exited 0
}

// PathAdded is what the job's steps have added to PATH so far, newest
// first, as GITHUB_PATH does.
func (r *Runner) PathAdded() []string { return slices.Clone(r.path) }

// Run runs one action step as the runner would and returns what it did.
// It fails the test when the action.yml cannot be run faithfully here (an
// unknown input or expression); a step that exits non-zero is Result.Err.
func (r *Runner) Run(ctx context.Context, step Step) Result {
	t := r.t
	t.Helper()
	dir := filepath.Join(r.Root, step.Action)
	meta, err := ReadMetadata(dir)
	if err != nil {
		t.Fatal(err)
	}
	inputs := map[string]string{}
	for k, v := range step.With {
		if _, ok := meta.Inputs[k]; !ok {
			t.Fatalf("%s: the step gives input %q, which action.yml does not have (inputs: %v)", step.Action, k, slices.Sorted(maps.Keys(meta.Inputs)))
		}
		inputs[k] = v
	}
	ev := &evaluator{r: r, actionPath: dir, steps: map[string]map[string]string{}}
	for _, cs := range meta.Runs.Steps {
		if cs.ID != "" {
			ev.steps[cs.ID] = nil // known, not run yet
		}
	}
	for k, in := range meta.Inputs {
		if _, ok := inputs[k]; ok {
			continue
		}
		if v, ok := r.InputDefaults[k]; ok {
			inputs[k] = v
			continue
		}
		if inputs[k], err = ev.eval(in.Default); err != nil {
			t.Fatalf("%s: the default of input %s: %v", step.Action, k, err)
		}
	}
	ev.inputs = inputs

	res := Result{Outputs: map[string]string{}}
	var log bytes.Buffer
	for i, cs := range meta.Runs.Steps {
		env := map[string]string{}
		for k, v := range cs.Env {
			if env[k], err = ev.eval(v); err != nil {
				t.Fatalf("%s: step %d: env %s: %v", step.Action, i+1, k, err)
			}
		}
		outputs, err := r.runScript(ctx, dir, cs.Run, merge(step.Env, env), &log)
		if cs.ID != "" {
			ev.steps[cs.ID] = outputs
		}
		if err != nil {
			res.Err = fmt.Errorf("%s: step %d: %w", step.Action, i+1, err)
			break
		}
	}
	res.Log = log.String()
	for k, o := range meta.Outputs {
		if res.Outputs[k], err = ev.eval(o.Value); err != nil {
			t.Fatalf("%s: output %s: %v", step.Action, k, err)
		}
	}
	return res
}

// runScript runs one composite `run:` step: its script in a file under
// RUNNER_TEMP, under bash as the runner starts it for `shell: bash`. It
// returns the step's outputs, and applies what it wrote to GITHUB_ENV and
// GITHUB_PATH to the steps that follow.
func (r *Runner) runScript(ctx context.Context, actionPath, script string, stepEnv map[string]string, log *bytes.Buffer) (map[string]string, error) {
	t := r.t
	r.steps++
	files := filepath.Join(r.Temp, "_runner_file_commands")
	if err := os.MkdirAll(files, 0o755); err != nil {
		t.Fatal(err)
	}
	fileOf := map[string]string{}
	for _, name := range []string{"GITHUB_OUTPUT", "GITHUB_STATE", "GITHUB_ENV", "GITHUB_PATH", "GITHUB_STEP_SUMMARY"} {
		p := filepath.Join(files, fmt.Sprintf("%s_%d", strings.ToLower(strings.TrimPrefix(name, "GITHUB_")), r.steps))
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		fileOf[name] = p
	}
	scriptFile := filepath.Join(r.Temp, fmt.Sprintf("step-%d.sh", r.steps))
	if err := os.WriteFile(scriptFile, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}

	env := merge(r.Env, r.envFile, stepEnv, fileOf, map[string]string{"GITHUB_ACTION_PATH": actionPath})
	pathVar := os.Getenv("PATH")
	if v, ok := env["PATH"]; ok {
		pathVar = v
	}
	if len(r.path) > 0 {
		pathVar = strings.Join(r.path, string(os.PathListSeparator)) + string(os.PathListSeparator) + pathVar
	}
	env["PATH"] = pathVar

	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "--noprofile", "--norc", "-eo", "pipefail", scriptFile)
	cmd.Dir = r.Workspace
	for _, k := range slices.Sorted(maps.Keys(env)) {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.WaitDelay = 5 * time.Second
	runErr := cmd.Run()

	outputs, err := readKeyValues(fileOf["GITHUB_OUTPUT"])
	if err != nil {
		t.Fatalf("GITHUB_OUTPUT: %v", err)
	}
	added, err := readKeyValues(fileOf["GITHUB_ENV"])
	if err != nil {
		t.Fatalf("GITHUB_ENV: %v", err)
	}
	maps.Copy(r.envFile, added)
	raw, err := os.ReadFile(fileOf["GITHUB_PATH"])
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			r.path = append([]string{l}, r.path...)
		}
	}
	return outputs, runErr
}

// readKeyValues reads a GITHUB_OUTPUT or GITHUB_ENV file: NAME=VALUE
// lines, and NAME<<DELIMITER blocks for values of several lines.
func readKeyValues(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		if name, delim, ok := strings.Cut(line, "<<"); ok && !strings.Contains(name, "=") {
			var value []string
			closed := false
			for sc.Scan() {
				if sc.Text() == delim {
					closed = true
					break
				}
				value = append(value, sc.Text())
			}
			if !closed {
				return nil, fmt.Errorf("%s: no closing %q", name, delim)
			}
			out[name] = strings.Join(value, "\n")
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("line %q is neither NAME=VALUE nor NAME<<DELIMITER", line)
		}
		out[name] = value
	}
	return out, sc.Err()
}

// evaluator evaluates the ${{ }} expressions of an action.yml: property
// lookups in the contexts a composite action sees, nothing else.
type evaluator struct {
	r          *Runner
	actionPath string
	inputs     map[string]string
	steps      map[string]map[string]string // step id -> outputs
}

var (
	exprRe   = regexp.MustCompile(`\$\{\{(.*?)\}\}`)
	lookupRe = regexp.MustCompile(`^([a-z_]+)((?:\.[A-Za-z0-9_-]+)+)$`)
)

func (e *evaluator) eval(s string) (string, error) {
	var failed error
	out := exprRe.ReplaceAllStringFunc(s, func(m string) string {
		expr := strings.TrimSpace(exprRe.FindStringSubmatch(m)[1])
		v, err := e.lookup(expr)
		if err != nil && failed == nil {
			failed = err
		}
		return v
	})
	return out, failed
}

func (e *evaluator) lookup(expr string) (string, error) {
	m := lookupRe.FindStringSubmatch(expr)
	if m == nil {
		return "", fmt.Errorf("the emulation evaluates property lookups only, not %q", expr)
	}
	path := strings.Split(m[2][1:], ".")
	one := func(values map[string]string) (string, error) {
		if len(path) != 1 {
			return "", fmt.Errorf("unknown property %s", expr)
		}
		v, ok := values[path[0]]
		if !ok {
			return "", fmt.Errorf("unknown property %s", expr)
		}
		return v, nil
	}
	switch m[1] {
	case "inputs":
		if e.inputs == nil {
			return "", errors.New("inputs are not known yet (an input's default cannot use inputs)")
		}
		return one(e.inputs)
	case "job":
		return one(map[string]string{"status": e.r.JobStatus})
	case "github":
		return one(map[string]string{"action_path": e.actionPath, "workspace": e.r.Workspace})
	case "runner":
		return one(map[string]string{"os": e.r.Env["RUNNER_OS"], "arch": e.r.Env["RUNNER_ARCH"],
			"temp": e.r.Temp, "tool_cache": e.r.ToolCache})
	case "steps":
		if len(path) != 3 || path[1] != "outputs" {
			return "", fmt.Errorf("the emulation knows steps.ID.outputs.NAME only, not %s", expr)
		}
		outputs, ok := e.steps[path[0]]
		if !ok {
			return "", fmt.Errorf("%s: the action has no step with id %s", expr, path[0])
		}
		// A step that did not run, or did not set the output, gives "".
		return outputs[path[2]], nil
	}
	return "", fmt.Errorf("the emulation does not know the context of %s", expr)
}

// merge returns the union of maps, later ones winning.
func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		maps.Copy(out, m)
	}
	return out
}
