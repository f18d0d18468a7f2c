package attack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/maintain"
	"github.com/statepack/statepack/archive/restorer"
	"github.com/statepack/statepack/archive/transfer"
	"github.com/statepack/statepack/internal/faultnet"
	"github.com/statepack/statepack/internal/miniotest"
	"github.com/statepack/statepack/internal/treetest"
	"github.com/statepack/statepack/remote"
	"github.com/statepack/statepack/remote/dirbackend"
)

// Part 4 of issue 4: network faults between statepack and MinIO, through
// a faultnet proxy. Every faulted push or pull must either succeed (by
// retrying) or fail within a bounded time with one clear line that shows
// no secret. After every run both sides verify with --read-data, and a
// run without faults completes and restores a tree identical to the
// source: nothing acknowledged is ever lost.

// faultTimeout is the --timeout of a faulted run: the bound a failure
// must stay within.
const faultTimeout = 60 * time.Second

// planFor is the fault plan of one kind at one rate. Half of the
// byte-count faults (drop, stall, reset) fire within the first KiB of a
// direction, in a request's or answer's head or small body; the other
// half anywhere in the first MiB, mid-body in packs. Stalls last 1.5s,
// below the client's timeouts (endless stalls: TestEndpointNeverHangs).
func planFor(kind faultnet.Kind, rate float64, seed uint64) faultnet.Plan {
	switch kind {
	case faultnet.Drop, faultnet.Reset, faultnet.Stall:
		var stall time.Duration
		if kind == faultnet.Stall {
			stall = 1500 * time.Millisecond
		}
		// The first rule takes rate/2 of the requests, the second the
		// same share of all requests out of those the first left.
		half := rate / 2
		return faultnet.Plan{Seed: seed, Faults: []faultnet.Fault{
			{Kind: kind, Rate: half, MaxBytes: 1 << 10, For: stall},
			{Kind: kind, Rate: half / (1 - half), MaxBytes: 1 << 20, For: stall},
		}}
	case faultnet.Delay:
		return faultnet.Plan{Seed: seed, Faults: []faultnet.Fault{{Kind: kind, Rate: rate, For: 2 * time.Millisecond}}}
	}
	return faultnet.Plan{Seed: seed, Faults: []faultnet.Fault{{Kind: kind, Rate: rate}}}
}

// netRun is the outcome of one faulted run.
type netRun struct {
	mode     string // cli or lib
	op       string // push or pull
	kind     faultnet.Kind
	rate     float64
	ok       bool          // the faulted run succeeded
	took     time.Duration // its wall time
	injected int64         // faults that fired during it
	lost     bool          // the clean rerun did not restore the source exactly
	problem  string        // what broke an invariant, if anything
	message  string        // the error line of a failed run
}

// sweep collects runs from concurrent scenarios.
type sweep struct {
	mu   sync.Mutex
	runs []netRun
}

func (s *sweep) add(r netRun) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runs = append(s.runs, r)
}

// report fails the test for every broken invariant and logs the table of
// figures for docs/reliability.md.
func (s *sweep) report(t *testing.T, title string) {
	t.Helper()
	type key struct {
		mode string
		kind faultnet.Kind
		rate float64
	}
	type row struct {
		runs, ok, failed, lost int
		injected               int64
		maxOK, maxFail         time.Duration
	}
	rows := map[key]*row{}
	for _, r := range s.runs {
		if r.problem != "" {
			t.Errorf("%s %s, %s at %.2f: %s", r.mode, r.op, r.kind, r.rate, r.problem)
		}
		if !r.ok {
			t.Logf("%s %s, %s at %.2f failed in %v after %d faults: %s", r.mode, r.op, r.kind, r.rate, r.took.Round(time.Millisecond), r.injected, r.message)
		}
		k := key{r.mode, r.kind, r.rate}
		if rows[k] == nil {
			rows[k] = &row{}
		}
		w := rows[k]
		w.runs++
		w.injected += r.injected
		if r.ok {
			w.ok++
			w.maxOK = max(w.maxOK, r.took)
		} else {
			w.failed++
			w.maxFail = max(w.maxFail, r.took)
		}
		if r.lost {
			w.lost++
		}
	}
	keys := make([]key, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.mode != b.mode {
			return a.mode < b.mode
		}
		if a.kind != b.kind {
			return a.kind < b.kind
		}
		return a.rate < b.rate
	})
	var out [][]string
	total := row{}
	for _, k := range keys {
		w := rows[k]
		total.runs += w.runs
		total.ok += w.ok
		total.failed += w.failed
		total.lost += w.lost
		total.injected += w.injected
		fail := "-"
		if w.failed > 0 {
			fail = fmt.Sprintf("%d (slowest %.1fs)", w.failed, w.maxFail.Seconds())
		}
		out = append(out, []string{k.mode, k.kind.String(), fmt.Sprintf("%.0f%%", k.rate*100), fmt.Sprint(w.runs),
			fmt.Sprint(w.injected), fmt.Sprint(w.ok), fail, fmt.Sprint(w.lost)})
	}
	out = append(out, []string{"**all**", "", "", fmt.Sprint(total.runs), fmt.Sprint(total.injected), fmt.Sprint(total.ok), fmt.Sprint(total.failed), fmt.Sprint(total.lost)})
	t.Logf("%s\n\n%s", title, table([]string{"level", "fault", "rate", "runs (push+pull)", "faults injected", "succeeded", "failed in bounds", "data lost"}, out))
}

// faultCase is one (kind, rate) of the sweep.
type faultCase struct {
	kind faultnet.Kind
	rate float64
}

func faultCases(rates []float64) []faultCase {
	var out []faultCase
	for _, k := range faultnet.Kinds {
		for _, r := range rates {
			out = append(out, faultCase{k, r})
		}
	}
	return out
}

// source is a machine with a saved state "s": a LocalStack-like tree of
// a few MiB in a store with 1 MiB packs, so a push or pull moves several
// packs and many blocks.
type source struct {
	*env
	tree treetest.Tree
}

func newSource(t testing.TB, seed int64, size int64) *source {
	t.Helper()
	e := newEnv(t)
	e.must("init", "--pack-size", "1MiB")
	if err := os.Remove(e.data); err != nil {
		t.Fatal(err)
	}
	generate(t, e.data, seed, size)
	e.must("save", "s", "-m", "v1")
	return &source{env: e, tree: treetest.MustRead(t, e.data)}
}

// cliScenario runs a faulted push and a faulted pull through the real
// binary and checks each one and what it leaves.
func cliScenario(srv *miniotest.Server, bucket string, a *source, fc faultCase, seed uint64, round int, sw *sweep, newEnvFn func() *env) {
	proxy, err := faultnet.New(srv.Endpoint, faultnet.Plan{})
	if err != nil {
		sw.add(netRun{mode: "cli", problem: err.Error()})
		return
	}
	defer proxy.Close()
	url := fmt.Sprintf("s3://%s/%s-%03.0f-%d", bucket, fc.kind, fc.rate*100, round)
	faulty := map[string]string{"AWS_ENDPOINT_URL": proxy.URL(), "STATEPACK_REMOTE": url}
	clean := map[string]string{"STATEPACK_REMOTE": url}

	// Push through faults, then check both sides and push again cleanly.
	run := netRun{mode: "cli", op: "push", kind: fc.kind, rate: fc.rate}
	proxy.SetPlan(planFor(fc.kind, fc.rate, seed))
	r := a.runWith(faulty, faultTimeout+30*time.Second, "--quiet", "--timeout", faultTimeout.String(), "push", "s")
	proxy.SetPlan(faultnet.Plan{})
	run.ok, run.took, run.injected = r.code == 0, r.took, proxy.Stats().Total()
	run.problem, run.message = checkFaulted(r, srv.SecretKey), strings.TrimSpace(r.stderr)
	pushed := run.ok
	if p := verifyBoth(a.env, clean, !pushed); p != "" && run.problem == "" {
		run.problem = p
	}
	if c := a.runWith(clean, runLimit, "push", "s"); c.code != 0 && run.problem == "" {
		run.problem = "clean push after the faulted one failed: " + c.String()
	}
	sw.add(run)

	// Pull into a fresh machine through faults, check, pull cleanly,
	// compare with the source.
	b := newEnvFn()
	b.useS3(srv, srv.Endpoint)
	run = netRun{mode: "cli", op: "pull", kind: fc.kind, rate: fc.rate}
	before := proxy.Stats().Total()
	proxy.SetPlan(planFor(fc.kind, fc.rate, seed^0x9e3779b97f4a7c15))
	r = b.runWith(faulty, faultTimeout+30*time.Second, "--quiet", "--timeout", faultTimeout.String(), "pull", "s", "--restore")
	proxy.SetPlan(faultnet.Plan{})
	run.ok, run.took, run.injected = r.code == 0, r.took, proxy.Stats().Total()-before
	run.problem, run.message = checkFaulted(r, srv.SecretKey), strings.TrimSpace(r.stderr)
	if p := verifyBoth(b, clean, false); p != "" && run.problem == "" {
		run.problem = p
	}
	if c := b.runWith(clean, runLimit, "pull", "s", "--restore"); c.code != 0 {
		run.lost = true
		if run.problem == "" {
			run.problem = "clean pull after the faulted one failed: " + c.String()
		}
	} else if got, err := treeOf(b.data); err != nil || sameTree(a.tree, got) != "" {
		run.lost = true
		run.problem = fmt.Sprintf("restored tree differs from the source: %v %s", err, sameTree(a.tree, got))
	}
	sw.add(run)
}

// checkFaulted checks a faulted run: success, or a failure within the
// --timeout bound with one clear line.
func checkFaulted(r result, secret string) string {
	switch {
	case r.err != nil:
		return r.err.Error()
	case r.code == 0:
		return ""
	case r.code < 0:
		return fmt.Sprintf("killed after %v: it did not stop by its --timeout\n%s", r.took, r)
	case r.took > faultTimeout+5*time.Second:
		return fmt.Sprintf("failed only after %v, beyond --timeout %v", r.took, faultTimeout)
	}
	if msg := clearMessage(r, secret); msg != "" {
		return msg + "\n" + r.String()
	}
	return ""
}

// verifyBoth runs verify --read-data on the local store and on the
// remote (directly, without faults). A remote that a failed first push
// never initialised has nothing to verify.
func verifyBoth(e *env, clean map[string]string, mayBeEmpty bool) string {
	if v := e.runWith(clean, runLimit, "verify", "--read-data"); v.code != 0 {
		return "local verify after the faulted run: " + v.String()
	}
	v := e.runWith(clean, runLimit, "--json", "verify", "--remote", "--read-data")
	if v.code != 0 && !(mayBeEmpty && errorCode(v) == "not_repository") {
		return "remote verify after the faulted run: " + v.String()
	}
	return ""
}

// errorCode is the code of a --json run's error document, or "".
func errorCode(r result) string {
	var doc struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal([]byte(r.stderr), &doc)
	return doc.Error.Code
}

// TestNetworkFaultsCLI: push and pull with the real binary through each
// fault kind at two rates.
func TestNetworkFaultsCLI(t *testing.T) {
	t.Parallel()
	runNetworkSweep(t, miniotest.Get(t), seedFor(t), []float64{0.1, 0.3}, 1, 3)
}

// TestTortureNetworkFaultsCLI: the same at five rates, STATEPACK_TORTURE/20
// rounds (10 for make torture's 200: 600 faulted runs).
func TestTortureNetworkFaultsCLI(t *testing.T) {
	n := skipUnlessTorture(t)
	t.Parallel()
	runNetworkSweep(t, miniotest.Get(t), seedFor(t), []float64{0.05, 0.1, 0.2, 0.35, 0.5}, max(1, n/20), 3)
}

func runNetworkSweep(t *testing.T, srv *miniotest.Server, seed uint64, rates []float64, rounds, parallel int) {
	bucket := newBucket(t, srv)
	a := newSource(t, int64(seed%1000), 3<<20)
	a.useS3(srv, srv.Endpoint)
	var sw sweep
	var g errgroup.Group
	g.SetLimit(parallel)
	for round := range rounds {
		for i, fc := range faultCases(rates) {
			s := seed + uint64(round*1000+i)
			g.Go(func() error {
				cliScenario(srv, bucket, a, fc, s, round, &sw, func() *env { return newEnv(t) })
				return nil
			})
		}
	}
	_ = g.Wait()
	sw.report(t, fmt.Sprintf("Network faults, real binary (`--timeout %v`), %d round(s), seed %d", faultTimeout, rounds, baseSeed()))
}

// TestNetworkFaultsLibrary: the same sweep through the public API:
// remote.OpenRemote (S3 settings from the environment, pointed at the
// proxy), transfer.Push, transfer.Pull and Repository.Restore, in process.
func TestNetworkFaultsLibrary(t *testing.T) {
	t.Parallel()
	runLibrarySweep(t, []float64{0.2}, 1)
}

// TestTortureNetworkFaultsLibrary: three rates, STATEPACK_TORTURE/40 rounds.
func TestTortureNetworkFaultsLibrary(t *testing.T) {
	n := skipUnlessTorture(t)
	t.Parallel()
	runLibrarySweep(t, []float64{0.1, 0.3, 0.5}, max(1, n/40))
}

// libEnv serialises the library sweeps: OpenRemote reads AWS_* from the
// process environment, so a sweep sets it with os.Setenv (restored
// afterwards) rather than t.Setenv, which would forbid running in
// parallel with the rest. Nothing else in this package reads those
// variables in process: the binary gets an explicit environment, and
// crafted objects go through explicit S3Configs.
var libEnv sync.Mutex

func runLibrarySweep(t *testing.T, rates []float64, rounds int) {
	srv := miniotest.Get(t)
	seed := seedFor(t)
	proxy, err := faultnet.New(srv.Endpoint, faultnet.Plan{})
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	libEnv.Lock()
	defer libEnv.Unlock()
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL": proxy.URL(), "AWS_ACCESS_KEY_ID": srv.AccessKey, "AWS_SECRET_ACCESS_KEY": srv.SecretKey,
		"AWS_REGION": s3Region(srv), "AWS_ENDPOINT_URL_S3": "", "AWS_PROFILE": "", "AWS_SESSION_TOKEN": "",
	} {
		old, had := os.LookupEnv(k)
		os.Setenv(k, v)
		defer func() {
			if had {
				os.Setenv(k, old)
			} else {
				os.Unsetenv(k)
			}
		}()
	}
	bucket := newBucket(t, srv)
	a := newSource(t, int64(seed%1000)+1, 3<<20)
	var sw sweep
	for round := range rounds {
		for i, fc := range faultCases(rates) {
			libScenario(t, srv, proxy, bucket, a, fc, seed+uint64(round*1000+i), round, &sw)
		}
	}
	sw.report(t, fmt.Sprintf("Network faults, library (transfer.Push/Pull, 60s context), %d round(s), seed %d", rounds, baseSeed()))
}

// libScenario is cliScenario through the API. The proxy carries every
// request; its plan is switched off for the checks and clean reruns.
func libScenario(t *testing.T, srv *miniotest.Server, proxy *faultnet.Proxy, bucket string, a *source, fc faultCase, seed uint64, round int, sw *sweep) {
	url := fmt.Sprintf("s3://%s/lib-%s-%03.0f-%d", bucket, fc.kind, fc.rate*100, round)
	local := openStore(t, a.store)
	push := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), faultTimeout)
		defer cancel()
		rem, err := remote.OpenRemote(ctx, url, false, remote.InitIfEmpty(local), remote.WithIndexCache(filepath.Join(a.store, "cache")))
		if err == nil {
			_, err = transfer.Push(ctx, local, rem, transfer.PushOptions{State: "s"})
		}
		return err
	}
	run := netRun{mode: "lib", op: "push", kind: fc.kind, rate: fc.rate}
	before := proxy.Stats().Total()
	proxy.SetPlan(planFor(fc.kind, fc.rate, seed))
	start := time.Now()
	err := push()
	proxy.SetPlan(faultnet.Plan{})
	run.ok, run.took, run.injected = err == nil, time.Since(start), proxy.Stats().Total()-before
	run.problem, run.message = checkLibError(err, run.took, srv.SecretKey), errText(err)
	if p := verifyRepos(local, url, err != nil); p != "" && run.problem == "" {
		run.problem = p
	}
	if err := push(); err != nil && run.problem == "" {
		run.problem = "clean push after the faulted one: " + err.Error()
	}
	sw.add(run)

	dir := t.TempDir()
	b := openStore(t, filepath.Join(dir, "store"))
	var snap format.ID
	pull := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), faultTimeout)
		defer cancel()
		rem, err := remote.OpenRemote(ctx, url, false, remote.WithIndexCache(filepath.Join(dir, "store", "cache")))
		if err != nil {
			return err
		}
		res, err := transfer.Pull(ctx, b, rem, transfer.PullOptions{State: "s"})
		if err == nil {
			snap = res.Snapshot
		}
		return err
	}
	run = netRun{mode: "lib", op: "pull", kind: fc.kind, rate: fc.rate}
	before = proxy.Stats().Total()
	proxy.SetPlan(planFor(fc.kind, fc.rate, seed^0x9e3779b97f4a7c15))
	start = time.Now()
	err = pull()
	proxy.SetPlan(faultnet.Plan{})
	run.ok, run.took, run.injected = err == nil, time.Since(start), proxy.Stats().Total()-before
	run.problem, run.message = checkLibError(err, run.took, srv.SecretKey), errText(err)
	if p := verifyRepos(b, url, false); p != "" && run.problem == "" {
		run.problem = p
	}
	if err := pull(); err != nil {
		run.lost = true
		if run.problem == "" {
			run.problem = "clean pull after the faulted one: " + err.Error()
		}
	} else {
		data := filepath.Join(dir, "data")
		_, err := restorer.Restore(context.Background(), b, restorer.Options{DataDir: data, Snapshot: snap, CacheDir: filepath.Join(dir, "store", "cache")})
		got, terr := treeOf(data)
		if err != nil || terr != nil || sameTree(a.tree, got) != "" {
			run.lost = true
			run.problem = fmt.Sprintf("restore after the clean pull: %v %v %s", err, terr, sameTree(a.tree, got))
		}
	}
	sw.add(run)
}

func openStore(t testing.TB, dir string) *archive.Repository {
	t.Helper()
	be, err := dirbackend.New(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	r, err := archive.OpenOrInit(context.Background(), be)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// checkLibError checks a failed library call: within its context's
// bound, one line, no secret.
func checkLibError(err error, took time.Duration, secret string) string {
	switch {
	case err == nil:
		return ""
	case took > faultTimeout+5*time.Second:
		return fmt.Sprintf("failed only after %v: %v", took, err)
	case strings.Contains(err.Error(), "\n"):
		return fmt.Sprintf("error of more than one line: %q", err.Error())
	case strings.Contains(err.Error(), secret):
		return "error shows the secret key"
	}
	return ""
}

// verifyRepos verifies a local repository and the remote (through the
// proxy, now without faults) with ReadData.
func verifyRepos(local *archive.Repository, url string, mayBeEmpty bool) string {
	ctx, cancel := context.WithTimeout(context.Background(), runLimit)
	defer cancel()
	if rep, err := maintain.Verify(ctx, local, maintain.VerifyOptions{ReadData: true}); err != nil || !rep.OK() {
		return fmt.Sprintf("local verify: %v %+v", err, rep)
	}
	rem, err := remote.OpenRemote(ctx, url, false)
	if mayBeEmpty && errors.Is(err, format.ErrNotRepository) {
		return ""
	}
	if err != nil {
		return "open remote to verify: " + err.Error()
	}
	if rep, err := maintain.Verify(ctx, rem, maintain.VerifyOptions{ReadData: true}); err != nil || !rep.OK() {
		return fmt.Sprintf("remote verify: %v %+v", err, rep)
	}
	return ""
}
