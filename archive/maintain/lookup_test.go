package maintain_test

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/maintain"
	"github.com/statepack/statepack/archive/saver"
	"github.com/statepack/statepack/chunker"
	"github.com/statepack/statepack/remote/dirbackend"
)

// lookupFixture is a repository on a directory backend that keeps a
// lookup cache in dir, for the tests of what prune and repair do to the
// lookup cache and tables (their white-box tests are archive's).
type lookupFixture struct {
	t   *testing.T
	be  *dirbackend.Backend
	r   *archive.Repository // with the lookup cache
	dir string              // the lookup cache directory
	rng *rand.ChaCha8
}

func newLookupFixture(t *testing.T) *lookupFixture {
	t.Helper()
	be, err := dirbackend.New(filepath.Join(t.TempDir(), "remote"), true)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := format.NewConfig(chunker.DefaultParams(), 0)
	if err != nil {
		t.Fatal(err)
	}
	r, err := archive.Init(context.Background(), be, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := &lookupFixture{t: t, be: be, r: r, dir: filepath.Join(t.TempDir(), "cache"), rng: rand.NewChaCha8([32]byte{42})}
	r.UseLookupCache(f.dir)
	return f
}

// dataDir makes a DATA_DIR to save from and a writer of files of size
// random bytes in it.
func (f *lookupFixture) dataDir(size int) (string, func(name string)) {
	f.t.Helper()
	data := filepath.Join(f.t.TempDir(), "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		f.t.Fatal(err)
	}
	return data, func(name string) {
		b := make([]byte, size)
		_, _ = f.rng.Read(b)
		if err := os.WriteFile(filepath.Join(data, name), b, 0o644); err != nil {
			f.t.Fatal(err)
		}
	}
}

// publish makes sure the fixture's client has a cache of the whole index
// and publishes it as the repository's table, which must happen.
func (f *lookupFixture) publish() format.ID {
	f.t.Helper()
	f.r.SetLookupTableMin(1)
	if _, err := f.r.FindBlocks(context.Background(), map[format.ID]struct{}{{}: {}}); err != nil {
		f.t.Fatal(err)
	}
	ok, err := f.r.PublishLookupTable(context.Background())
	if err != nil || !ok {
		f.t.Fatalf("publish: %v %v", ok, err)
	}
	return f.tables()[0]
}

// tables lists the tables on the fixture's repository.
func (f *lookupFixture) tables() []format.ID {
	f.t.Helper()
	ts, _, err := f.r.ListLookupTables(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	var ids []format.ID
	for _, t := range ts {
		ids = append(ids, t.ID)
	}
	return ids
}

// cold opens the fixture's repository as a client with no cache of its
// own would: with an empty cache directory.
func (f *lookupFixture) cold(dir string) (*archive.Repository, struct{}) {
	f.t.Helper()
	r, err := archive.Open(context.Background(), f.be)
	if err != nil {
		f.t.Fatal(err)
	}
	r.SetLookupTableMin(1)
	r.UseLookupCache(dir)
	return r, struct{}{}
}

// TestLookupCacheAfterPrune: the same through the repository's own
// forget and prune, on a repository that uses a lookup cache itself.
func TestLookupCacheAfterPrune(t *testing.T) {
	ctx := context.Background()
	f := newLookupFixture(t)
	data, write := f.dataDir(400 << 10)
	blocksOf := func(snap format.ID) map[format.ID]struct{} {
		m, err := f.r.LoadManifest(ctx, snap)
		if err != nil {
			t.Fatal(err)
		}
		out := map[format.ID]struct{}{}
		for _, e := range m.Entries {
			for _, b := range e.Blocks {
				out[b.ID] = struct{}{}
			}
		}
		return out
	}
	write("a")
	write("b")
	first, err := saver.Save(ctx, f.r, saver.Options{DataDir: data, State: "s"})
	if err != nil {
		t.Fatal(err)
	}
	old := blocksOf(first.Snapshot)
	if found, err := f.r.FindBlocks(ctx, old); err != nil || len(found) != len(old) {
		t.Fatalf("found %d of %d blocks: %v", len(found), len(old), err)
	}
	write("a")
	if err := os.Remove(filepath.Join(data, "b")); err != nil {
		t.Fatal(err)
	}
	if _, err := saver.Save(ctx, f.r, saver.Options{DataDir: data, State: "s"}); err != nil {
		t.Fatal(err)
	}
	if _, err := maintain.Forget(ctx, f.r, "s", maintain.ForgetOptions{KeepLast: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := maintain.Prune(ctx, f.r, maintain.PruneOptions{RepackBelow: 0.99}); err != nil {
		t.Fatal(err)
	}
	found, err := f.r.FindBlocks(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 0 {
		t.Fatalf("after prune, %d blocks of the forgotten version are still claimed", len(found))
	}
}

// TestPruneAndRepairDropLookupTables: prune and repair rewrite the
// index, so the tables covering the old one are deleted with it; and a
// cold client after prune does not claim the forgotten blocks (a table
// left behind would be stale, and ignored, anyway).
func TestPruneAndRepairDropLookupTables(t *testing.T) {
	for _, op := range []string{"prune", "repair"} {
		t.Run(op, func(t *testing.T) {
			ctx := context.Background()
			f := newLookupFixture(t)
			data, write := f.dataDir(300 << 10)
			write("a")
			first, err := saver.Save(ctx, f.r, saver.Options{DataDir: data, State: "s"})
			if err != nil {
				t.Fatal(err)
			}
			m, err := f.r.LoadManifest(ctx, first.Snapshot)
			if err != nil {
				t.Fatal(err)
			}
			old := map[format.ID]struct{}{}
			m.AllBlocks(func(_ *format.Entry, b format.BlockRef) { old[b.ID] = struct{}{} })
			write("a")
			if _, err := saver.Save(ctx, f.r, saver.Options{DataDir: data, State: "s"}); err != nil {
				t.Fatal(err)
			}
			if err := os.RemoveAll(f.dir); err != nil { // the saves' pending copies
				t.Fatal(err)
			}
			f.publish()
			switch op {
			case "prune":
				if _, err := maintain.Forget(ctx, f.r, "s", maintain.ForgetOptions{KeepLast: 1}); err != nil {
					t.Fatal(err)
				}
				if _, err := maintain.Prune(ctx, f.r, maintain.PruneOptions{RepackBelow: 0.99}); err != nil {
					t.Fatal(err)
				}
			case "repair":
				if _, err := maintain.Repair(ctx, f.r, nil, 0); err != nil {
					t.Fatal(err)
				}
			}
			if got := f.tables(); len(got) != 0 {
				t.Fatalf("tables left after %s: %v", op, got)
			}
			r, _ := f.cold(t.TempDir())
			found, err := r.FindBlocks(ctx, old)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[string]int{"prune": 0, "repair": len(old)}[op]; len(found) != want {
				t.Fatalf("after %s, %d blocks of the first version are claimed, want %d", op, len(found), want)
			}
		})
	}
}
