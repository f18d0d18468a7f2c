package archive

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestPruneAndRepairSyncBeforeDelete: prune and repair write new packs
// and index objects, then delete what those replace. On a directory the
// new objects must be durable (syncfs) before the first deletion, or a
// power failure could keep the deletions and lose the replacements: the
// blocks the snapshots name would be gone (invariant 1).
func TestPruneAndRepairSyncBeforeDelete(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "store")
	be, err := NewDirBackend(root, true)
	if err != nil {
		t.Fatal(err)
	}
	r, err := OpenOrInit(ctx, be)
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(t.TempDir(), "data")
	rng := rand.New(rand.NewPCG(8, 9))
	for round := range 3 {
		for i := range 4 {
			b := make([]byte, 200<<10)
			for j := range b {
				b[j] = byte(rng.Uint32())
			}
			if err := os.MkdirAll(data, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(data, string(rune('a'+i))), b, 0o644); err != nil {
				t.Fatal(err)
			}
			if i > round {
				break // later rounds change fewer files: packs end up partly live
			}
		}
		if _, err := r.Save(ctx, SaveOptions{DataDir: data, State: "s"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Forget(ctx, "s", ForgetOptions{KeepLast: 1}); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var ops []string
	testHookDirOp = func(op, name string) {
		mu.Lock()
		defer mu.Unlock()
		ops = append(ops, op+" "+name)
	}
	t.Cleanup(func() { testHookDirOp = nil })
	check := func(what string) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		unsynced, puts, deletes := "", 0, 0
		for _, op := range ops {
			switch {
			case strings.HasPrefix(op, "put locks/"):
			case strings.HasPrefix(op, "put "):
				unsynced, puts = op, puts+1
			case op == "sync ":
				unsynced = ""
			case strings.HasPrefix(op, "delete locks/"):
			case strings.HasPrefix(op, "delete "):
				deletes++
				if unsynced != "" {
					t.Errorf("%s: %s before %s was made durable", what, op, strings.TrimPrefix(unsynced, "put "))
				}
			}
		}
		if puts == 0 || deletes == 0 {
			t.Fatalf("%s wrote %d objects and deleted %d: the test needs both (%v)", what, puts, deletes, ops)
		}
		ops = nil
	}

	if _, err := r.Prune(ctx, PruneOptions{RepackBelow: 0.99}); err != nil {
		t.Fatal(err)
	}
	check("prune")

	packs, _ := filepath.Glob(filepath.Join(root, "packs", "*", "*"))
	if len(packs) == 0 {
		t.Fatal("no packs after prune")
	}
	f, err := os.OpenFile(packs[0], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xff, 0x00, 0xff}, 10); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := r.Repair(ctx, nil, 0); err != nil {
		t.Fatal(err)
	}
	check("repair")
}
