package maintain_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/statepack/statepack/archive/maintain"
	"github.com/statepack/statepack/internal/treetest"
)

// TestPruneLeavesLivePacks: a store whose packs hold only live blocks,
// small ones whose trailer entries outweigh them included, is left as it
// is by prune, run after run: nothing repacked, nothing written, and the
// index still finds every block. After a version is forgotten, the pack
// that holds its blocks is repacked once, and then no more.
func TestPruneLeavesLivePacks(t *testing.T) {
	ctx := context.Background()
	r, cache := testRepo(t)
	dir := filepath.Join(t.TempDir(), "data")
	files := map[string]treetest.Spec{}
	for i := range 40 {
		files[fmt.Sprintf("tiny/%d", i)] = treetest.Spec{Content: fmt.Sprint(i)}
	}
	treetest.Write(t, dir, files)
	save(t, r, cache, dir, "s")
	for run := range 2 {
		res, err := maintain.Prune(ctx, r, maintain.PruneOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.PacksRepacked != 0 || res.PacksWritten != 0 || res.BytesFreed != 0 {
			t.Errorf("prune %d of a store with nothing to free: %+v", run+1, res)
		}
	}
	files["tiny/0"] = treetest.Spec{Content: "changed"}
	treetest.Write(t, dir, files)
	save(t, r, cache, dir, "s")
	if _, err := maintain.Forget(ctx, r, "s", maintain.ForgetOptions{KeepLast: 1}); err != nil {
		t.Fatal(err)
	}
	first, err := maintain.Prune(ctx, r, maintain.PruneOptions{RepackBelow: 0.99})
	if err != nil {
		t.Fatal(err)
	}
	again, err := maintain.Prune(ctx, r, maintain.PruneOptions{RepackBelow: 0.99})
	if err != nil {
		t.Fatal(err)
	}
	if first.PacksRepacked == 0 || again.PacksRepacked != 0 || again.PacksWritten != 0 {
		t.Errorf("prune after forget: %+v, then %+v; want one repack, then none", first, again)
	}
	if v, err := maintain.Verify(ctx, r, maintain.VerifyOptions{ReadData: true}); err != nil || !v.OK() {
		t.Fatalf("verify after prunes: %v %+v", err, v)
	}
}
