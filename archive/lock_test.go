package archive_test

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/maintain"
	"github.com/statepack/statepack/remote/backend"
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
	_, err = maintain.Prune(ctx, r, maintain.PruneOptions{LockWait: 300 * time.Millisecond})
	var locked *archive.LockedError
	if !errors.As(err, &locked) || locked.Holder.Exclusive {
		t.Fatalf("prune under a shared lock: want LockedError, got %v", err)
	}
	s1.Unlock()
	s2.Unlock()
	if _, err := maintain.Prune(ctx, r, maintain.PruneOptions{}); err != nil {
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

// answerLost stores every Put but reports the context's end, as a PUT
// does when Ctrl-C comes after the server stored the object but before
// its answer arrived.
type answerLost struct{ backend.Backend }

func (a answerLost) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	if err := a.Backend.Put(context.WithoutCancel(ctx), name, r, size); err != nil {
		return err
	}
	return context.Canceled
}

// TestLockWriteCutOff: a lock whose write failed is not left behind as a
// lock nobody holds.
func TestLockWriteCutOff(t *testing.T) {
	ctx := context.Background()
	r, _ := testRepo(t)
	cut, err := archive.Open(ctx, answerLost{r.Backend()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cut.Lock(ctx, true, "prune", 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Lock with a lost answer: %v", err)
	}
	if locks, err := r.Locks(ctx); err != nil || len(locks) != 0 {
		t.Fatalf("locks left behind: %v, %v", locks, err)
	}
}
