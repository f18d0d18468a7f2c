package transfer_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/maintain"
	"github.com/statepack/statepack/archive/restorer"
	"github.com/statepack/statepack/archive/transfer"
	"github.com/statepack/statepack/internal/treetest"
)

// TestPushesWithConcurrentPrune: several machines push while a prune runs
// on the same remote. Prune must never delete a pack a push relies on:
// afterwards every acknowledged push restores and verify passes.
func TestPushesWithConcurrentPrune(t *testing.T) {
	forEachRemote(t, func(t *testing.T, newRemote func(*testing.T) *archive.Repository) {
		runConcurrentPushes(t, context.Background(), newRemote(t))
	})
}

func runConcurrentPushes(t *testing.T, ctx context.Context, rem *archive.Repository) {
	t.Helper()
	const machines = 4
	stores := make([]*store, machines)
	for i := range stores {
		stores[i] = newStore(t)
		treetest.Write(t, stores[i].data, map[string]treetest.Spec{
			"shared": {Content: bigContent(9, 1<<20)}, // dedups across machines
			"own":    {Content: bigContent(byte(i), 512<<10)},
		})
		stores[i].save(t, fmt.Sprintf("m%d", i))
	}
	// An older state that forget drops, so prune has something to delete.
	old := newStore(t)
	treetest.Write(t, old.data, map[string]treetest.Spec{"gone": {Content: bigContent(77, 1<<20)}})
	old.savePush(t, rem, "old")
	if _, err := maintain.Forget(ctx, rem, "old", maintain.ForgetOptions{All: true}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, machines+1)
	for i, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = transfer.Push(ctx, s.repo, rem, transfer.PushOptions{State: fmt.Sprintf("m%d", i), LockWait: time.Minute})
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, errs[machines] = maintain.Prune(ctx, rem, maintain.PruneOptions{LockWait: time.Minute})
	}()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: %v", i, err)
		}
	}
	v, err := maintain.Verify(ctx, rem, maintain.VerifyOptions{ReadData: true})
	if err != nil || !v.OK() {
		t.Fatalf("verify after concurrent pushes and prune: %v %+v", err, v)
	}
	for i := range stores {
		b := newStore(t)
		res, err := transfer.Pull(ctx, b.repo, rem, transfer.PullOptions{State: fmt.Sprintf("m%d", i)})
		if err != nil {
			t.Fatalf("pull m%d: %v", i, err)
		}
		if _, err := restorer.Restore(ctx, b.repo, restorer.Options{DataDir: b.data, Snapshot: res.Snapshot}); err != nil {
			t.Fatalf("restore m%d: %v", i, err)
		}
		treetest.AssertEqual(t, treetest.MustRead(t, stores[i].data), treetest.MustRead(t, b.data))
	}
}

// TestConcurrentPushesOfOneState: two machines push the same state at
// once from the same base; exactly one wins, the other is told to pull.
func TestConcurrentPushesOfOneState(t *testing.T) { forEachRemote(t, testConcurrentPushesOfOneState) }

func testConcurrentPushesOfOneState(t *testing.T, newRemote func(*testing.T) *archive.Repository) {
	ctx := context.Background()
	rem := newRemote(t)
	a, b := newStore(t), newStore(t)
	treetest.Write(t, a.data, map[string]treetest.Spec{"f": {Content: bigContent(1, 1<<20)}})
	treetest.Write(t, b.data, map[string]treetest.Spec{"f": {Content: bigContent(2, 1<<20)}})
	a.save(t, "s")
	b.save(t, "s")
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, s := range []*store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = transfer.Push(ctx, s.repo, rem, transfer.PushOptions{State: "s", LockWait: time.Minute})
		}()
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("want exactly one winner, got %v and %v", errs[0], errs[1])
	}
	for _, err := range errs {
		if err != nil && !strings.Contains(err.Error(), "pull first") {
			t.Fatalf("the loser must be told to pull first: %v", err)
		}
	}
	v, err := maintain.Verify(ctx, rem, maintain.VerifyOptions{ReadData: true})
	if err != nil || !v.OK() {
		t.Fatalf("verify: %v %+v", err, v)
	}
}
