package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/internal/files"
	"github.com/statepack/statepack/remote/backend"
)

// Lock timing. A held lock is rewritten every LockRefresh; a lock whose
// time is older than LockStale is abandoned (its holder died on another
// host). On the holder's own host a lock is stale as soon as its process is
// gone.
var (
	LockRefresh = 2 * time.Minute
	LockStale   = 10 * time.Minute
)

// LockInfo is the content of a locks/<id> object.
type LockInfo struct {
	ID        string    `json:"-"`
	Exclusive bool      `json:"exclusive"`
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	Command   string    `json:"command"`
	Time      time.Time `json:"time"`
}

// Stale reports whether the lock's holder is gone. A lock dated more than
// LockStale ahead of this clock is stale too: its writer's clock is wrong
// (or the object was planted), and trusting it would block every writer
// until someone ran unlock. A holder whose clock runs ahead by less keeps
// its lock, since it refreshes it every LockRefresh.
func (l LockInfo) Stale(now time.Time) bool {
	if age := now.Sub(l.Time); age > LockStale || age < -LockStale {
		return true
	}
	host, _ := os.Hostname()
	if l.Host == host && l.PID > 0 {
		err := syscall.Kill(l.PID, 0)
		return errors.Is(err, syscall.ESRCH)
	}
	return false
}

func (l LockInfo) describe() string {
	kind := "shared"
	if l.Exclusive {
		kind = "exclusive"
	}
	return fmt.Sprintf("%s lock by %s (PID %d on %s, %s ago)", kind, l.Command, l.PID, l.Host, time.Since(l.Time).Round(time.Second))
}

// LockedError says who holds the lock that stopped an operation.
type LockedError struct {
	Location string
	Holder   LockInfo
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("%s is locked: %s; wait for it to finish, or run `statepack unlock` if that process is gone", e.Location, e.Holder.describe())
}

// Lock is a held repository lock.
type Lock struct {
	r      *Repository
	info   LockInfo
	holder context.Context // the context it was taken with: its end shortens Unlock
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Locks lists the locks on the repository.
func (r *Repository) Locks(ctx context.Context) ([]LockInfo, error) {
	var names []string
	err := r.be.List(ctx, "locks/", func(oi backend.ObjectInfo) error {
		names = append(names, oi.Name)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list locks of %s: %w", r.Location(), err)
	}
	var out []LockInfo
	for _, name := range names {
		data, _, err := r.be.GetVersioned(ctx, name)
		if errors.Is(err, backend.ErrNotFound) {
			continue
		}
		// A lock that is not a file (a FIFO or symlink planted on a
		// directory remote), or too large for one, is unreadable like
		// one of garbage: stale at once, so that it blocks no one and
		// unlock removes it.
		if err != nil && !errors.Is(err, format.ErrCorrupt) {
			return nil, fmt.Errorf("read %s on %s: %w", name, r.Location(), err)
		}
		var li LockInfo
		if err != nil || json.Unmarshal(data, &li) != nil {
			li = LockInfo{Command: "unreadable lock", Time: time.Time{}} // stale at once
		}
		li.Command, li.Host = format.Clip(li.Command), format.Clip(li.Host) // another machine wrote them
		li.ID = strings.TrimPrefix(name, "locks/")
		out = append(out, li)
	}
	return out, nil
}

// RemoveLocks deletes stale locks (or all, with all set) and returns them.
func (r *Repository) RemoveLocks(ctx context.Context, all bool) ([]LockInfo, error) {
	locks, err := r.Locks(ctx)
	if err != nil {
		return nil, err
	}
	var removed []LockInfo
	now := time.Now()
	for _, l := range locks {
		if all || l.Stale(now) {
			if err := r.be.Delete(ctx, "locks/"+l.ID); err != nil {
				return removed, err
			}
			removed = append(removed, l)
		}
	}
	return removed, nil
}

// Lock takes a shared (writers: save, push) or exclusive (prune, forget)
// lock, waiting up to wait for conflicting holders to finish. Both kinds
// write their lock first and then look for conflicts, backing off when they
// find one, so two processes can never both believe they hold conflicting
// locks.
func (r *Repository) Lock(ctx context.Context, exclusive bool, command string, wait time.Duration) (*Lock, error) {
	host, _ := os.Hostname()
	info := LockInfo{ID: files.RandomSuffix() + files.RandomSuffix(), Exclusive: exclusive, Host: host, PID: os.Getpid(), Command: command}
	deadline := time.Now().Add(wait)
	for {
		holder, err := r.tryLock(ctx, &info)
		if err != nil {
			return nil, err
		}
		if holder == nil {
			break
		}
		if time.Now().After(deadline) {
			return nil, &LockedError{Location: r.Location(), Holder: *holder}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(200+rand.IntN(400)) * time.Millisecond):
		}
	}
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l := &Lock{r: r, info: info, holder: ctx, cancel: cancel}
	l.wg.Add(1)
	go l.refresh(lctx)
	return l, nil
}

// tryLock writes the lock and checks for conflicts; it returns the
// conflicting holder (after removing its own lock again) or nil when held.
func (r *Repository) tryLock(ctx context.Context, info *LockInfo) (*LockInfo, error) {
	if holder, err := r.conflict(ctx, info); err != nil || holder != nil {
		return holder, err
	}
	if err := r.writeLock(ctx, info); err != nil {
		// A write cut off by Ctrl-C or --timeout may still have been
		// stored (the request reached the server, the answer did not):
		// remove it, or it would stand as a lock nobody holds.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unlockGrace)
		defer cancel()
		_ = r.be.Delete(dctx, "locks/"+info.ID)
		return nil, err
	}
	holder, err := r.conflict(ctx, info)
	if err != nil || holder != nil {
		_ = r.be.Delete(context.WithoutCancel(ctx), "locks/"+info.ID)
	}
	return holder, err
}

func (r *Repository) conflict(ctx context.Context, info *LockInfo) (*LockInfo, error) {
	locks, err := r.Locks(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	for _, l := range locks {
		if l.ID == info.ID || l.Stale(now) {
			continue
		}
		if info.Exclusive || l.Exclusive {
			return &l, nil
		}
	}
	return nil, nil
}

func (r *Repository) writeLock(ctx context.Context, info *LockInfo) error {
	info.Time = time.Now().UTC()
	data, _ := json.Marshal(info)
	if err := r.be.Put(ctx, "locks/"+info.ID, bytes.NewReader(data), int64(len(data))); err != nil {
		return fmt.Errorf("lock %s: %w", r.Location(), err)
	}
	return nil
}

func (l *Lock) refresh(ctx context.Context) {
	defer l.wg.Done()
	t := time.NewTicker(LockRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = l.r.writeLock(ctx, &l.info)
		}
	}
}

// Unlock releases the lock. It tries for up to 30 seconds, but for only
// unlockGrace past the end of the context the lock was taken with, so a
// command stopped by --timeout or Ctrl-C ends promptly even when the
// backend does not answer. A lock left behind that way is stale at once
// on its own host, and after LockStale on others.
func (l *Lock) Unlock() {
	if l == nil {
		return
	}
	l.cancel()
	l.wg.Wait()
	now := time.Now()
	limit := now.Add(30 * time.Second)
	if l.holder.Err() != nil {
		limit = now.Add(unlockGrace)
	} else if d, ok := l.holder.Deadline(); ok && d.Add(unlockGrace).Before(limit) {
		limit = d.Add(unlockGrace)
	}
	ctx, cancel := context.WithDeadline(context.Background(), limit)
	defer cancel()
	_ = l.r.be.Delete(ctx, "locks/"+l.info.ID)
}

// unlockGrace is how long Unlock still tries once its holder's context
// has ended.
const unlockGrace = 2 * time.Second
