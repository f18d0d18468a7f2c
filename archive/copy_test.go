package archive_test

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/maintain"
	"github.com/statepack/statepack/internal/treetest"
)

// copyTestTree is a tree with a large file (list blocks), a SQLite file and
// small ones.
func copyTestTree(t *testing.T) (string, treetest.Tree) {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 3))
	big := make([]byte, 3<<20)
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	dir := filepath.Join(t.TempDir(), "data")
	treetest.Write(t, dir, map[string]treetest.Spec{
		"big.bin":  {Content: string(big)},
		"db":       {Content: treetest.SQLite(200, 5)},
		"a/b/c.js": {Content: strings.Repeat("state ", 1000)},
		"empty":    {},
	})
	return dir, treetest.MustRead(t, dir)
}

// TestCopy: Copy moves a snapshot between repositories either way round
// (the source as the local store, as push has it, or the destination, as
// pull has it); the copy verifies, restores exactly, and a second copy
// moves nothing. The Receive hook sees the snapshot's lists before the
// other blocks and then every block copied, verified.
func TestCopy(t *testing.T) {
	ctx := context.Background()
	for name, local := range map[string]archive.Side{"src": archive.SrcLocal, "dst": archive.DstLocal} {
		t.Run(name, func(t *testing.T) {
			src, srcCache := testRepo(t)
			dst, dstCache := testRepo(t)
			dir, want := copyTestTree(t)
			id := save(t, src, srcCache, dir, "s").Snapshot
			var hooked bool
			var received int64
			o := archive.CopyOptions{Local: local, Jobs: 2, Receive: func(_ context.Context, m *format.Manifest, lists *format.BlockLists) (func(format.ID, []byte), error) {
				if m.State != "s" || lists == nil {
					t.Errorf("Receive got state %q, lists %v", m.State, lists)
				}
				hooked = true
				return func(id format.ID, raw []byte) {
					if format.Hash(raw) != id {
						t.Errorf("block %s handed over unverified", id.Short())
					}
					received++
				}, nil
			}}
			res, err := archive.Copy(ctx, src, dst, id, o)
			if err != nil {
				t.Fatal(err)
			}
			if !hooked || res.Blocks == 0 || res.Packs == 0 || received == 0 || received > res.Blocks {
				t.Errorf("copy %+v, hook called %v, %d blocks received", res, hooked, received)
			}
			if v, err := maintain.Verify(ctx, dst, maintain.VerifyOptions{ReadData: true}); err != nil || !v.OK() {
				t.Fatalf("verify the copy: %v %+v", err, v)
			}
			out := filepath.Join(t.TempDir(), "out")
			restore(t, dst, dstCache, out, id)
			treetest.AssertEqual(t, want, treetest.MustRead(t, out))

			again, err := archive.Copy(ctx, src, dst, id, archive.CopyOptions{Local: local})
			if err != nil {
				t.Fatal(err)
			}
			if again.Blocks != 0 || again.SkippedBlocks == 0 {
				t.Errorf("second copy %+v, want every block skipped", again)
			}
		})
	}
}

// TestCopyIncompleteSource: a block the local source's index lacks fails
// the copy, naming it, before the destination gets the manifest.
func TestCopyIncompleteSource(t *testing.T) {
	ctx := context.Background()
	src, srcCache := testRepo(t)
	dst, _ := testRepo(t)
	dir := filepath.Join(t.TempDir(), "data")
	treetest.Write(t, dir, map[string]treetest.Spec{"f": {Content: strings.Repeat("x", 100<<10)}, "g": {Content: "small"}})
	id := save(t, src, srcCache, dir, "s").Snapshot
	empty, _ := testRepo(t) // the same snapshot's manifest, none of its blocks
	data, err := src.LoadManifestBytes(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := empty.PutManifestBytes(ctx, data); err != nil {
		t.Fatal(err)
	}
	if _, err := archive.Copy(ctx, empty, dst, id, archive.CopyOptions{Local: archive.SrcLocal}); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Fatalf("copy of a snapshot whose blocks are missing: %v", err)
	}
	if dst.HasSnapshot(ctx, id) {
		t.Error("the destination got the manifest of a copy that failed")
	}
}
