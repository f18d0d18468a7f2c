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

// TestPushNeverTrustsADamagedLookupCache (invariant 1, end to end): the
// lookup cache of a remote is damaged so that its bytes claim a block
// the remote lacks. Push must find the damage, rebuild the cache and
// send the block, so that the remote's snapshot is complete. The control
// forges the same claim with hashes that match: push then skips the
// block, which shows the test would catch a push that trusted the damage.
func TestPushNeverTrustsADamagedLookupCache(t *testing.T) {
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
			data, cache := filepath.Join(root, "data"), filepath.Join(root, "store", "cache")
			rem, err := remote.OpenRemote(ctx, "file://"+filepath.Join(root, "remote"), false, remote.InitIfEmpty(local), remote.WithIndexCache(cache))
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.NewChaCha8([32]byte{11})
			version := func(file string) *archive.Manifest {
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
				return m
			}
			blocksOf := func(m *archive.Manifest, path string) []archive.ID {
				var ids []archive.ID
				for _, e := range m.Entries {
					if e.Path == path {
						for _, b := range e.Blocks {
							ids = append(ids, b.ID)
						}
					}
				}
				return ids
			}
			push := func() *remote.SyncResult {
				t.Helper()
				res, err := remote.Push(ctx, local, rem, remote.PushOptions{State: "s"})
				if err != nil {
					t.Fatal(err)
				}
				return res
			}
			v1 := version("a")
			push()
			version("b")
			push() // finds v1's index: builds the cache
			v3 := version("c")
			dirs, _ := filepath.Glob(filepath.Join(cache, "remote-*"))
			if len(dirs) != 1 {
				t.Fatalf("remote cache directories: %v", dirs)
			}
			claim := blocksOf(v3, "c")[0]
			archive.ForgeLookupClaim(t, dirs[0], rem.Config(), claim, blocksOf(v1, "a")[0], tc.stale)
			push()

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
		})
	}
}
