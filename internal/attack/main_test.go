package attack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/statepack/statepack/internal/benchutil"
	"github.com/statepack/statepack/internal/datagen"
	"github.com/statepack/statepack/internal/miniotest"
	"github.com/statepack/statepack/internal/testbin"
	"github.com/statepack/statepack/internal/treetest"
)

// TestMain builds the binary once (unless STATEPACK_BIN names one), runs
// the tests with a shared MinIO, and removes both afterwards.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "statepack-attack-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if os.Getenv("STATEPACK_BIN") == "" {
		bin := filepath.Join(dir, "statepack")
		cmd := exec.Command("go", "build", "-o", bin, "-ldflags", "-X main.version=v0.0.0-test -X main.commit=testcommit", testbin.Package)
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build statepack: %v\n%s", err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
		os.Setenv("STATEPACK_BIN", bin)
	}
	code := miniotest.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// Seeds. One base seed per test process, logged by every test that draws
// from it; each test derives its own from the base and its name, so one
// test replays alone with STATEPACK_TORTURE_SEED.
var baseSeed = sync.OnceValue(func() uint64 {
	if s := os.Getenv("STATEPACK_TORTURE_SEED"); s != "" {
		if v, err := strconv.ParseUint(s, 10, 64); err == nil {
			return v
		}
	}
	return uint64(time.Now().UnixNano())
})

// seedFor returns the test's seed and logs how to replay it.
func seedFor(t testing.TB) uint64 {
	base := baseSeed()
	t.Logf("seed %d (replay: STATEPACK_TORTURE_SEED=%d go test -run '^%s$' ./internal/attack)", base, base, strings.SplitN(t.Name(), "/", 2)[0])
	h := fnv.New64a()
	h.Write([]byte(strings.SplitN(t.Name(), "/", 2)[0]))
	return base ^ h.Sum64()
}

// tortureRounds is STATEPACK_TORTURE as a count; 0 when unset.
func tortureRounds() int {
	n, _ := strconv.Atoi(os.Getenv("STATEPACK_TORTURE"))
	return max(n, 0)
}

// skipUnlessTorture skips the heavy variants outside `make torture`.
func skipUnlessTorture(t *testing.T) int {
	t.Helper()
	n := tortureRounds()
	if n == 0 {
		t.Skip("set STATEPACK_TORTURE=N (make torture) to run this")
	}
	return n
}

// env is one user on one machine: a home, a store, a DATA_DIR, and the
// variables the binary sees (nothing inherited but PATH).
type env struct {
	t     testing.TB
	root  string
	store string
	data  string
	vars  map[string]string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	root := t.TempDir()
	e := &env{t: t, root: root, store: filepath.Join(root, "store"), data: filepath.Join(root, "data")}
	home := filepath.Join(root, "home")
	e.vars = map[string]string{
		"HOME":            home,
		"XDG_DATA_HOME":   filepath.Join(home, ".local", "share"),
		"STATEPACK_STORE": e.store,
		"DATA_DIR":        e.data,
	}
	if err := os.MkdirAll(e.data, 0o755); err != nil {
		t.Fatal(err)
	}
	return e
}

// s3Region is the region the tests name, so the client never asks the
// server for a bucket's location.
func s3Region(srv *miniotest.Server) string {
	if srv.Region != "" {
		return srv.Region
	}
	return "us-east-1"
}

// useS3 points the env's S3 settings at endpoint (MinIO itself, or a
// faultnet proxy in front of it) with the server's credentials.
func (e *env) useS3(srv *miniotest.Server, endpoint string) *env {
	e.vars["AWS_ENDPOINT_URL"] = endpoint
	e.vars["AWS_ACCESS_KEY_ID"] = srv.AccessKey
	e.vars["AWS_SECRET_ACCESS_KEY"] = srv.SecretKey
	e.vars["AWS_REGION"] = s3Region(srv)
	return e
}

func (e *env) environ(extra map[string]string) []string {
	vars := map[string]string{}
	for k, v := range e.vars {
		vars[k] = v
	}
	for k, v := range extra {
		vars[k] = v
	}
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := []string{"PATH=" + os.Getenv("PATH")}
	for _, k := range keys {
		out = append(out, k+"="+vars[k])
	}
	return out
}

// result is one run of the binary.
type result struct {
	args   []string
	stdout string
	stderr string
	code   int           // exit status; -1 when killed by a signal
	took   time.Duration // wall time
	maxRSS int64         // peak resident set, bytes
	err    error         // the binary could not be run at all
}

func (r result) String() string {
	return fmt.Sprintf("statepack %s: exit %d after %v (peak RSS %d MiB)\nstdout:\n%s\nstderr:\n%s",
		strings.Join(r.args, " "), r.code, r.took.Round(time.Millisecond), r.maxRSS>>20, r.stdout, r.stderr)
}

// command prepares a run of the binary without starting it.
func (e *env) command(extra map[string]string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Getenv("STATEPACK_BIN"), args...)
	cmd.Env = e.environ(extra)
	cmd.Dir = e.root
	return cmd
}

// runWith runs the binary to completion, killing it after limit. It is
// safe to call from any goroutine: it never fails the test itself.
func (e *env) runWith(extra map[string]string, limit time.Duration, args ...string) result {
	cmd := e.command(extra, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	res := result{args: args}
	benchutil.ResetPeakRSS() // else the test process's own peak counts as the child's
	start := time.Now()
	if err := cmd.Start(); err != nil {
		res.err, res.code = err, -2
		return res
	}
	timer := time.AfterFunc(limit, func() { _ = cmd.Process.Kill() })
	_ = cmd.Wait()
	timer.Stop()
	res.took = time.Since(start)
	res.stdout, res.stderr = stdout.String(), stderr.String()
	res.code = cmd.ProcessState.ExitCode()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.maxRSS = ru.Maxrss << 10 // kilobytes on Linux
	}
	return res
}

// runLimit is the bound on any single run of the binary in these tests:
// far above what a healthy run takes, so only a hang reaches it.
const runLimit = 2 * time.Minute

func (e *env) run(args ...string) result { return e.runWith(nil, runLimit, args...) }

// must runs the binary and fails the test unless it exits 0.
func (e *env) must(args ...string) result {
	e.t.Helper()
	r := e.run(args...)
	if r.code != 0 {
		e.t.Fatalf("%s", r)
	}
	return r
}

// jsonField runs args with --json, requires success and returns one
// string field of the document.
func (e *env) jsonField(field string, args ...string) string {
	e.t.Helper()
	r := e.must(append([]string{"--json"}, args...)...)
	var doc map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		e.t.Fatalf("%s: %v", r, err)
	}
	s, _ := doc[field].(string)
	return s
}

// generate fills dir with a LocalStack-like tree of about size bytes.
func generate(t testing.TB, dir string, seed int64, size int64) {
	t.Helper()
	if _, err := datagen.Generate(dir, datagen.Options{Seed: seed, Size: size}); err != nil {
		t.Fatal(err)
	}
}

// treeOf reads a tree; it returns an error rather than failing, for use
// in goroutines.
func treeOf(dir string) (treetest.Tree, error) { return treetest.Read(dir) }

// sameTree describes how got differs from want, or returns "".
func sameTree(want, got treetest.Tree) string {
	d := treetest.Diff(want, got)
	if len(d) == 0 {
		return ""
	}
	if len(d) > 5 {
		d = append(d[:5], fmt.Sprintf("... and %d more", len(d)-5))
	}
	return strings.Join(d, "\n")
}

// clearMessage checks that a failed run said why in one line on stderr,
// naming each of want, without a secret. It returns what is wrong, or "".
func clearMessage(r result, secret string, want ...string) string {
	msg := strings.TrimRight(r.stderr, "\n")
	var problems []string
	if strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "statepack: ") {
		problems = append(problems, "not one line starting with 'statepack: '")
	}
	if secret != "" && strings.Contains(r.stderr+r.stdout, secret) {
		problems = append(problems, "shows the secret key")
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			problems = append(problems, fmt.Sprintf("does not name %q", w))
		}
	}
	if len(problems) == 0 {
		return ""
	}
	return fmt.Sprintf("message %q: %s", msg, strings.Join(problems, "; "))
}

// rng returns a generator for a test's seed and a stream number.
func rng(seed, stream uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, stream)) }

// randomBytes returns n bytes from g.
func randomBytes(g *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := g.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// table renders rows as a Markdown table for docs/reliability.md.
func table(header []string, rows [][]string) string {
	var b strings.Builder
	b.WriteString("| " + strings.Join(header, " | ") + " |\n|")
	for range header {
		b.WriteString(" --- |")
	}
	b.WriteString("\n")
	for _, r := range rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
	return b.String()
}

// newBucket returns a fresh bucket on the shared MinIO.
func newBucket(t *testing.T, srv *miniotest.Server) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return srv.NewBucket(ctx, t)
}
