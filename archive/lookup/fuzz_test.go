package lookup

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/chunker"
	"github.com/statepack/statepack/remote/dirbackend"
)

// bytesFile is a lookup file held in memory.
type bytesFile struct{ *bytes.Reader }

// ReadAt reads as a file does: an empty read at the end is no error.
func (b bytesFile) ReadAt(p []byte, off int64) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return b.Reader.ReadAt(p, off)
}

func (bytesFile) Close() error { return nil }

// seedLookupFile builds a real lookup cache file of a small index and
// returns its bytes and the key of its repository.
func seedLookupFile(f *testing.F) ([]byte, format.ID) {
	f.Helper()
	ctx := context.Background()
	be, err := dirbackend.New(filepath.Join(f.TempDir(), "repo"), true)
	if err != nil {
		f.Fatal(err)
	}
	cfg, err := format.NewConfig(chunker.DefaultParams(), 0)
	if err != nil {
		f.Fatal(err)
	}
	r, err := Init(ctx, be, cfg)
	if err != nil {
		f.Fatal(err)
	}
	var packs []format.IndexPack
	for p := range 3 {
		var entries []format.PackEntry
		for i := range 5 {
			entries = append(entries, format.PackEntry{ID: format.Hash([]byte{byte(p), byte(i)}), Offset: uint32(i) * 9, Stored: 9, Raw: 20, Encoding: format.EncodingZstd})
		}
		packs = append(packs, format.IndexPack{Pack: format.Hash([]byte{byte(p)}), Entries: entries})
	}
	index := format.EncodeIndex(packs)
	if err := be.Put(ctx, format.IndexName(format.Hash(index)), bytes.NewReader(index), int64(len(index))); err != nil {
		f.Fatal(err)
	}
	r2, err := Open(ctx, r.Backend())
	if err != nil {
		f.Fatal(err)
	}
	dir := filepath.Join(f.TempDir(), "cache")
	r2.UseLookupCache(dir)
	if _, err := r2.FindBlocks(ctx, map[format.ID]struct{}{packs[0].Entries[0].ID: {}}); err != nil {
		f.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, lookupName))
	if err != nil {
		f.Fatal(err)
	}
	return data, repoKey(r.Config())
}

// fuzzBounds are a repository's bounds for a table of size bytes: a
// listing whose index holds as much.
func fuzzBounds(size int) lookupBounds { return tableBounds(8, int64(size)) }

// FuzzLookupTable: whatever a lookup table on a repository holds, opening
// it and looking ids up either fails or answers, without panicking or
// allocating past what its size and bounds allow.
func FuzzLookupTable(f *testing.F) {
	seed, repo := seedLookupFile(f)
	f.Add(seed)
	f.Add(seed[:lookupHeaderSize])
	f.Add([]byte(lookupMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := readLookup(bytesFile{bytes.NewReader(data)}, int64(len(data)), "fuzz", repo, fuzzBounds(len(data)))
		if err != nil {
			return
		}
		want := map[format.ID]struct{}{format.Hash([]byte{0, 0}): {}, format.Hash([]byte("absent")): {}}
		_ = c.find(want, map[format.ID]format.Location{})
		c.Covers([]IndexObject{{ID: c.object(0)}})
	})
}

// FuzzLookupFilter: whatever a filter holds, decoding it against its
// table either fails or gives a filter that answers for any id.
func FuzzLookupFilter(f *testing.F) {
	table, repo := seedLookupFile(f)
	c, err := readLookup(bytesFile{bytes.NewReader(table)}, int64(len(table)), "seed", repo, fuzzBounds(len(table)))
	if err != nil {
		f.Fatal(err)
	}
	filter, err := buildLookupFilter(c)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(filter)
	f.Add(filter[:lookupFilterHeader+32])
	f.Add([]byte(lookupFilterMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		if int64(len(data)) > maxFilterSize(c) {
			return // refused by size before decoding (checkLookupFilter)
		}
		lf, err := decodeLookupFilter(data, c)
		if err != nil {
			return
		}
		for _, id := range []format.ID{format.Hash([]byte{0, 0}), format.Hash([]byte("absent"))} {
			lf.mayHold(id)
		}
	})
}
