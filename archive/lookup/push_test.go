package lookup_test

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/lookup"
	"github.com/statepack/statepack/archive/maintain"
	"github.com/statepack/statepack/archive/saver"
	"github.com/statepack/statepack/archive/transfer"
	"github.com/statepack/statepack/remote"
	"github.com/statepack/statepack/remote/backend"
	"github.com/statepack/statepack/remote/dirbackend"
)

// pushWorld is a local store with a DATA_DIR that grows a file per
// version, and a directory remote it pushes to: the setting of the
// end-to-end tests that damage a remote's lookup cache or table.
type pushWorld struct {
	t     *testing.T
	ctx   context.Context
	root  string
	local *archive.Repository
	data  string
	rng   *rand.ChaCha8
}

func newPushWorld(t *testing.T, seed byte) *pushWorld {
	t.Helper()
	root := t.TempDir()
	be, err := dirbackend.New(filepath.Join(root, "store"), true)
	if err != nil {
		t.Fatal(err)
	}
	local, err := archive.OpenOrInit(context.Background(), be)
	if err != nil {
		t.Fatal(err)
	}
	return &pushWorld{t: t, ctx: context.Background(), root: root, local: local,
		data: filepath.Join(root, "data"), rng: rand.NewChaCha8([32]byte{seed})}
}

// open opens the remote with its lookup cache in cache; tables are used
// and published at any size.
func (w *pushWorld) open(cache string) *archive.Repository {
	w.t.Helper()
	if err := os.MkdirAll(filepath.Join(w.root, "remote"), 0o755); err != nil { // empty: the push creates the remote in it
		w.t.Fatal(err)
	}
	r, err := remote.OpenRemote(w.ctx, "file://"+filepath.Join(w.root, "remote"), false, remote.InitIfEmpty(w.local), remote.WithIndexCache(cache))
	if err != nil {
		w.t.Fatal(err)
	}
	r.SetLookupTableMin(1)
	return r
}

// version adds a file of 300 KiB of random bytes, saves the state "s" and
// returns the file's blocks.
func (w *pushWorld) version(file string) []format.ID {
	w.t.Helper()
	b := make([]byte, 300<<10)
	_, _ = w.rng.Read(b)
	if err := os.MkdirAll(w.data, 0o755); err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.data, file), b, 0o644); err != nil {
		w.t.Fatal(err)
	}
	res, err := saver.Save(w.ctx, w.local, saver.Options{DataDir: w.data, State: "s"})
	if err != nil {
		w.t.Fatal(err)
	}
	m, err := w.local.LoadManifest(w.ctx, res.Snapshot)
	if err != nil {
		w.t.Fatal(err)
	}
	var ids []format.ID
	for _, e := range m.Entries {
		if e.Path == file {
			for _, b := range e.Blocks {
				ids = append(ids, b.ID)
			}
		}
	}
	return ids
}

func (w *pushWorld) push(r *archive.Repository) *transfer.Result {
	w.t.Helper()
	res, err := transfer.Push(w.ctx, w.local, r, transfer.PushOptions{State: "s"})
	if err != nil {
		w.t.Fatal(err)
	}
	return res
}

// publishTable pushes two versions (files a and b) and publishes the
// cache they built as the remote's lookup table; it returns a's blocks.
func (w *pushWorld) publishTable(rem *archive.Repository) []format.ID {
	w.t.Helper()
	v1 := w.version("a")
	w.push(rem)
	w.version("b")
	w.push(rem)
	// The cache now covers the whole index: it publishes.
	if _, err := rem.FindBlocks(w.ctx, map[format.ID]struct{}{{}: {}}); err != nil {
		w.t.Fatal(err)
	}
	if ok, err := rem.PublishLookupTable(w.ctx); !ok || err != nil {
		w.t.Fatalf("publish: %v %v", ok, err)
	}
	return v1
}

// has reports whether the remote's index, read without any cache or
// table, holds block id.
func (w *pushWorld) has(r *archive.Repository, id format.ID) bool {
	w.t.Helper()
	plain, err := archive.Open(w.ctx, r.Backend())
	if err != nil {
		w.t.Fatal(err)
	}
	found, err := plain.FindBlocks(w.ctx, map[format.ID]struct{}{id: {}})
	if err != nil {
		w.t.Fatal(err)
	}
	_, ok := found[id]
	return ok
}

// damageCases: the damaged copy claims a block the remote lacks, with a
// checksum that no longer matches; the control forges the same claim with
// hashes that match, and push then skips the block, which shows the test
// would catch a push that trusted the damage.
var damageCases = []struct {
	name     string
	stale    bool
	complete bool
}{
	{"damaged", true, true},
	{"control: forged with matching hashes", false, false},
}

// TestPushNeverTrustsADamagedLookupCache (invariant 1, end to end): the
// lookup cache of a remote is damaged so that its bytes claim a block the
// remote lacks. Push must find the damage, rebuild the cache and send the
// block, so that the remote's snapshot is complete.
func TestPushNeverTrustsADamagedLookupCache(t *testing.T) {
	for _, tc := range damageCases {
		t.Run(tc.name, func(t *testing.T) {
			w := newPushWorld(t, 11)
			cache := filepath.Join(w.root, "store", "cache")
			rem := w.open(cache)
			rem.SetLookupTableMin(1 << 40) // the cache alone, no table
			v1 := w.version("a")
			w.push(rem)
			w.version("b")
			w.push(rem) // finds v1's index: builds the cache
			claim := w.version("c")[0]
			dirs, _ := filepath.Glob(filepath.Join(cache, "remote-*"))
			if len(dirs) != 1 {
				t.Fatalf("remote cache directories: %v", dirs)
			}
			lookup.ForgeLookupClaim(t, dirs[0], rem.Config(), claim, v1[0], tc.stale)
			w.push(rem)
			if ok := w.has(rem, claim); ok != tc.complete {
				t.Fatalf("block %s on the remote after the push: %v, want %v", claim.Short(), ok, tc.complete)
			}
		})
	}
}

// TestPushNeverTrustsADamagedLookupTable (invariant 1, end to end): the
// lookup table published on a remote is damaged so that its bytes claim
// a block the remote lacks. A client without a cache of its own pushes a
// version holding that block: it must find the damage, fall back to the
// index and send the block, so that the remote's snapshot is complete.
func TestPushNeverTrustsADamagedLookupTable(t *testing.T) {
	for _, tc := range damageCases {
		t.Run(tc.name, func(t *testing.T) {
			w := newPushWorld(t, 12)
			rem := w.open(filepath.Join(w.root, "cache-a"))
			v1 := w.publishTable(rem)
			claim := w.version("c")[0]
			lookup.ForgeLookupTableClaim(t, rem, claim, v1[0], tc.stale)

			cold := w.open(filepath.Join(w.root, "cache-b"))
			res := w.push(cold)
			if tc.complete && res.Blocks == 0 {
				t.Fatalf("the cold push sent nothing: %+v", res)
			}
			if ok := w.has(rem, claim); ok != tc.complete {
				t.Fatalf("block %s on the remote after the push: %v, want %v", claim.Short(), ok, tc.complete)
			}
			if !tc.complete {
				return
			}
			// The client that found the damage had to read the index
			// into a cache, and noted the damage: it publishes a sound
			// table in its place (at once on a large remote; here, this
			// push's index object is a large share of the remote, so
			// once its cache has merged it).
			if !res.LookupPublished {
				if _, err := cold.FindBlocks(w.ctx, map[format.ID]struct{}{{}: {}}); err != nil {
					t.Fatal(err)
				}
				if ok, err := cold.PublishLookupTable(w.ctx); !ok || err != nil {
					t.Fatalf("the damaged table was not replaced: %v %v", ok, err)
				}
			}
			if tables := lookup.LookupTables(t, rem); len(tables) != 1 {
				t.Errorf("tables after the replacement: %v", tables)
			}
		})
	}
}

// TestVerifyChecksLookupTables: verify checks a remote's lookup table and
// its filter against their hashes, reports a damaged one by name (it is
// only an accelerator, so the snapshots stay sound), and verify --repair
// drops it.
func TestVerifyChecksLookupTables(t *testing.T) {
	table := func(id format.ID) string { return "lookup/" + id.String() }
	for _, tc := range []struct {
		name    string
		object  func(id format.ID) string
		at      func(size int) int // the byte damaged
		reached bool               // whether verify reads it
	}{
		{"a bucket", table, func(n int) int { return n - 1 }, false}, // readers check buckets, verify does not
		{"the table's tables", table, func(int) int { return 100 }, true},
		{"the filter", func(id format.ID) string { return table(id) + ".filter" }, func(n int) int { return n / 2 }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newPushWorld(t, 13)
			rem := w.open(filepath.Join(w.root, "cache-a"))
			w.publishTable(rem)
			if v, err := maintain.Verify(w.ctx, rem, maintain.VerifyOptions{}); err != nil || !v.OK() {
				t.Fatalf("verify with a sound table: %v %+v", err, v)
			}
			tables := lookup.LookupTables(t, rem)
			name := tc.object(tables[0])
			dir, _ := backend.As[backend.Local](rem.Backend())
			p := filepath.Join(dir.Root(), filepath.FromSlash(name))
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			data[tc.at(len(data))] ^= 0x20
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			v, err := maintain.Verify(w.ctx, rem, maintain.VerifyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !tc.reached {
				if !v.OK() {
					t.Fatalf("verify read the buckets: %+v", v.Problems)
				}
				return
			}
			if v.OK() || v.Problems[0].Object != name {
				t.Fatalf("verify of a damaged %s: %+v", tc.name, v.Problems)
			}
			if _, err := maintain.Repair(w.ctx, rem, nil, 0); err != nil {
				t.Fatal(err)
			}
			if left := lookup.LookupTables(t, rem); len(left) != 0 {
				t.Fatalf("tables after repair: %v", left)
			}
			if v, err := maintain.Verify(w.ctx, rem, maintain.VerifyOptions{}); err != nil || !v.OK() {
				t.Fatalf("verify after repair: %v %+v", err, v)
			}
		})
	}
}
