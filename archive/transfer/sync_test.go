package transfer_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/maintain"
	"github.com/statepack/statepack/archive/restorer"
	"github.com/statepack/statepack/archive/saver"
	"github.com/statepack/statepack/archive/transfer"
	"github.com/statepack/statepack/chunker"
	"github.com/statepack/statepack/internal/treetest"
	"github.com/statepack/statepack/remote"
	"github.com/statepack/statepack/remote/backend"
	"github.com/statepack/statepack/remote/dirbackend"
)

// store is one machine's view: a local repository and its DATA_DIR.
type store struct {
	repo  *archive.Repository
	cache string
	data  string
}

func newStore(t *testing.T) *store { return newStoreWith(t, format.DefaultPackSize) }

// newStoreWith makes a store that cuts packs of packSize.
func newStoreWith(t *testing.T, packSize int) *store {
	t.Helper()
	dir := t.TempDir()
	be, err := dirbackend.New(filepath.Join(dir, "store"), true)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := format.NewConfig(chunker.DefaultParams(), packSize)
	if err != nil {
		t.Fatal(err)
	}
	r, err := archive.Init(context.Background(), be, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &store{repo: r, cache: filepath.Join(dir, "store", "cache"), data: filepath.Join(dir, "data")}
}

func dirRemote(t *testing.T) *archive.Repository {
	t.Helper()
	be, err := dirbackend.New(filepath.Join(t.TempDir(), "remote"), true)
	if err != nil {
		t.Fatal(err)
	}
	r, err := archive.OpenOrInit(context.Background(), be)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (s *store) save(t *testing.T, state string) *saver.Result {
	t.Helper()
	res, err := saver.Save(context.Background(), s.repo, saver.Options{DataDir: s.data, State: state, CacheDir: s.cache})
	if err != nil {
		t.Fatalf("save: %v", err)
	}
	return res
}

// savePush saves DATA_DIR as state and pushes it to rem.
func (s *store) savePush(t *testing.T, rem *archive.Repository, state string) *saver.Result {
	t.Helper()
	res := s.save(t, state)
	if _, err := transfer.Push(context.Background(), s.repo, rem, transfer.PushOptions{State: state}); err != nil {
		t.Fatalf("push: %v", err)
	}
	return res
}

func bigContent(seed byte, n int) string {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return string(b)
}

// TestPushPullRoundTripDir: save, push, pull into a fresh store, restore,
// and the tree is identical; a second push and pull move nothing.
func TestPushPullRoundTrip(t *testing.T) { forEachRemote(t, testPushPullRoundTrip) }

func testPushPullRoundTrip(t *testing.T, newRemote func(*testing.T) *archive.Repository) {
	ctx := context.Background()
	a, b, rem := newStore(t), newStore(t), newRemote(t)
	treetest.Write(t, a.data, map[string]treetest.Spec{
		"api_states/sqs/store.state": {Content: bigContent(1, 3<<20)},
		"s3/bucket/obj":              {Content: bigContent(2, 1<<20)},
		"s3/empty":                   {Dir: true},
		"kinesis/link":               {Link: "../s3/bucket/obj"},
		"dynamodb/local.db":          {Content: treetest.SQLite(600, 3)}, // cut by page; lists out of line
	})
	want := treetest.MustRead(t, a.data)
	a.save(t, "main")
	res, err := transfer.Push(ctx, a.repo, rem, transfer.PushOptions{State: "main"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Blocks == 0 || res.UpToDate {
		t.Fatalf("first push sent nothing: %+v", res)
	}
	again, err := transfer.Push(ctx, a.repo, rem, transfer.PushOptions{State: "main"})
	if err != nil || !again.UpToDate || again.Blocks != 0 {
		t.Fatalf("second push: %+v, %v", again, err)
	}
	pres, err := transfer.Pull(ctx, b.repo, rem, transfer.PullOptions{State: "main"})
	if err != nil {
		t.Fatal(err)
	}
	if pres.Blocks != res.Blocks {
		t.Errorf("pulled %d blocks, pushed %d", pres.Blocks, res.Blocks)
	}
	if _, err := restorer.Restore(ctx, b.repo, restorer.Options{DataDir: b.data, Snapshot: pres.Snapshot, CacheDir: b.cache}); err != nil {
		t.Fatal(err)
	}
	treetest.AssertEqual(t, want, treetest.MustRead(t, b.data))
	for _, r := range []*archive.Repository{a.repo, b.repo, rem} {
		v, err := maintain.Verify(ctx, r, maintain.VerifyOptions{ReadData: true})
		if err != nil || !v.OK() {
			t.Fatalf("verify %s: %v %+v", r.Location(), err, v)
		}
	}
}

// TestPushSendsOnlyNewBlocks: after a change, push sends the blocks the
// save added and no more.
func TestPushSendsOnlyNewBlocks(t *testing.T) { forEachRemote(t, testPushSendsOnlyNewBlocks) }

func testPushSendsOnlyNewBlocks(t *testing.T, newRemote func(*testing.T) *archive.Repository) {
	ctx := context.Background()
	a, rem := newStore(t), newRemote(t)
	treetest.Write(t, a.data, map[string]treetest.Spec{"db": {Content: bigContent(3, 4<<20)}, "other": {Content: bigContent(4, 2<<20)}})
	a.savePush(t, rem, "s")
	content := []byte(bigContent(3, 4<<20))
	copy(content[2<<20:], "a change in the middle of the file")
	if err := os.WriteFile(filepath.Join(a.data, "db"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	saved := a.save(t, "s")
	res, err := transfer.Push(ctx, a.repo, rem, transfer.PushOptions{State: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Blocks != saved.NewBlocks || res.Bytes != saved.StoredBytes {
		t.Fatalf("push sent %d blocks / %d bytes; the save added %d / %d", res.Blocks, res.Bytes, saved.NewBlocks, saved.StoredBytes)
	}
}

// TestPushRefusesNonFastForward: two machines save the same state from the
// same start; the second push is refused and changes nothing.
func TestPushRefusesNonFastForward(t *testing.T) { forEachRemote(t, testPushRefusesNonFastForward) }

func testPushRefusesNonFastForward(t *testing.T, newRemote func(*testing.T) *archive.Repository) {
	ctx := context.Background()
	a, b, rem := newStore(t), newStore(t), newRemote(t)
	treetest.Write(t, a.data, map[string]treetest.Spec{"f": {Content: "a"}})
	treetest.Write(t, b.data, map[string]treetest.Spec{"f": {Content: "b"}})
	a.save(t, "s")
	b.save(t, "s")
	if _, err := transfer.Push(ctx, a.repo, rem, transfer.PushOptions{State: "s"}); err != nil {
		t.Fatal(err)
	}
	_, err := transfer.Push(ctx, b.repo, rem, transfer.PushOptions{State: "s"})
	if !errors.Is(err, transfer.ErrNotFastForward) || !strings.Contains(err.Error(), "pull first") {
		t.Fatalf("want not-fast-forward error, got %v", err)
	}
	if _, err := transfer.Push(ctx, b.repo, rem, transfer.PushOptions{State: "s", Force: true}); err != nil {
		t.Fatalf("forced push: %v", err)
	}
}

// TestPullFallback: a missing state falls back to the next; absent
// everywhere is ErrNotFound.
func TestPullFallback(t *testing.T) { forEachRemote(t, testPullFallback) }

func testPullFallback(t *testing.T, newRemote func(*testing.T) *archive.Repository) {
	ctx := context.Background()
	a, b, rem := newStore(t), newStore(t), newRemote(t)
	treetest.Write(t, a.data, map[string]treetest.Spec{"f": {Content: "main"}})
	a.savePush(t, rem, "main")
	res, err := transfer.Pull(ctx, b.repo, rem, transfer.PullOptions{State: "pr-1", Fallbacks: []string{"pr-0", "main"}})
	if err != nil || res.State != "main" {
		t.Fatalf("fallback pull: %+v %v", res, err)
	}
	_, err = transfer.Pull(ctx, b.repo, rem, transfer.PullOptions{State: "pr-1", Fallbacks: []string{"pr-0"}})
	if !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("want not found, got %v", err)
	}
}

// TestOpenRemoteInitialisesEmptyDir: the first push to an empty directory
// remote creates the repository with the local chunker parameters;
// without that option an empty remote is an error that says how to create
// one, and a directory that does not exist is one even for a push (a
// mistyped path must not become a new remote).
func TestOpenRemoteInitialisesEmptyDir(t *testing.T) {
	ctx := context.Background()
	a := newStore(t)
	dir := filepath.Join(t.TempDir(), "new", "remote")
	url := "file://" + dir
	var missing *remote.EmptyRemoteError
	if _, err := remote.OpenRemote(ctx, url, false, remote.InitIfEmpty(a.repo)); !errors.As(err, &missing) || !missing.Missing {
		t.Fatalf("a push to a missing directory: %v, want it refused as missing", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the refused push created the directory: %v", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.OpenRemote(ctx, url, false); err == nil {
		t.Fatal("opening an empty remote succeeded")
	}
	r, err := remote.OpenRemote(ctx, url, false, remote.InitIfEmpty(a.repo), remote.WithIndexCache(a.cache))
	if err != nil {
		t.Fatal(err)
	}
	if r.Config().Chunker != a.repo.Config().Chunker || r.Config().ID == a.repo.Config().ID {
		t.Fatalf("remote config %+v does not follow local %+v", r.Config(), a.repo.Config())
	}
	treetest.Write(t, a.data, map[string]treetest.Spec{"f": {Content: "x"}})
	a.save(t, "s")
	res, err := transfer.Push(ctx, a.repo, r, transfer.PushOptions{State: "s"})
	if err != nil || res.Requests == 0 {
		t.Fatalf("push: %+v %v", res, err)
	}
	noop, err := transfer.Push(ctx, a.repo, r, transfer.PushOptions{State: "s"})
	if err != nil || !noop.UpToDate || noop.Requests > 3 {
		t.Fatalf("no-op push took %d requests (want at most 3): %v", noop.Requests, err)
	}
}

// TestPullRefusesNonFastForward (invariant 6, the pull side): a local
// state that has versions the remote lacks is not replaced unless --force.
func TestPullRefusesNonFastForward(t *testing.T) { forEachRemote(t, testPullRefusesNonFastForward) }

func testPullRefusesNonFastForward(t *testing.T, newRemote func(*testing.T) *archive.Repository) {
	ctx := context.Background()
	a, b, rem := newStore(t), newStore(t), newRemote(t)
	treetest.Write(t, a.data, map[string]treetest.Spec{"f": {Content: "v0"}})
	a.savePush(t, rem, "s")
	if _, err := transfer.Pull(ctx, b.repo, rem, transfer.PullOptions{State: "s"}); err != nil {
		t.Fatal(err)
	}
	treetest.Write(t, b.data, map[string]treetest.Spec{"f": {Content: "b's own version"}})
	local := b.save(t, "s")
	treetest.Write(t, a.data, map[string]treetest.Spec{"f": {Content: "a's next version"}})
	pushed := a.savePush(t, rem, "s")
	_, err := transfer.Pull(ctx, b.repo, rem, transfer.PullOptions{State: "s"})
	if !errors.Is(err, transfer.ErrNotFastForward) {
		t.Fatalf("want not-fast-forward, got %v", err)
	}
	if head, _, _ := b.repo.ReadRef(ctx, "s"); head != local.Snapshot {
		t.Fatalf("a refused pull moved the local state to %s", head.Short())
	}
	if _, err := transfer.Pull(ctx, b.repo, rem, transfer.PullOptions{State: "s", Force: true}); err != nil {
		t.Fatalf("pull --force: %v", err)
	}
	if head, _, _ := b.repo.ReadRef(ctx, "s"); head != pushed.Snapshot {
		t.Fatalf("pull --force left the local state at %s, want %s", head.Short(), pushed.Snapshot.Short())
	}
}

// TestPushSkipsBlocksOfTheRemoteHead: the CI flow (pull, change, push
// from a fresh store) asks the remote's index only about blocks the
// remote's head does not hold; the head's blocks are there because a ref
// names it (invariant 1). To prove they are not looked up, the remote's
// index objects are hidden before the push: a push that asked the index
// would find nothing and send every block again.
func TestPushSkipsBlocksOfTheRemoteHead(t *testing.T) {
	ctx := context.Background()
	a, b, rem := newStore(t), newStore(t), dirRemote(t)
	treetest.Write(t, a.data, map[string]treetest.Spec{
		"db":                {Content: bigContent(5, 4<<20)},
		"dynamodb/local.db": {Content: treetest.SQLite(600, 3)}, // list blocks too
	})
	a.savePush(t, rem, "s")
	pulled, err := transfer.Pull(ctx, b.repo, rem, transfer.PullOptions{State: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := restorer.Restore(ctx, b.repo, restorer.Options{DataDir: b.data, Snapshot: pulled.Snapshot, CacheDir: b.cache}); err != nil {
		t.Fatal(err)
	}
	treetest.Write(t, b.data, map[string]treetest.Spec{"new": {Content: bigContent(6, 1<<20)}})
	saved := b.save(t, "s")

	dir, ok := backend.As[backend.Local](rem.Backend())
	if !ok {
		t.Fatal("not a directory remote")
	}
	index := filepath.Join(dir.Root(), "index")
	hidden := index + ".hidden"
	if err := os.Rename(index, hidden); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(index, 0o755); err != nil {
		t.Fatal(err)
	}
	res, err := transfer.Push(ctx, b.repo, rem, transfer.PushOptions{State: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Blocks != saved.NewBlocks || res.SkippedBlocks == 0 {
		t.Fatalf("push sent %d blocks and skipped %d; the save added %d", res.Blocks, res.SkippedBlocks, saved.NewBlocks)
	}
	// Put the index back (with the push's own object) and check the
	// remote: every block of the new head is there.
	entries, err := os.ReadDir(index)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.Rename(filepath.Join(index, e.Name()), filepath.Join(hidden, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(index); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(hidden, index); err != nil {
		t.Fatal(err)
	}
	fresh, err := archive.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := maintain.Verify(ctx, fresh, maintain.VerifyOptions{ReadData: true}); err != nil || !v.OK() {
		t.Fatalf("verify the remote: %v %+v", err, v)
	}
}

// packNames lists the packs of r.
func packNames(t *testing.T, r *archive.Repository) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	err := r.Backend().List(context.Background(), "packs/", func(oi backend.ObjectInfo) error {
		names[filepath.Base(oi.Name)] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestColdPullKeepsWholePacks: a cold pull stores every remote pack it
// wants whole as it came, under the same name, even into a store that
// would cut larger packs (the pusher's packs are 1 MiB, the puller's 16);
// a pack whose trailer is damaged (its blocks intact) is not kept: its
// blocks, verified one by one, go into a new pack. Either way the pulled
// store verifies and restores exactly.
func TestColdPullKeepsWholePacks(t *testing.T) { forEachRemote(t, testColdPullKeepsWholePacks) }

func testColdPullKeepsWholePacks(t *testing.T, newRemote func(*testing.T) *archive.Repository) {
	ctx := context.Background()
	a, rem := newStoreWith(t, 1<<20), newRemote(t)
	files := map[string]treetest.Spec{}
	for i := range 6 {
		files[filepath.Join("s3", "bucket", string(rune('a'+i)))] = treetest.Spec{Content: bigContent(byte(i), 1<<20)}
	}
	treetest.Write(t, a.data, files)
	want := treetest.MustRead(t, a.data)
	a.savePush(t, rem, "main")
	pushed := packNames(t, rem)
	if len(pushed) < 4 {
		t.Fatalf("%d packs pushed, want several", len(pushed))
	}
	for _, damage := range []bool{false, true} {
		b := newStore(t)
		if damage {
			damageTrailer(t, rem, pushed)
		}
		pres, err := transfer.Pull(ctx, b.repo, rem, transfer.PullOptions{State: "main"})
		if err != nil {
			t.Fatal(err)
		}
		if pulled := packNames(t, b.repo); !damage && !maps.Equal(pulled, pushed) {
			t.Errorf("pulled packs %v, want the remote's %v", pulled, pushed)
		}
		if v, err := maintain.Verify(ctx, b.repo, maintain.VerifyOptions{ReadData: true}); err != nil || !v.OK() {
			t.Fatalf("verify the pulled store (damaged trailer %v): %v %+v", damage, err, v)
		}
		if _, err := restorer.Restore(ctx, b.repo, restorer.Options{DataDir: b.data, Snapshot: pres.Snapshot, CacheDir: b.cache}); err != nil {
			t.Fatal(err)
		}
		treetest.AssertEqual(t, want, treetest.MustRead(t, b.data))
	}
}

// damageTrailer rewrites the trailer of one of r's packs (its last
// entry's encoding byte). The blocks are left intact, so a pull that
// verifies them block by block still succeeds.
func damageTrailer(t *testing.T, r *archive.Repository, packs map[string]bool) {
	t.Helper()
	ctx := context.Background()
	for name := range packs {
		obj := "packs/" + name[:2] + "/" + name
		rc, err := r.Backend().Get(ctx, obj)
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		data[len(data)-8-1] ^= 0x80 // the last entry's encoding: no longer a valid one
		if err := r.Backend().Put(ctx, obj, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatal("no pack to damage")
}
