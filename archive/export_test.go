package archive

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/statepack/statepack/archive/format"
)

// RemoveAllLocks clears locks a simulated crash left behind.
func RemoveAllLocks(t interface{ Fatal(...any) }, r *Repository) {
	if _, err := r.RemoveLocks(context.Background(), true); err != nil {
		t.Fatal(err)
	}
}

// ForgeLookupClaim rewrites the lookup cache in dir so that it also
// claims block claim, at the location of block like; with stale, the
// claim's bucket keeps its old hash, as bytes damaged in place would.
func ForgeLookupClaim(t *testing.T, dir string, cfg format.Config, claim, like format.ID, stale bool) {
	forgeClaim(t, dir, RepoKey(cfg), claim, like, stale)
}

// ForgeLookupTableClaim replaces the lookup table on r (which must hold
// exactly one) with one that also claims block claim at the location of
// block like; with stale, the claim's bucket keeps its old hash, as bytes
// damaged in place would, while the tables hash and the name match.
func ForgeLookupTableClaim(t *testing.T, r *Repository, claim, like format.ID, stale bool) {
	t.Helper()
	ctx := context.Background()
	tables, _, err := r.ListLookupTables(ctx)
	if err != nil || len(tables) != 1 {
		t.Fatalf("lookup tables on %s: %v %v", r.Location(), tables, err)
	}
	name := LookupTableName(tables[0].ID)
	data, err := r.ReadRange(ctx, name, 0, tables[0].size)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, LookupName), data, 0o644); err != nil {
		t.Fatal(err)
	}
	forgeClaim(t, dir, RepoKey(r.cfg), claim, like, stale)
	forged, err := os.ReadFile(filepath.Join(dir, LookupName))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.be.Delete(ctx, name); err != nil {
		t.Fatal(err)
	}
	id := format.ID(forged[lookupHashed:LookupHeaderSize])
	if err := r.be.Put(ctx, LookupTableName(id), bytes.NewReader(forged), int64(len(forged))); err != nil {
		t.Fatal(err)
	}
}

// LookupTables lists the lookup tables on r.
func LookupTables(t *testing.T, r *Repository) []format.ID {
	t.Helper()
	tables, _, err := r.ListLookupTables(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []format.ID
	for _, tb := range tables {
		ids = append(ids, tb.ID)
	}
	return ids
}

// BlockEncoderOptions are the save pipeline's zstd options for blocks of
// at most maxBlock bytes.
func BlockEncoderOptions(maxBlock int) []zstd.EOption { return blockEncoderOptions(maxBlock) }
