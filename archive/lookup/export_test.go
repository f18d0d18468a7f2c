package lookup

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/remote/backend"
)

// The layout of a lookup file, for the external tests that forge one.
const (
	LookupMagic       = lookupMagic
	LookupHeaderSize  = lookupHeaderSize
	LookupHashed      = lookupHashed
	LookupFanoutSize  = lookupFanoutSize
	MaxLookupTableIDs = maxLookupTableIDs
)

// RepoKey is the key a lookup file of the repository with cfg carries.
func RepoKey(cfg format.Config) format.ID { return repoKey(cfg) }

// repository is what the helpers below need of an archive.Repository,
// which this package cannot name.
type repository interface {
	Backend() backend.Backend
	Config() format.Config
}

// ForgeLookupClaim rewrites the lookup cache in dir so that it also
// claims block claim, at the location of block like; with stale, the
// claim's bucket keeps its old hash, as bytes damaged in place would.
func ForgeLookupClaim(t *testing.T, dir string, cfg format.Config, claim, like format.ID, stale bool) {
	forgeClaim(t, dir, repoKey(cfg), claim, like, stale)
}

// ForgeLookupTableClaim replaces the lookup table on r (which must hold
// exactly one) with one that also claims block claim at the location of
// block like; with stale, the claim's bucket keeps its old hash, as bytes
// damaged in place would, while the tables hash and the name match.
func ForgeLookupTableClaim(t *testing.T, r repository, claim, like format.ID, stale bool) {
	t.Helper()
	ctx := context.Background()
	be := r.Backend()
	tables, _, err := NewFinder(be, r.Config(), nil).ListLookupTables(ctx)
	if err != nil || len(tables) != 1 {
		t.Fatalf("lookup tables on %s: %v %v", be.Location(), tables, err)
	}
	name := TableName(tables[0].ID)
	rc, err := be.GetRange(ctx, name, 0, tables[0].Size)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, lookupName), data, 0o644); err != nil {
		t.Fatal(err)
	}
	forgeClaim(t, dir, repoKey(r.Config()), claim, like, stale)
	forged, err := os.ReadFile(filepath.Join(dir, lookupName))
	if err != nil {
		t.Fatal(err)
	}
	if err := be.Delete(ctx, name); err != nil {
		t.Fatal(err)
	}
	id := format.ID(forged[lookupHashed:lookupHeaderSize])
	if err := be.Put(ctx, TableName(id), bytes.NewReader(forged), int64(len(forged))); err != nil {
		t.Fatal(err)
	}
}

// LookupTables lists the lookup tables on r.
func LookupTables(t *testing.T, r repository) []format.ID {
	t.Helper()
	tables, _, err := NewFinder(r.Backend(), r.Config(), nil).ListLookupTables(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []format.ID
	for _, tb := range tables {
		ids = append(ids, tb.ID)
	}
	return ids
}
