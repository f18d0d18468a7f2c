package archive_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"runtime"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/maintain"
	"github.com/statepack/statepack/archive/restorer"
	"github.com/statepack/statepack/archive/saver"
	"github.com/statepack/statepack/internal/testhook"
	"github.com/statepack/statepack/internal/treetest"
	"github.com/statepack/statepack/remote/backend"
	"github.com/statepack/statepack/remote/dirbackend"
)

// crashAfter is a Backend that stops accepting writes after n of them, as
// if the process died there: the write that "crashes" leaves nothing, and
// so does every later one.
type crashAfter struct {
	backend.Backend
	n      int64
	writes atomic.Int64
}

var errCrash = errors.New("simulated crash")

func (c *crashAfter) dead() bool { return c.writes.Add(1) > c.n }

func (c *crashAfter) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	if c.dead() {
		return errCrash
	}
	return c.Backend.Put(ctx, name, r, size)
}

func (c *crashAfter) PutIf(ctx context.Context, name string, data []byte, tag string) (string, error) {
	if c.dead() {
		return "", errCrash
	}
	return c.Backend.PutIf(ctx, name, data, tag)
}

func (c *crashAfter) Delete(ctx context.Context, name string) error {
	if c.dead() {
		return errCrash
	}
	return c.Backend.Delete(ctx, name)
}

// checkConsistent opens the store afresh and proves invariant 1: every ref
// resolves to a snapshot whose blocks are all present and intact.
func checkConsistent(t *testing.T, root string) {
	t.Helper()
	be, err := dirbackend.New(root, false)
	if err != nil {
		t.Fatal(err)
	}
	r, err := archive.Open(context.Background(), be)
	if err != nil {
		t.Fatal(err)
	}
	v, err := maintain.Verify(context.Background(), r, maintain.VerifyOptions{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if !v.OK() {
		t.Fatalf("store inconsistent after crash: %+v", v.Problems)
	}
}

// TestCrashAtEveryWrite (invariant 1): a save, a forget and a prune are cut
// off after each possible number of writes; the store stays consistent
// every time and the same command then completes.
func TestCrashAtEveryWrite(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	data := filepath.Join(base, "data")
	// A database too: cut by page, its block list in list blocks, which
	// prune must keep live and repack like any block.
	db := []byte(treetest.SQLite(200, 5))
	treetest.Write(t, data, map[string]treetest.Spec{"a": {Content: strings.Repeat("x", 300<<10)}, "b/c": {Content: "small"}, "db": {Content: string(db)}})
	for n := int64(0); ; n++ {
		root := filepath.Join(base, fmt.Sprintf("store%d", n))
		be, _ := dirbackend.New(root, true)
		r, err := archive.OpenOrInit(ctx, be)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := saver.Save(ctx, r, saver.Options{DataDir: data, State: "s"}); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(data, "b/c"), []byte(fmt.Sprint("changed ", n)), 0o644); err != nil {
			t.Fatal(err)
		}
		copy(db[4096*(1+n%150):], fmt.Sprint("page written in round ", n))
		if err := os.WriteFile(filepath.Join(data, "db"), db, 0o644); err != nil {
			t.Fatal(err)
		}
		cb := &crashAfter{Backend: be, n: n}
		cr, err := archive.Open(ctx, cb)
		if err != nil {
			t.Fatal(err)
		}
		_, err1 := saver.Save(ctx, cr, saver.Options{DataDir: data, State: "s"})
		_, err2 := maintain.Forget(ctx, cr, "s", maintain.ForgetOptions{KeepLast: 1})
		_, err3 := maintain.Prune(ctx, cr, maintain.PruneOptions{RepackBelow: 0.99})
		checkConsistent(t, root)
		if err1 == nil && err2 == nil && err3 == nil {
			if n < 5 {
				t.Fatalf("only %d writes for save+forget+prune: the crash points were not exercised", n)
			}
			t.Logf("crashed at each of %d write points", n)
			return
		}
		// Running the commands again completes them.
		r2, err := archive.Open(ctx, be)
		if err != nil {
			t.Fatal(err)
		}
		archive.RemoveAllLocks(t, r2)
		if _, err := saver.Save(ctx, r2, saver.Options{DataDir: data, State: "s"}); err != nil {
			t.Fatalf("save after crash at %d: %v", n, err)
		}
		checkConsistent(t, root)
		if _, err := maintain.Prune(ctx, r2, maintain.PruneOptions{}); err != nil {
			t.Fatalf("prune after crash at %d: %v", n, err)
		}
		checkConsistent(t, root)
		os.RemoveAll(root)
	}
}

// TestCorruptionIsRefused (invariant 2): a flipped byte in a pack, a
// manifest or an index is reported naming the object, and restore writes
// nothing into DATA_DIR.
func TestCorruptionIsRefused(t *testing.T) {
	for _, target := range []string{"packs/", "snapshots/", "index/"} {
		t.Run(strings.TrimSuffix(target, "/"), func(t *testing.T) {
			ctx := context.Background()
			r, cache := testRepo(t)
			src := filepath.Join(t.TempDir(), "data")
			treetest.Write(t, src, map[string]treetest.Spec{"f": {Content: strings.Repeat("content ", 50000)}})
			res := save(t, r, cache, src, "s")
			root := r.Backend().(*dirbackend.Backend).Root()
			name := flipFirst(t, root, target)
			be, _ := dirbackend.New(root, false)
			r2, err := archive.Open(ctx, be)
			if err != nil {
				t.Fatal(err)
			}
			v, err := maintain.Verify(ctx, r2, maintain.VerifyOptions{ReadData: true})
			if err != nil {
				t.Fatal(err)
			}
			if v.OK() || !strings.Contains(fmt.Sprint(v.Problems), filepath.Base(name)[:8]) {
				t.Fatalf("verify did not name %s: %+v", name, v.Problems)
			}
			dst := filepath.Join(t.TempDir(), "restore")
			_, err = restorer.Restore(ctx, r2, restorer.Options{DataDir: dst, Snapshot: res.Snapshot})
			if err == nil {
				t.Fatal("restore of damaged data succeeded")
			}
			if entries, _ := os.ReadDir(dst); len(entries) != 0 {
				t.Fatalf("restore wrote %d entries from damaged data", len(entries))
			}
		})
	}
}

// flipFirst flips one byte in the middle of the first object under prefix.
func flipFirst(t *testing.T, root, prefix string) string {
	t.Helper()
	var found string
	_ = filepath.WalkDir(filepath.Join(root, prefix), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && found == "" {
			found = p
		}
		return nil
	})
	data, err := os.ReadFile(found)
	if err != nil {
		t.Fatal(err)
	}
	at := len(data) / 2
	if prefix == "packs/" {
		// The middle of the blocks, not of the whole pack: restore reads
		// blocks by the index, never the pack's trailer, so a flip there
		// is for verify alone (small packs can be mostly trailer).
		trailer, err := format.PackTrailerSize(data[len(data)-8:], int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		at = (len(data) - int(trailer)) / 2
	}
	data[at] ^= 0x40
	if err := os.WriteFile(found, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return found
}

// TestRestoreBacksUpUnsavedChanges (invariant 4): content no snapshot has
// is saved before restore overwrites it and can be restored again.
func TestRestoreBacksUpUnsavedChanges(t *testing.T) {
	ctx := context.Background()
	r, cache := testRepo(t)
	dir := filepath.Join(t.TempDir(), "data")
	treetest.Write(t, dir, map[string]treetest.Spec{"f": {Content: "v1"}})
	first := save(t, r, cache, dir, "s")
	treetest.Write(t, dir, map[string]treetest.Spec{"f": {Content: "unsaved work"}, "new": {Content: "n"}})
	unsaved := treetest.MustRead(t, dir)
	res := restore(t, r, cache, dir, first.Snapshot)
	if res.Backup == nil || res.Backup.State != restorer.DefaultBackupState {
		t.Fatalf("no backup made: %+v", res)
	}
	back, err := r.Resolve(ctx, restorer.DefaultBackupState)
	if err != nil {
		t.Fatal(err)
	}
	restore(t, r, cache, dir, back)
	treetest.AssertEqual(t, unsaved, treetest.MustRead(t, dir))
}

// TestRefCompareAndSwap (invariant 6): of many concurrent updates from the
// same starting point exactly one wins.
func TestRefCompareAndSwap(t *testing.T) {
	ctx := context.Background()
	r, _ := testRepo(t)
	if err := r.SetRef(ctx, "s", format.Hash([]byte("0")), ""); err != nil {
		t.Fatal(err)
	}
	_, tag, err := r.ReadRef(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	var wins atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := r.SetRef(ctx, "s", format.Hash([]byte{byte(i)}), tag)
			if err == nil {
				wins.Add(1)
			} else if !errors.Is(err, backend.ErrConflict) {
				t.Errorf("unexpected error %v", err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d updates won, want exactly 1", wins.Load())
	}
}

// TestFileChangingDuringSave: a file that changes while it is read is
// read again; one that never settles fails the save naming it.
func TestFileChangingDuringSave(t *testing.T) {
	ctx := context.Background()
	r, cache := testRepo(t)
	dir := filepath.Join(t.TempDir(), "data")
	treetest.Write(t, dir, map[string]treetest.Spec{"busy": {Content: "v0"}})
	var n atomic.Int64
	testhook.SetAfterReadHook(func(p string) {
		if n.Add(1) == 1 {
			_ = os.WriteFile(p, []byte("v1 longer"), 0o644)
		}
	})
	defer testhook.SetAfterReadHook(nil)
	res := save(t, r, cache, dir, "s")
	m, err := r.LoadManifest(ctx, res.Snapshot)
	if err != nil || m.Entries[0].Size != int64(len("v1 longer")) {
		t.Fatalf("changed file not re-read: %+v %v", m.Entries, err)
	}
	testhook.SetAfterReadHook(func(p string) { _ = os.WriteFile(p, []byte(fmt.Sprint(n.Add(1))), 0o644) })
	_, err = saver.Save(ctx, r, saver.Options{DataDir: dir, State: "s", CacheDir: cache})
	if err == nil || !strings.Contains(err.Error(), "busy changed while it was read") {
		t.Fatalf("want error naming busy, got %v", err)
	}
}

// TestBadInput: each gets a clear error and changes nothing.
func TestBadInput(t *testing.T) {
	ctx := context.Background()
	r, cache := testRepo(t)
	file := filepath.Join(t.TempDir(), "file")
	_ = os.WriteFile(file, []byte("x"), 0o644)
	cases := []struct {
		name string
		run  func() error
		want string
	}{
		{"no DATA_DIR", func() error { _, err := saver.Save(ctx, r, saver.Options{State: "s"}); return err }, "DATA_DIR"},
		{"DATA_DIR missing", func() error {
			_, err := saver.Save(ctx, r, saver.Options{DataDir: "/does/not/exist", State: "s"})
			return err
		}, "DATA_DIR /does/not/exist does not exist"},
		{"DATA_DIR is a file", func() error { _, err := saver.Save(ctx, r, saver.Options{DataDir: file, State: "s"}); return err }, "not a directory"},
		{"bad state name", func() error {
			_, err := saver.Save(ctx, r, saver.Options{DataDir: t.TempDir(), State: "../x"})
			return err
		}, "invalid state name"},
		{"unknown state", func() error { _, err := r.Resolve(ctx, "nope"); return err }, "state 'nope' not found"},
		{"unknown id", func() error { _, err := r.Resolve(ctx, "deadbeef"); return err }, "not found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.run()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want error containing %q, got %v", c.want, err)
			}
		})
	}
	_ = cache
	states, _ := r.States(ctx)
	if len(states) != 0 {
		t.Fatalf("bad input created states %v", states)
	}
}

// TestNotARepositoryAndNewerFormat: stores that are not ours are refused.
func TestNotARepositoryAndNewerFormat(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	_ = os.WriteFile(filepath.Join(dir, "something"), []byte("x"), 0o644)
	be, _ := dirbackend.New(dir, false)
	if _, err := archive.OpenOrInit(ctx, be); !errors.Is(err, format.ErrNotRepository) {
		t.Fatalf("want not a repository, got %v", err)
	}
	_ = os.WriteFile(filepath.Join(dir, "config"), bytes.ReplaceAll([]byte(`{"version": 99}`), nil, nil), 0o644)
	if _, err := archive.Open(ctx, be); !errors.Is(err, format.ErrNewerFormat) {
		t.Fatalf("want newer format, got %v", err)
	}
}

// TestRepairRebuildsIndex: after an index is lost and a pack damaged,
// repair rebuilds the index from the packs, keeps every block that still
// verifies, and names the snapshot and file that lost content.
func TestRepairRebuildsIndex(t *testing.T) {
	ctx := context.Background()
	r, cache := testRepo(t)
	src := filepath.Join(t.TempDir(), "data")
	treetest.Write(t, src, map[string]treetest.Spec{"good": {Content: "intact"}})
	good := save(t, r, cache, src, "good")
	src2 := filepath.Join(t.TempDir(), "data2")
	treetest.Write(t, src2, map[string]treetest.Spec{"doomed": {Content: strings.Repeat("doomed ", 1000)}})
	bad := save(t, r, cache, src2, "bad")
	root := r.Backend().(*dirbackend.Backend).Root()
	// Lose every index object, and damage the pack of the second save.
	os.RemoveAll(filepath.Join(root, "index"))
	m, _ := r.LoadManifest(ctx, bad.Snapshot)
	loc, _ := r.Index().Lookup(m.Entries[0].Blocks[0].ID)
	p := filepath.Join(root, format.PackName(loc.Pack))
	data, _ := os.ReadFile(p)
	data[loc.Offset+2] ^= 0xff
	_ = os.WriteFile(p, data, 0o644)

	be, _ := dirbackend.New(root, false)
	r2, _ := archive.Open(ctx, be)
	rep, err := maintain.Repair(ctx, r2, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.PacksDamaged) != 1 || len(rep.Snapshots) != 1 || rep.Snapshots[0].Files[0] != "doomed" || rep.Snapshots[0].State != "bad" {
		t.Fatalf("repair report: %+v", rep)
	}
	dst := filepath.Join(t.TempDir(), "out")
	if _, err := restorer.Restore(ctx, r2, restorer.Options{DataDir: dst, Snapshot: good.Snapshot}); err != nil {
		t.Fatalf("intact snapshot does not restore after repair: %v", err)
	}
	if _, err := restorer.Restore(ctx, r2, restorer.Options{DataDir: filepath.Join(t.TempDir(), "x"), Snapshot: bad.Snapshot}); err == nil || !strings.Contains(err.Error(), "doomed") {
		t.Fatalf("damaged snapshot: want error naming the file, got %v", err)
	}
}

// TestRepairStreamsPacks: repair reads each pack a block at a time, so a
// file in packs/ of any size, however it got there, costs no more memory
// than a block: one listed at 100 GiB (sparse) is reported damaged and
// removed instead of being read whole, and a 12 MiB pack is re-hashed
// without being held. Good blocks of a damaged pack are salvaged.
func TestRepairStreamsPacks(t *testing.T) {
	ctx := context.Background()
	r, cache := testRepo(t)
	src := filepath.Join(t.TempDir(), "data")
	rng := rand.New(rand.NewPCG(10, 11))
	treetest.Write(t, src, map[string]treetest.Spec{"big": {Content: string(randomBlock(rng, 12<<20))}})
	res := save(t, r, cache, src, "s")
	root := r.Backend().(*dirbackend.Backend).Root()
	huge := filepath.Join(root, "packs", "ab", "ab"+strings.Repeat("0", 62))
	if err := os.MkdirAll(filepath.Dir(huge), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(huge, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(huge, 100<<30); err != nil {
		t.Fatal(err)
	}

	be, _ := dirbackend.New(root, false)
	r2, err := archive.Open(ctx, be)
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rep, err := maintain.Repair(ctx, r2, nil, 0)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("repair allocated %d MiB for a 12 MiB pack: it held the pack", alloc>>20)
	}
	if len(rep.PacksDamaged) != 1 || !strings.HasSuffix(rep.PacksDamaged[0], filepath.Base(huge)) || rep.BlocksLost != 0 || len(rep.Snapshots) != 0 {
		t.Fatalf("repair report %+v, want only the 100 GiB file damaged and nothing lost", rep)
	}
	if _, err := os.Stat(huge); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the damaged pack is still there: %v", err)
	}
	dst := filepath.Join(t.TempDir(), "out")
	if _, err := restorer.Restore(ctx, r2, restorer.Options{DataDir: dst, Snapshot: res.Snapshot}); err != nil {
		t.Fatalf("restore after repair: %v", err)
	}
	treetest.AssertEqual(t, treetest.MustRead(t, src), treetest.MustRead(t, dst))
}
