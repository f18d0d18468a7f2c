package maintain_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/maintain"
	"github.com/statepack/statepack/archive/saver"
	"github.com/statepack/statepack/internal/testhook"
	"github.com/statepack/statepack/remote/backend"
	"github.com/statepack/statepack/remote/dirbackend"
)

// TestPruneAndRepairSyncBeforeDelete: prune and repair write new packs
// and index objects, then delete what those replace. On a directory the
// new objects must be durable (syncfs) before the first deletion, or a
// power failure could keep the deletions and lose the replacements: the
// blocks the snapshots name would be gone (invariant 1).
func TestPruneAndRepairSyncBeforeDelete(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "store")
	be, err := dirbackend.New(root, true)
	if err != nil {
		t.Fatal(err)
	}
	r, err := archive.OpenOrInit(ctx, be)
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
		if _, err := saver.Save(ctx, r, saver.Options{DataDir: data, State: "s"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := maintain.Forget(ctx, r, "s", maintain.ForgetOptions{KeepLast: 1}); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var ops []string
	testhook.DirOp = func(op, name string) {
		mu.Lock()
		defer mu.Unlock()
		ops = append(ops, op+" "+name)
	}
	t.Cleanup(func() { testhook.DirOp = nil })
	check := func(what string) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		unsynced := map[string]bool{} // objects put and not yet made durable
		puts, deletes := 0, 0
		for _, op := range ops {
			kind, name, _ := strings.Cut(op, " ")
			switch {
			case strings.HasPrefix(name, "locks/"):
			case kind == "put":
				unsynced[name] = true
				puts++
			case kind == "fsync":
				rel, _ := filepath.Rel(root, name)
				delete(unsynced, filepath.ToSlash(rel))
			case kind == "sync":
				clear(unsynced)
			case kind == "delete":
				deletes++
				for u := range unsynced {
					t.Errorf("%s: %s before %s was made durable", what, op, u)
				}
			}
		}
		if puts == 0 || deletes == 0 {
			t.Fatalf("%s wrote %d objects and deleted %d: the test needs both (%v)", what, puts, deletes, ops)
		}
		ops = nil
	}

	if _, err := maintain.Prune(ctx, r, maintain.PruneOptions{RepackBelow: 0.99}); err != nil {
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
	if _, err := maintain.Repair(ctx, r, nil, 0); err != nil {
		t.Fatal(err)
	}
	check("repair")
}

// TestFlushCoversWhatARefReaches: the flush before a ref fsyncs the
// objects this backend wrote and the directories naming them, unless it
// read objects others wrote since its last syncfs: then one syncfs
// covers those too. SettleReads brings that syncfs forward; reading a
// pack's bytes relies on nothing the index and snapshots do not.
func TestFlushCoversWhatARefReaches(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "store")
	other, err := dirbackend.New(root, true) // another process
	if err != nil {
		t.Fatal(err)
	}
	put := func(b *dirbackend.Backend, name string) {
		t.Helper()
		if err := b.Put(ctx, name, strings.NewReader(name), int64(len(name))); err != nil {
			t.Fatal(err)
		}
	}
	put(other, "index/"+strings.Repeat("1", 64))
	put(other, "packs/22/"+strings.Repeat("2", 64))

	var mu sync.Mutex
	var ops []string
	testhook.DirOp = func(op, name string) {
		mu.Lock()
		defer mu.Unlock()
		if op != "put" {
			ops = append(ops, op+" "+strings.TrimPrefix(strings.TrimPrefix(name, root), "/"))
		}
	}
	t.Cleanup(func() { testhook.DirOp = nil })
	step := func(what string, fn func(b *dirbackend.Backend), want ...string) {
		t.Helper()
		mu.Lock()
		ops = nil
		mu.Unlock()
		b, err := dirbackend.New(root, false)
		if err != nil {
			t.Fatal(err)
		}
		fn(b)
		if _, err := b.PutIf(ctx, "refs/s", []byte(what), ""); err != nil && !errors.Is(err, backend.ErrConflict) {
			t.Fatal(err)
		}
		_ = os.Remove(filepath.Join(root, "refs", "s"))
		mu.Lock()
		defer mu.Unlock()
		got := slices.Sorted(slices.Values(ops))
		if want := slices.Sorted(slices.Values(want)); !slices.Equal(got, want) {
			t.Errorf("%s: %q, want %q", what, got, want)
		}
	}
	pack := "packs/ab/" + strings.Repeat("a", 64)
	step("own writes only", func(b *dirbackend.Backend) {
		put(b, pack)
		put(b, "snapshots/"+strings.Repeat("c", 64))
	}, "fsync "+pack, "fsync snapshots/"+strings.Repeat("c", 64), "fsync packs/ab", "fsync packs", "fsync snapshots", "fsync ")
	step("read another's index", func(b *dirbackend.Backend) {
		rc, err := b.Get(ctx, "index/"+strings.Repeat("1", 64))
		if err != nil {
			t.Fatal(err)
		}
		rc.Close()
		put(b, pack)
	}, "sync ")
	step("listed another's pack", func(b *dirbackend.Backend) {
		_ = b.List(ctx, "packs/", func(backend.ObjectInfo) error { return nil })
	}, "sync ")
	step("read another's pack bytes", func(b *dirbackend.Backend) {
		rc, err := b.GetRange(ctx, "packs/22/"+strings.Repeat("2", 64), 0, 4)
		if err != nil {
			t.Fatal(err)
		}
		rc.Close()
	})
	step("settled its reads first", func(b *dirbackend.Backend) {
		if _, err := b.Stat(ctx, "index/"+strings.Repeat("1", 64)); err != nil {
			t.Fatal(err)
		}
		if err := b.SettleReads(); err != nil {
			t.Fatal(err)
		}
		put(b, "index/"+strings.Repeat("d", 64))
	}, "sync ", "fsync index/"+strings.Repeat("d", 64), "fsync index", "fsync ")
}
