package attack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/internal/faultnet"
	"github.com/statepack/statepack/internal/miniotest"
	"github.com/statepack/statepack/remote"
	"github.com/statepack/statepack/remote/backend"
	"github.com/statepack/statepack/remote/dirbackend"
	"github.com/statepack/statepack/remote/s3"
)

// Locks (part 5 of issue 4). A writer's lock left by a process that was
// killed is stale at once on its own host (its PID is gone): prune goes
// ahead and `statepack unlock` removes it. A lock naming another host is
// trusted until it is LockStale (10 minutes) old. Prune refuses to start
// while a live writer holds a shared lock, naming it; the CLI has no
// --lock-wait, so prune and writers never wait for each other
// (archive.*Options.LockWait is 0 from the CLI).

// started is a binary started in the background.
type started struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	done   chan struct{}
}

// start runs the binary without waiting; the test's cleanup kills it if
// it is still running, and lets it run on if it was stopped.
func (e *env) start(t *testing.T, extra map[string]string, args ...string) *started {
	t.Helper()
	s := &started{cmd: e.command(extra, args...), done: make(chan struct{})}
	s.cmd.Stderr = &s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			_ = s.cmd.Process.Signal(syscall.SIGCONT)
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
	return s
}

func (s *started) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to PID %d: %v", sig, s.cmd.Process.Pid, err)
	}
}

func (s *started) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	select {
	case <-s.done:
		return s.cmd.ProcessState.ExitCode()
	case <-time.After(limit):
		t.Fatalf("PID %d still running after %v", s.cmd.Process.Pid, limit)
		return 0
	}
}

// waitForLock polls a backend until a lock of pid appears, and stops the
// process (SIGSTOP) or kills it at once, while it holds the lock.
func waitForLock(t *testing.T, be backend.Backend, s *started, sig syscall.Signal) archive.LockInfo {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, l := range readLocks(t, be) {
			if l.PID == s.cmd.Process.Pid {
				s.signal(t, sig)
				return l
			}
		}
		select {
		case <-s.done:
			t.Fatalf("PID %d ended before its lock was seen: %s", s.cmd.Process.Pid, s.stderr.String())
		case <-time.After(time.Millisecond):
		}
	}
	t.Fatalf("no lock of PID %d appeared", s.cmd.Process.Pid)
	return archive.LockInfo{}
}

func readLocks(t *testing.T, be backend.Backend) []archive.LockInfo {
	t.Helper()
	var out []archive.LockInfo
	err := be.List(context.Background(), "locks/", func(oi backend.ObjectInfo) error {
		data, _, err := be.GetVersioned(context.Background(), oi.Name)
		if err != nil {
			return nil // released meanwhile
		}
		var l archive.LockInfo
		if json.Unmarshal(data, &l) == nil {
			l.ID = strings.TrimPrefix(oi.Name, "locks/")
			out = append(out, l)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func dirBackend(t *testing.T, dir string) backend.Backend {
	t.Helper()
	be, err := dirbackend.New(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	return be
}

// bigFile gives a DATA_DIR a file large enough that saving it takes a
// noticeable moment, so the save can be caught holding its lock.
func bigFile(t *testing.T, e *env, seed uint64) {
	t.Helper()
	g := rng(seed, 3)
	f, err := os.Create(filepath.Join(e.data, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for range 64 {
		if _, err := f.Write(randomBytes(g, 1<<20)); err != nil {
			t.Fatal(err)
		}
	}
}

// unlockJSON runs unlock with --json and returns the PIDs it removed and
// how many locks remain.
func unlockJSON(t *testing.T, e *env, args ...string) ([]int, int) {
	t.Helper()
	r := e.must(append([]string{"--json", "unlock"}, args...)...)
	var out struct {
		Removed []struct {
			PID  int    `json:"pid"`
			Host string `json:"host"`
		} `json:"removed"`
		Remaining int `json:"remaining"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("unlock --json: %v\n%s", err, r.stdout)
	}
	var pids []int
	for _, l := range out.Removed {
		pids = append(pids, l.PID)
	}
	return pids, out.Remaining
}

// TestPruneRefusesWhileWriterHoldsLock: a save is stopped (SIGSTOP)
// while it holds its shared lock; prune refuses at once, naming the save
// and its PID. When the save goes on it completes, and prune then runs.
// The same on a MinIO remote with a push stopped mid-way.
func TestPruneRefusesWhileWriterHoldsLock(t *testing.T) {
	t.Parallel()
	seed := seedFor(t)
	t.Run("store", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		bigFile(t, e, seed)
		s := e.start(t, nil, "save", "big")
		held := waitForLock(t, dirBackend(t, e.store), s, syscall.SIGSTOP)
		r := e.run("prune")
		if r.code == 0 || !strings.Contains(r.stderr, "is locked by `save`") || !strings.Contains(r.stderr, fmt.Sprintf("PID %d", held.PID)) {
			t.Errorf("prune while a save holds its lock:\n%s", r)
		} else {
			t.Logf("refused: %s", strings.TrimSpace(r.stderr))
		}
		s.signal(t, syscall.SIGCONT)
		if code := s.wait(t, time.Minute); code != 0 {
			t.Fatalf("the stopped save failed after it went on: %s", s.stderr.String())
		}
		e.must("prune")
		e.must("verify", "--read-data")
	})
	t.Run("s3", func(t *testing.T) {
		t.Parallel()
		srv := miniotest.Get(t)
		bucket := newBucket(t, srv)
		url := "s3://" + bucket + "/locks"
		e := newEnv(t).useS3(srv, srv.Endpoint)
		e.vars["STATEPACK_REMOTE"] = url
		e.must("save", "small")
		e.must("push", "small") // the remote exists
		bigFile(t, e, seed)
		e.must("save", "big")
		s := e.start(t, nil, "push", "big")
		held := waitForLock(t, s3Backend(t, srv, url), s, syscall.SIGSTOP)
		r := e.run("prune", "--remote")
		if r.code == 0 || !strings.Contains(r.stderr, "is locked by `push`") || !strings.Contains(r.stderr, fmt.Sprintf("PID %d", held.PID)) {
			t.Errorf("prune --remote while a push holds its lock:\n%s", r)
		} else {
			t.Logf("refused: %s", strings.TrimSpace(r.stderr))
		}
		s.signal(t, syscall.SIGCONT)
		if code := s.wait(t, time.Minute); code != 0 {
			t.Fatalf("the stopped push failed after it went on: %s", s.stderr.String())
		}
		e.must("prune", "--remote")
		e.must("verify", "--remote", "--read-data")
	})
}

func s3Backend(t *testing.T, srv *miniotest.Server, url string) backend.Backend {
	t.Helper()
	u, err := remote.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	be, err := s3.Open(context.Background(), u.Bucket, u.Prefix, s3.Config{Endpoint: srv.Endpoint, AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey, Region: s3Region(srv)})
	if err != nil {
		t.Fatal(err)
	}
	return be
}

// TestKilledWriterLockIsStale: a save, and a push stalled by the network,
// are killed with SIGKILL while they hold their locks. On the same host
// the locks are stale at once: prune goes ahead without waiting, and
// `statepack unlock` removes them (naming the dead PIDs). A running
// writer's lock is not touched by unlock.
func TestKilledWriterLockIsStale(t *testing.T) {
	t.Parallel()
	seed := seedFor(t)
	t.Run("store", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		bigFile(t, e, seed)
		s := e.start(t, nil, "save", "big")
		held := waitForLock(t, dirBackend(t, e.store), s, syscall.SIGKILL)
		s.wait(t, 10*time.Second)
		e.must("prune")
		pids, remaining := unlockJSON(t, e)
		if len(pids) != 1 || pids[0] != held.PID || remaining != 0 {
			t.Errorf("unlock after a killed save removed %v (want [%d]), %d remain", pids, held.PID, remaining)
		}
		e.must("save", "big")
		e.must("verify", "--read-data")
	})
	t.Run("s3", func(t *testing.T) {
		t.Parallel()
		srv := miniotest.Get(t)
		bucket := newBucket(t, srv)
		url := "s3://" + bucket + "/killed"
		e := newEnv(t).useS3(srv, srv.Endpoint)
		e.vars["STATEPACK_REMOTE"] = url
		e.must("save", "small")
		e.must("push", "small")
		bigFile(t, e, seed)
		e.must("save", "big")
		// Pack uploads stall forever: the push holds its lock until killed.
		proxy, err := faultnet.New(srv.Endpoint, faultnet.Plan{Faults: []faultnet.Fault{
			{Kind: faultnet.Stall, Rate: 1, Match: "PUT /" + bucket + "/killed/packs/", Dir: faultnet.Upstream}}})
		if err != nil {
			t.Fatal(err)
		}
		defer proxy.Close()
		s := e.start(t, map[string]string{"AWS_ENDPOINT_URL": proxy.URL()}, "push", "big")
		held := waitForLock(t, s3Backend(t, srv, url), s, 0)
		// Wait for the stall, then kill.
		for proxy.Stats().Injected[faultnet.Stall] == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		s.signal(t, syscall.SIGKILL)
		s.wait(t, 10*time.Second)
		e.must("prune", "--remote")
		pids, remaining := unlockJSON(t, e, "--remote")
		if len(pids) != 1 || pids[0] != held.PID || remaining != 0 {
			t.Errorf("unlock --remote after a killed push removed %v (want [%d]), %d remain", pids, held.PID, remaining)
		}
		e.must("push", "big")
		e.must("verify", "--remote", "--read-data")
	})
}

// TestForeignHostLock: a lock written by another host (crafted as
// LockInfo JSON) is trusted until it is LockStale old: prune refuses,
// naming the host, and unlock leaves it; once older than LockStale,
// prune goes ahead and unlock removes it. A fresh lock of a live process
// on this host is not stale either.
func TestForeignHostLock(t *testing.T) {
	t.Parallel()
	srv := miniotest.Get(t)
	host, _ := os.Hostname()
	for _, kind := range []string{"store", "s3"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			var be backend.Backend
			prune, unlock := []string{"prune"}, []string{}
			switch kind {
			case "store":
				e.must("save", "x")
				be = dirBackend(t, e.store)
			case "s3":
				url := "s3://" + newBucket(t, srv) + "/foreign"
				e.useS3(srv, srv.Endpoint)
				e.vars["STATEPACK_REMOTE"] = url
				e.must("save", "x")
				e.must("push", "x")
				be = s3Backend(t, srv, url)
				prune, unlock = []string{"prune", "--remote"}, []string{"--remote"}
			}
			plant := func(id string, l archive.LockInfo) {
				data, _ := json.Marshal(l)
				if err := be.Put(context.Background(), "locks/"+id, bytes.NewReader(data), int64(len(data))); err != nil {
					t.Fatal(err)
				}
			}
			for _, tc := range []struct {
				name  string
				lock  archive.LockInfo
				stale bool
			}{
				{"other host, a minute old", archive.LockInfo{Host: "ci-runner-7", PID: 4242, Command: "save", Time: time.Now().Add(-time.Minute)}, false},
				{"other host, just under LockStale", archive.LockInfo{Host: "ci-runner-7", PID: 4242, Command: "push", Time: time.Now().Add(-archive.LockStale + time.Minute)}, false},
				{"this host, live PID", archive.LockInfo{Host: host, PID: os.Getpid(), Command: "save", Time: time.Now()}, false},
				{"other host, older than LockStale", archive.LockInfo{Host: "ci-runner-7", PID: 4242, Command: "save", Time: time.Now().Add(-archive.LockStale - time.Minute)}, true},
				{"this host, dead PID", archive.LockInfo{Host: host, PID: deadPID(t), Command: "save", Time: time.Now()}, true},
			} {
				id := fmt.Sprintf("cafe%012x", time.Now().UnixNano())
				plant(id, tc.lock)
				r := e.run(prune...)
				switch {
				case tc.stale && r.code != 0:
					t.Errorf("%s: prune refused a stale lock:\n%s", tc.name, r)
				case !tc.stale && (r.code == 0 || !strings.Contains(r.stderr, "on "+tc.lock.Host) || !strings.Contains(r.stderr, "`"+tc.lock.Command+"`")):
					t.Errorf("%s: prune was not refused by the lock, naming its host:\n%s", tc.name, r)
				}
				pids, remaining := unlockJSON(t, e, unlock...)
				if tc.stale != (len(pids) == 1) || (remaining == 0) != tc.stale {
					t.Errorf("%s: unlock removed %v, %d remain", tc.name, pids, remaining)
				}
				if !tc.stale {
					if err := be.Delete(context.Background(), "locks/"+id); err != nil {
						t.Fatal(err)
					}
				}
			}
		})
	}
}

// deadPID returns the PID of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}
