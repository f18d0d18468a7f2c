package archive_test

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/remote"
)

// TestPushNeverTrustsADamagedLookupTable (invariant 1, end to end): the
// lookup table published on a remote is damaged so that its bytes claim
// a block the remote lacks. A client without a cache of its own pushes a
// version holding that block: it must find the damage, fall back to the
// index and send the block, so that the remote's snapshot is complete.
// The control forges the same claim with hashes that match: push then
// skips the block, which shows the test would catch a push that trusted
// the damage.
func TestPushNeverTrustsADamagedLookupTable(t *testing.T) {
	for _, tc := range []struct {
		name     string
		stale    bool
		complete bool
	}{
		{"damaged", true, true},
		{"control: forged with matching hashes", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			root := t.TempDir()
			be, err := archive.NewDirBackend(filepath.Join(root, "store"), true)
			if err != nil {
				t.Fatal(err)
			}
			local, err := archive.OpenOrInit(ctx, be)
			if err != nil {
				t.Fatal(err)
			}
			url := "file://" + filepath.Join(root, "remote")
			open := func(cache string) *archive.Repository {
				t.Helper()
				r, err := remote.OpenRemote(ctx, url, false, remote.InitIfEmpty(local), remote.WithIndexCache(cache))
				if err != nil {
					t.Fatal(err)
				}
				r.SetLookupTableMin(1)
				return r
			}
			data := filepath.Join(root, "data")
			rem := open(filepath.Join(root, "cache-a"))
			rng := rand.NewChaCha8([32]byte{12})
			version := func(file string) []archive.ID {
				t.Helper()
				b := make([]byte, 300<<10)
				_, _ = rng.Read(b)
				if err := os.MkdirAll(data, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(data, file), b, 0o644); err != nil {
					t.Fatal(err)
				}
				res, err := local.Save(ctx, archive.SaveOptions{DataDir: data, State: "s"})
				if err != nil {
					t.Fatal(err)
				}
				m, err := local.LoadManifest(ctx, res.Snapshot)
				if err != nil {
					t.Fatal(err)
				}
				var ids []archive.ID
				for _, e := range m.Entries {
					if e.Path == file {
						for _, b := range e.Blocks {
							ids = append(ids, b.ID)
						}
					}
				}
				return ids
			}
			push := func(r *archive.Repository) *remote.SyncResult {
				t.Helper()
				res, err := remote.Push(ctx, local, r, remote.PushOptions{State: "s"})
				if err != nil {
					t.Fatal(err)
				}
				return res
			}
			v1 := version("a")
			push(rem)
			version("b")
			push(rem)
			// Client a's cache now covers the whole index: it publishes.
			if _, err := rem.FindBlocks(ctx, map[archive.ID]struct{}{{}: {}}); err != nil {
				t.Fatal(err)
			}
			if ok, err := rem.PublishLookupTable(ctx); !ok || err != nil {
				t.Fatalf("publish: %v %v", ok, err)
			}
			claim := version("c")[0]
			archive.ForgeLookupTableClaim(t, rem, claim, v1[0], tc.stale)

			cold := open(filepath.Join(root, "cache-b"))
			res := push(cold)
			if tc.complete && res.Blocks == 0 {
				t.Fatalf("the cold push sent nothing: %+v", res)
			}
			plain, err := archive.Open(ctx, rem.Backend())
			if err != nil {
				t.Fatal(err)
			}
			found, err := plain.FindBlocks(ctx, map[archive.ID]struct{}{claim: {}})
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := found[claim]; ok != tc.complete {
				t.Fatalf("block %s on the remote after the push: %v, want %v", claim.Short(), ok, tc.complete)
			}
			if tc.complete {
				// The client that found the damage had to read the index
				// into a cache, and noted the damage: it publishes a
				// sound table in its place (at once on a large remote;
				// here, this push's index object is a large share of
				// the remote, so once its cache has merged it).
				if !res.LookupPublished {
					if _, err := cold.FindBlocks(ctx, map[archive.ID]struct{}{{}: {}}); err != nil {
						t.Fatal(err)
					}
					if ok, err := cold.PublishLookupTable(ctx); !ok || err != nil {
						t.Fatalf("the damaged table was not replaced: %v %v", ok, err)
					}
				}
				if tables := archive.LookupTables(t, rem); len(tables) != 1 {
					t.Errorf("tables after the replacement: %v", tables)
				}
			}
		})
	}
}
