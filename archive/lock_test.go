package archive_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/statepack/statepack/archive"
)

// TestLocks: a shared lock keeps prune out (prune fails naming the
// holder); shared locks coexist; a lock of a dead process on this host is
// stale at once, one from another host only after the timeout.
func TestLocks(t *testing.T) {
	ctx := context.Background()
	r, _ := testRepo(t)
	s1, err := r.Lock(ctx, false, "save", 0)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := r.Lock(ctx, false, "push", 0)
	if err != nil {
		t.Fatalf("two shared locks must coexist: %v", err)
	}
	_, err = r.Prune(ctx, archive.PruneOptions{LockWait: 300 * time.Millisecond})
	var locked *archive.LockedError
	if !errors.As(err, &locked) || locked.Holder.Exclusive {
		t.Fatalf("prune under a shared lock: want LockedError, got %v", err)
	}
	s1.Unlock()
	s2.Unlock()
	if _, err := r.Prune(ctx, archive.PruneOptions{}); err != nil {
		t.Fatalf("prune after unlock: %v", err)
	}

	// A lock left by a process that is gone.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	dead := archive.LockInfo{Exclusive: true, Host: host, PID: cmd.Process.Pid, Time: time.Now()}
	if !dead.Stale(time.Now()) {
		t.Fatal("lock of a dead local process not stale")
	}
	other := archive.LockInfo{Exclusive: true, Host: "elsewhere", PID: 1, Time: time.Now()}
	if other.Stale(time.Now()) || !other.Stale(time.Now().Add(archive.LockStale+time.Second)) {
		t.Fatal("remote lock staleness must follow the timeout")
	}
	// Clock skew: a holder a few minutes ahead keeps its lock; a lock dated
	// beyond the timeout in the future would otherwise never go stale.
	if other.Stale(time.Now().Add(-archive.LockStale/2)) || !other.Stale(time.Now().Add(-archive.LockStale-time.Second)) {
		t.Fatal("locks dated in the future: want stale only beyond the timeout")
	}
}
