package archive

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func zstdEncoderForTest(data []byte) []byte {
	enc, _ := zstd.NewWriter(nil)
	defer enc.Close()
	return enc.EncodeAll(data, nil)
}

// RemoveAllLocks clears locks a simulated crash left behind.
func RemoveAllLocks(t interface{ Fatal(...any) }, r *Repository) {
	if _, err := r.RemoveLocks(context.Background(), true); err != nil {
		t.Fatal(err)
	}
}

// ForgeLookupClaim rewrites the lookup cache in dir so that it also
// claims block claim, at the location of block like; with stale, the
// claim's bucket keeps its old hash, as bytes damaged in place would.
func ForgeLookupClaim(t *testing.T, dir string, cfg Config, claim, like ID, stale bool) {
	forgeClaim(t, dir, repoKey(cfg), claim, like, stale)
}

// ForgeLookupTableClaim replaces the lookup table on r (which must hold
// exactly one) with one that also claims block claim at the location of
// block like; with stale, the claim's bucket keeps its old hash, as bytes
// damaged in place would, while the tables hash and the name match.
func ForgeLookupTableClaim(t *testing.T, r *Repository, claim, like ID, stale bool) {
	t.Helper()
	ctx := context.Background()
	tables, _, err := r.listLookupTables(ctx)
	if err != nil || len(tables) != 1 {
		t.Fatalf("lookup tables on %s: %v %v", r.Location(), tables, err)
	}
	name := lookupTableName(tables[0].id)
	data, err := r.ReadRange(ctx, name, 0, tables[0].size)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, lookupName), data, 0o644); err != nil {
		t.Fatal(err)
	}
	forgeClaim(t, dir, repoKey(r.cfg), claim, like, stale)
	forged, err := os.ReadFile(filepath.Join(dir, lookupName))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.be.Delete(ctx, name); err != nil {
		t.Fatal(err)
	}
	id := ID(forged[lookupHashed:lookupHeaderSize])
	if err := r.be.Put(ctx, lookupTableName(id), bytes.NewReader(forged), int64(len(forged))); err != nil {
		t.Fatal(err)
	}
}

// LookupTables lists the lookup tables on r.
func LookupTables(t *testing.T, r *Repository) []ID {
	t.Helper()
	tables, _, err := r.listLookupTables(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []ID
	for _, tb := range tables {
		ids = append(ids, tb.id)
	}
	return ids
}

// BlockEncoderOptions are the save pipeline's zstd options for blocks of
// at most maxBlock bytes.
func BlockEncoderOptions(maxBlock int) []zstd.EOption { return blockEncoderOptions(maxBlock) }
