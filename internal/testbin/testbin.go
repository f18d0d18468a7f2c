// Package testbin builds the statepack binary once per test process and
// runs it the way a user would, with an environment that holds nothing
// from the machine running the tests except PATH: integration tests in any
// package set HOME, XDG_DATA_HOME, STATEPACK_STORE, DATA_DIR and the rest
// per test.
//
// A package that uses it removes the build directory at the end with
//
//	func TestMain(m *testing.M) { testbin.Main(m) }
//
// Set STATEPACK_BIN to a prebuilt binary to skip the build.
package testbin

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Package is the import path of the command that Path builds.
const Package = "github.com/statepack/statepack/cmd/statepack"

var (
	buildOnce sync.Once
	buildDir  string
	buildPath string
	buildErr  error
)

// Main runs the tests of a package and removes the built binary after.
func Main(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// Path returns the statepack binary, building it on first use.
func Path(t testing.TB) string {
	t.Helper()
	buildOnce.Do(build)
	if buildErr != nil {
		t.Fatalf("build statepack: %v", buildErr)
	}
	return buildPath
}

func build() {
	if p := os.Getenv("STATEPACK_BIN"); p != "" {
		buildPath = p
		return
	}
	buildDir, buildErr = os.MkdirTemp("", "statepack-testbin-")
	if buildErr != nil {
		return
	}
	buildPath = filepath.Join(buildDir, "statepack")
	args := []string{"build", "-o", buildPath,
		"-ldflags", "-X main.version=v0.0.0-test -X main.commit=testcommit"}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, Package)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		buildErr = fmt.Errorf("%v: %s", err, out)
	}
}

// Result is what one run of the binary did.
type Result struct {
	Args   []string
	Stdout string
	Stderr string
	Code   int // exit status; -1 when it was killed by a signal
}

// String describes the run for failure messages.
func (r Result) String() string {
	return fmt.Sprintf("statepack %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.Args, " "), r.Code, r.Stdout, r.Stderr)
}

// Env is the environment a run sees: PATH from the test process, and
// exactly the variables set here. Values are never inherited otherwise,
// so AWS keys or a DATA_DIR of the developer cannot leak into a test.
type Env map[string]string

// Runner runs the binary with an environment and working directory.
type Runner struct {
	T       testing.TB
	Env     Env
	Dir     string        // working directory; empty means the test's
	Timeout time.Duration // per run; zero means one minute
}

// New returns a runner whose HOME and XDG_DATA_HOME are fresh temporary
// directories of the test.
func New(t testing.TB) *Runner {
	home := t.TempDir()
	return &Runner{T: t, Env: Env{"HOME": home, "XDG_DATA_HOME": filepath.Join(home, ".local", "share")}}
}

// Environ renders the runner's environment for exec.Cmd.
func (r *Runner) Environ() []string {
	env := []string{"PATH=" + os.Getenv("PATH")}
	if raceEnabled {
		// A race binary sleeps a second before exiting unless told not
		// to: seven times the whole run of the CLI tests.
		env = append(env, "GORACE=atexit_sleep_ms=0")
	}
	keys := make([]string, 0, len(r.Env))
	for k := range r.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+r.Env[k])
	}
	return env
}

// Command returns the command for args without starting it, for tests
// that attach their own standard streams (a pseudo-terminal).
func (r *Runner) Command(args ...string) *exec.Cmd {
	cmd := exec.Command(Path(r.T), args...)
	cmd.Env = r.Environ()
	cmd.Dir = r.Dir
	return cmd
}

// Run runs the binary to completion and returns what it printed and its
// exit status. It fails the test only when the binary cannot be run.
func (r *Runner) Run(args ...string) Result {
	r.T.Helper()
	cmd := r.Command(args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	timeout := r.Timeout
	if timeout == 0 {
		timeout = time.Minute
	}
	if err := cmd.Start(); err != nil {
		r.T.Fatalf("start statepack: %v", err)
	}
	timer := time.AfterFunc(timeout, func() { _ = cmd.Process.Kill() })
	err := cmd.Wait()
	timer.Stop()
	res := Result{Args: args, Stdout: stdout.String(), Stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.Code = exit.ExitCode()
	default:
		r.T.Fatalf("run statepack %s: %v", strings.Join(args, " "), err)
	}
	// Checked here, not by exit status: a race binary exits 66 only
	// when it would have exited 0, and many runs expect a failure.
	if raceEnabled && strings.Contains(res.Stderr, "WARNING: DATA RACE") {
		r.T.Errorf("statepack reported a data race:\n%s", res)
	}
	return res
}

// MustRun runs the binary and fails the test unless it exits 0.
func (r *Runner) MustRun(args ...string) Result {
	r.T.Helper()
	res := r.Run(args...)
	if res.Code != 0 {
		r.T.Fatalf("%s", res)
	}
	return res
}
