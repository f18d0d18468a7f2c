package saver_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/maintain"
	"github.com/statepack/statepack/archive/restorer"
	"github.com/statepack/statepack/archive/saver"
	"github.com/statepack/statepack/internal/treetest"
	"github.com/statepack/statepack/remote/dirbackend"
)

// pagedRepo is a fresh store and a DATA_DIR holding one SQLite-like
// database of 2,000 pages (8 MB), saved once as state "db".
func pagedRepo(t *testing.T) (r *archive.Repository, dir string, db []byte, first *saver.Result) {
	t.Helper()
	be, err := dirbackend.New(filepath.Join(t.TempDir(), "store"), true)
	if err != nil {
		t.Fatal(err)
	}
	if r, err = archive.OpenOrInit(context.Background(), be); err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(t.TempDir(), "data")
	db = []byte(treetest.SQLite(2000, 7))
	treetest.Write(t, dir, map[string]treetest.Spec{"dynamodb/local.db": {Content: string(db)}})
	if first, err = saver.Save(context.Background(), r, saver.Options{DataDir: dir, State: "db"}); err != nil {
		t.Fatal(err)
	}
	return r, dir, db, first
}

// TestPagedDatabaseStoresWhatChanged: a transaction that rewrites three
// scattered pages and appends one adds the blocks holding those pages and
// the list blocks naming them, not a block of Avg bytes per page; both
// versions restore exactly.
func TestPagedDatabaseStoresWhatChanged(t *testing.T) {
	r, dir, db, first := pagedRepo(t)
	ctx := context.Background()
	m1, err := r.LoadManifest(ctx, first.Snapshot)
	if err != nil {
		t.Fatal(err)
	}
	e := m1.Entries[len(m1.Entries)-1]
	if len(e.Blocks) != 500 || len(e.Lists) != 16 {
		t.Fatalf("8 MB database cut into %d blocks named by %d lists, want 500 blocks of 16 KiB in 16 lists", len(e.Blocks), len(e.Lists))
	}
	v1 := treetest.MustRead(t, dir)
	for _, page := range []int{3, 900, 1700} {
		copy(db[page*4096+100:], "a row updated in place")
	}
	db = append(db, []byte(strings.Repeat("new page", 512))...)
	treetest.Write(t, dir, map[string]treetest.Spec{"dynamodb/local.db": {Content: string(db)}})
	v2 := treetest.MustRead(t, dir)
	second, err := saver.Save(ctx, r, saver.Options{DataDir: dir, State: "db"})
	if err != nil {
		t.Fatal(err)
	}
	// Three rewritten blocks and the extended last one; the lists holding
	// them (three, the last one twice over) and the new last list.
	if second.NewBlocks > 4+4 || second.NewBytes > 4*16<<10+4*format.ListEntries*format.ListEntrySize {
		t.Fatalf("changing 4 pages stored %d blocks, %d bytes", second.NewBlocks, second.NewBytes)
	}
	for _, c := range []struct {
		snap format.ID
		want treetest.Tree
	}{{first.Snapshot, v1}, {second.Snapshot, v2}} {
		out := filepath.Join(t.TempDir(), "out")
		if _, err := restorer.Restore(ctx, r, restorer.Options{DataDir: out, Snapshot: c.snap}); err != nil {
			t.Fatal(err)
		}
		treetest.AssertEqual(t, c.want, treetest.MustRead(t, out))
	}
}

// TestDamagedListBlock: a list block whose bytes no longer match its id
// stops restore before DATA_DIR is touched, is reported by verify, and
// makes prune refuse rather than drop what the snapshot still needs.
func TestDamagedListBlock(t *testing.T) {
	r, _, _, first := pagedRepo(t)
	ctx := context.Background()
	m, err := r.LoadManifestUnexpanded(ctx, first.Snapshot)
	if err != nil {
		t.Fatal(err)
	}
	list := m.Entries[len(m.Entries)-1].Lists[5]
	loc, ok := r.Index().Lookup(list.ID)
	if !ok {
		t.Fatal("list block not indexed")
	}
	pack := filepath.Join(r.Location(), filepath.FromSlash(format.PackName(loc.Pack)))
	f, err := os.OpenFile(pack, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("XX"), int64(loc.Offset)+int64(loc.Stored)/2); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out := filepath.Join(t.TempDir(), "out")
	_, err = restorer.Restore(ctx, r, restorer.Options{DataDir: out, Snapshot: first.Snapshot})
	if err == nil || !strings.Contains(err.Error(), list.ID.Short()) {
		t.Fatalf("restore with a damaged block list: %v", err)
	}
	if _, serr := os.Stat(out); !os.IsNotExist(serr) {
		t.Fatalf("restore created DATA_DIR before failing: %v", serr)
	}
	rep, err := maintain.Verify(ctx, r, maintain.VerifyOptions{ReadData: true})
	if err != nil || rep.OK() {
		t.Fatalf("verify --read-data passed a damaged block list: %v", err)
	}
	if _, err := maintain.Prune(ctx, r, maintain.PruneOptions{}); err == nil {
		t.Fatal("prune ran over a snapshot whose block list cannot be read")
	}
	if !r.HasSnapshot(ctx, first.Snapshot) {
		t.Fatal("prune removed the snapshot")
	}
}

// TestMissingListBlock: a snapshot whose list block is gone is an
// incomplete snapshot, never the end of a shallow history: prune must
// not take the versions behind it for unreachable.
func TestMissingListBlock(t *testing.T) {
	r, dir, db, first := pagedRepo(t)
	ctx := context.Background()
	copy(db[4096*10:], "changed")
	treetest.Write(t, dir, map[string]treetest.Spec{"dynamodb/local.db": {Content: string(db)}})
	second, err := saver.Save(ctx, r, saver.Options{DataDir: dir, State: "db"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := r.LoadManifestUnexpanded(ctx, second.Snapshot)
	if err != nil {
		t.Fatal(err)
	}
	var newList format.BlockRef
	m1, _ := r.LoadManifestUnexpanded(ctx, first.Snapshot)
	for i, l := range m.Entries[len(m.Entries)-1].Lists {
		if l != m1.Entries[len(m1.Entries)-1].Lists[i] {
			newList = l
		}
	}
	loc, _ := r.Index().Lookup(newList.ID)
	if err := os.Remove(filepath.Join(r.Location(), filepath.FromSlash(format.PackName(loc.Pack)))); err != nil {
		t.Fatal(err)
	}
	if _, err := maintain.Prune(ctx, r, maintain.PruneOptions{}); err == nil {
		t.Fatal("prune ran over a snapshot whose block list is missing")
	}
	for _, id := range []format.ID{first.Snapshot, second.Snapshot} {
		if !r.HasSnapshot(ctx, id) {
			t.Fatalf("snapshot %s removed", id.Short())
		}
	}
}

// TestDiffCutsDatabasesAsSaveDoes: diff hashes a file whose stat changed
// with the same cuts as save, so a database touched but not changed shows
// a new mtime, not new content.
func TestDiffCutsDatabasesAsSaveDoes(t *testing.T) {
	r, dir, _, first := pagedRepo(t)
	later := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(dir, "dynamodb", "local.db"), later, later); err != nil {
		t.Fatal(err)
	}
	changes, err := restorer.DiffDataDir(context.Background(), r, first.Snapshot, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || changes[0].Path != "dynamodb/local.db" || !slices.Equal(changes[0].What, []string{"mtime"}) {
		t.Fatalf("diff of a touched database: %+v", changes)
	}
}
