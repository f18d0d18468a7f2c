package attack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/transfer"
	"github.com/statepack/statepack/internal/faultnet"
	"github.com/statepack/statepack/internal/miniotest"
	"github.com/statepack/statepack/remote"
	"github.com/statepack/statepack/remote/s3"
)

// hangTimeout is the --timeout of the runs that face an endpoint that
// never answers.
const hangTimeout = 20 * time.Second

// hangCase is one endpoint that does not answer, and how long a run
// against it may take.
type hangCase struct {
	name  string
	bound time.Duration
	run   func() (took time.Duration, problem string)
}

// TestEndpointNeverHangs: an unreachable or stalled endpoint never hangs
// a CI job. With --timeout 20s every command ends by then, however the
// endpoint stalls (every request, or only pack transfers and the lock's
// release once the work is under way); a refused connection fails in
// seconds; and without any deadline, the client's connect and read
// timeouts end a stalled transfer within attempts × timeout + backoff
// (checked with short timeouts through the API).
func TestEndpointNeverHangs(t *testing.T) {
	t.Parallel()
	srv := miniotest.Get(t)
	seed := seedFor(t)
	bucket := newBucket(t, srv)
	prefix := "hang"
	url := "s3://" + bucket + "/" + prefix
	a := newSource(t, int64(seed%1000)+2, 1<<20)
	a.useS3(srv, srv.Endpoint)
	a.vars["STATEPACK_REMOTE"] = url
	a.must("push", "s")
	b := newSource(t, int64(seed%1000)+3, 1<<20) // new blocks to push
	b.must("save", "t")
	b.useS3(srv, srv.Endpoint)
	b.vars["STATEPACK_REMOTE"] = url

	stall := func(match ...string) *faultnet.Proxy {
		var faults []faultnet.Fault
		for _, m := range match {
			faults = append(faults, faultnet.Fault{Kind: faultnet.Stall, Rate: 1, Match: m, Dir: faultnet.Upstream})
		}
		p, err := faultnet.New(srv.Endpoint, faultnet.Plan{Seed: seed, Faults: faults})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		return p
	}
	packPut := "PUT /" + bucket + "/" + prefix + "/packs/"
	packGet := "GET /" + bucket + "/" + prefix + "/packs/"
	lockDelete := "DELETE /" + bucket + "/" + prefix + "/locks/"
	refused := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return "http://" + l.Addr().String()
	}()

	// cli runs the binary against endpoint with --timeout and checks it
	// failed by the bound with one clear line.
	cli := func(e *env, endpoint string, want string, args ...string) func() (time.Duration, string) {
		return func() (time.Duration, string) {
			r := e.runWith(map[string]string{"AWS_ENDPOINT_URL": endpoint}, 3*hangTimeout,
				append([]string{"--quiet", "--timeout", hangTimeout.String()}, args...)...)
			if r.code <= 0 {
				return r.took, "did not fail: " + r.String()
			}
			if msg := clearMessage(r, srv.SecretKey, want); msg != "" {
				return r.took, msg
			}
			return r.took, ""
		}
	}
	victim := func() *env { e := newEnv(t); e.useS3(srv, srv.Endpoint); e.vars["STATEPACK_REMOTE"] = url; return e }
	timeoutMsg := "--timeout " + hangTimeout.String()
	// Bounds: --timeout plus a moment to exit; without a deadline,
	// Attempts tries of the short timeout, the backoff between them (at
	// most 0.25+0.5+1+2+4 s) and slack.
	cliBound := hangTimeout + 3*time.Second
	short := s3.Timeouts{Dial: time.Second, ResponseHeader: time.Second, Idle: time.Second}
	libBound := time.Duration(remote.DefaultRetryPolicy().Attempts)*(time.Second+500*time.Millisecond) + 7750*time.Millisecond + 3*time.Second

	cases := []hangCase{
		{"cli push, every request stalls", cliBound, cli(b.env, stall("").URL(), timeoutMsg, "push", "t")},
		{"cli pull, every request stalls", cliBound, cli(victim(), stall("").URL(), timeoutMsg, "pull", "s", "--restore")},
		{"cli push, pack uploads stall", cliBound, cli(b.env, stall(packPut).URL(), timeoutMsg, "push", "t")},
		{"cli push, pack uploads and the lock release stall", cliBound, cli(b.env, stall(packPut, lockDelete).URL(), timeoutMsg, "push", "t")},
		{"cli pull, pack reads stall", cliBound, cli(victim(), stall(packGet).URL(), timeoutMsg, "pull", "s", "--restore")},
		{"cli push, connection refused", cliBound, cli(b.env, refused, strings.TrimPrefix(refused, "http://"), "push", "t")},
		{"cli push, unroutable address (192.0.2.1)", cliBound, cli(b.env, "http://192.0.2.1:9", "192.0.2.1", "push", "t")},
		{"lib push, 1s timeouts, no deadline, connections never accepted", libBound, func() (time.Duration, string) {
			return libStalled(t, srv, "http://"+synBlackhole(t), url, short, b.store, "push")
		}},
		{"lib push, 1s timeouts, no deadline, pack uploads stall", libBound, func() (time.Duration, string) {
			return libStalled(t, srv, stall(packPut).URL(), url, short, b.store, "push")
		}},
		{"lib pull, 1s timeouts, no deadline, pack bodies stall", libBound, func() (time.Duration, string) {
			p, err := faultnet.New(srv.Endpoint, faultnet.Plan{Seed: seed, Faults: []faultnet.Fault{
				{Kind: faultnet.Stall, Rate: 1, Match: packGet, Dir: faultnet.Downstream, MinBytes: 2000, MaxBytes: 2000}}})
			if err != nil {
				return 0, err.Error()
			}
			defer p.Close()
			return libStalled(t, srv, p.URL(), url, short, filepath.Join(t.TempDir(), "store"), "pull")
		}},
	}
	var wg sync.WaitGroup
	results := make([][]string, len(cases))
	for i, c := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			took, problem := c.run()
			if problem == "" && took > c.bound {
				problem = fmt.Sprintf("took %v, beyond its bound %v", took.Round(time.Millisecond), c.bound)
			}
			outcome := "failed in bounds"
			if problem != "" {
				outcome = "**broken**"
				t.Errorf("%s: %s", c.name, problem)
			}
			results[i] = []string{c.name, fmt.Sprintf("%.1fs", c.bound.Seconds()), fmt.Sprintf("%.1fs", took.Seconds()), outcome}
		}()
	}
	wg.Wait()
	t.Logf("Endpoints that never answer (`--timeout %v`)\n\n%s", hangTimeout, table([]string{"case", "bound", "took", "outcome"}, results))

	// Nothing was left half-done: the remote verifies and a clean push
	// of the state the stalled pushes tried completes.
	if r := b.run("verify", "--remote", "--read-data"); r.code != 0 {
		t.Errorf("remote after the stalls: %s", r)
	}
	if r := b.run("push", "t"); r.code != 0 {
		t.Errorf("clean push after the stalls: %s", r)
	}
}

// synBlackhole returns the address of a listening socket whose accept
// queue is full and never drained: new connections hang in the TCP
// handshake, as they do with a host that drops SYNs.
func synBlackhole(t *testing.T) string {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*unix.SockaddrInet4).Port)
	for range 8 { // fill the queue
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return addr
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatalf("connections to %s never start to hang", addr)
	return ""
}

// libStalled pushes (from store) or pulls (into store) through endpoint
// with the given client timeouts and no context deadline, and reports
// how long it took to fail.
func libStalled(t *testing.T, srv *miniotest.Server, endpoint, url string, timeouts s3.Timeouts, store, op string) (time.Duration, string) {
	ctx := context.Background()
	u, err := remote.ParseURL(url)
	if err != nil {
		return 0, err.Error()
	}
	cfg := s3.Config{Endpoint: endpoint, AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey, Region: s3Region(srv), Timeouts: timeouts}
	local := openStore(t, store)
	start := time.Now()
	be, err := remote.Open(ctx, u.String(), cfg, false)
	var rem *archive.Repository
	if err == nil {
		rem, err = archive.Open(ctx, be)
	}
	if err == nil {
		if op == "push" {
			_, err = transfer.Push(ctx, local, rem, transfer.PushOptions{State: "t"})
		} else {
			_, err = transfer.Pull(ctx, local, rem, transfer.PullOptions{State: "s"})
		}
	}
	took := time.Since(start)
	switch {
	case err == nil:
		return took, "succeeded through an endpoint that never answers"
	case strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), srv.SecretKey):
		return took, "unclear error: " + err.Error()
	case !remote.IsTransient(errors.Unwrap(err)) && !strings.Contains(err.Error(), "gave up after"):
		return took, "failed, but not by its timeouts: " + err.Error()
	}
	t.Logf("%s failed after %v: %v", op, took.Round(time.Millisecond), err)
	return took, ""
}

// TestTortureStallWithoutTimeout: without --timeout, the client's own
// timeouts end a push against an endpoint that accepts connections and
// never answers: each request waits DefaultResponseHeaderTimeout, and is
// tried DefaultRetryPolicy().Attempts times with backoff between (at most
// 0.25+0.5+1+2+4 s). About six minutes: a CI job is never held longer.
func TestTortureStallWithoutTimeout(t *testing.T) {
	skipUnlessTorture(t)
	t.Parallel()
	srv := miniotest.Get(t)
	a := newSource(t, 11, 256<<10)
	a.useS3(srv, srv.Endpoint)
	a.vars["STATEPACK_REMOTE"] = "s3://" + newBucket(t, srv) + "/stall"
	proxy, err := faultnet.New(srv.Endpoint, faultnet.Plan{Faults: []faultnet.Fault{{Kind: faultnet.Stall, Rate: 1, Dir: faultnet.Upstream}}})
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	attempts := time.Duration(remote.DefaultRetryPolicy().Attempts)
	bound := attempts*(s3.DefaultResponseHeaderTimeout+time.Second) + 7750*time.Millisecond + 10*time.Second
	r := a.runWith(map[string]string{"AWS_ENDPOINT_URL": proxy.URL()}, bound+time.Minute, "--quiet", "push", "s")
	t.Logf("push against an endpoint that never answers, no --timeout: exit %d after %v (bound %v): %s",
		r.code, r.took.Round(time.Second), bound, strings.TrimSpace(r.stderr))
	if r.code <= 0 || r.took > bound {
		t.Errorf("want a failure within %v:\n%s", bound, r)
	}
	if msg := clearMessage(r, srv.SecretKey); msg != "" {
		t.Error(msg)
	}
}
