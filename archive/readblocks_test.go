package archive_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/statepack/statepack/archive"
)

// testPack stores a pack of n random raw blocks in r and returns its id,
// its blocks as the index locates them, and their contents.
func testPack(t *testing.T, r *archive.Repository, n int, seed uint64) (archive.ID, []archive.BlockAt, [][]byte) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	p := archive.NewPackBuilder(1 << 20)
	var contents [][]byte
	for range n {
		raw := make([]byte, 1000+rng.IntN(3000))
		for i := range raw {
			raw[i] = byte(rng.Uint32())
		}
		p.Add(archive.Hash(raw), raw, len(raw), archive.EncodingRaw)
		contents = append(contents, raw)
	}
	id, data, entries := p.Finish()
	if err := r.PutPack(context.Background(), id, data); err != nil {
		t.Fatal(err)
	}
	blocks := make([]archive.BlockAt, len(entries))
	for i, e := range entries {
		blocks[i] = archive.BlockAt{ID: e.ID, Loc: archive.Location{Pack: id, Offset: e.Offset, Stored: e.Stored, Raw: e.Raw, Encoding: e.Encoding}}
	}
	return id, blocks, contents
}

// TestReadPackFrom: a pack wanted whole is handed over as it is only when
// it, its trailer and every block in it check; blocks that lie from the
// start of a larger pack are read in the same request and verified; other
// layouts, and packs shorter than their blocks, are left to
// ReadPackBlocks; a block that does not match its id is an error.
func TestReadPackFrom(t *testing.T) {
	for _, tc := range []struct {
		name   string
		blocks func(b []archive.BlockAt) []archive.BlockAt
		done   bool // ReadPackFrom read the blocks
		whole  bool // and kept the pack
		fails  bool // with an error matching archive.ErrCorrupt
	}{
		{name: "the whole pack", blocks: func(b []archive.BlockAt) []archive.BlockAt { return b }, done: true, whole: true},
		{name: "the start of a larger pack", blocks: func(b []archive.BlockAt) []archive.BlockAt { return b[:3] }, done: true},
		{name: "not from the start", blocks: func(b []archive.BlockAt) []archive.BlockAt { return b[1:] }},
		{name: "a gap", blocks: func(b []archive.BlockAt) []archive.BlockAt { return []archive.BlockAt{b[0], b[2]} }},
		{name: "longer than the pack", blocks: func(b []archive.BlockAt) []archive.BlockAt {
			b = append([]archive.BlockAt(nil), b...)
			b[len(b)-1].Loc.Stored += 1 << 20
			b[len(b)-1].Loc.Raw += 1 << 20
			return b
		}},
		{name: "the index names another block", done: true, fails: true, blocks: func(b []archive.BlockAt) []archive.BlockAt {
			b = append([]archive.BlockAt(nil), b...)
			b[2].ID = archive.Hash([]byte("another block"))
			return b
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := testRepo(t)
			pack, all, contents := testPack(t, r, 5, 1)
			want := tc.blocks(all)
			var got [][]byte
			var kept []byte
			var wholes int
			done, err := r.ReadPackFrom(context.Background(), pack, want, func(b archive.BlockAt, stored, raw []byte, whole bool) error {
				got = append(got, bytes.Clone(raw))
				if whole {
					wholes++
				}
				return nil
			}, func(data []byte, entries []archive.PackEntry) error {
				kept = bytes.Clone(data)
				if len(entries) != len(all) {
					t.Errorf("%d entries kept, want %d", len(entries), len(all))
				}
				return nil
			})
			if done != tc.done || (err != nil) != tc.fails || (tc.fails && !errors.Is(err, archive.ErrCorrupt)) {
				t.Fatalf("done %v, err %v; want done %v, failing %v", done, err, tc.done, tc.fails)
			}
			if tc.fails {
				if kept != nil {
					t.Error("a pack with a block that does not match its id was kept")
				}
				return
			}
			if !done {
				if got != nil || kept != nil {
					t.Error("called back without reading")
				}
				return
			}
			for i := range want {
				if i >= len(got) || !bytes.Equal(got[i], contents[i]) {
					t.Fatalf("block %d handed over wrong", i)
				}
			}
			if (kept != nil) != tc.whole || (tc.whole && (archive.Hash(kept) != pack || wholes != len(want))) || (!tc.whole && wholes != 0) {
				t.Errorf("kept %d bytes (whole %d of %d blocks); want whole %v", len(kept), wholes, len(want), tc.whole)
			}
		})
	}
}
