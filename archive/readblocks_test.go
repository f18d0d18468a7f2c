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
// layouts are read as ReadPackBlocks reads them, verified too; blocks
// longer than the pack fail as a range outside it, and a block that does
// not match its id is a corruption error. Only a whole pack is kept.
func TestReadPackFrom(t *testing.T) {
	for _, tc := range []struct {
		name   string
		blocks func(b []archive.BlockAt) []archive.BlockAt
		whole  bool  // the pack was kept
		fails  error // the error the read matches, if any
	}{
		{name: "the whole pack", blocks: func(b []archive.BlockAt) []archive.BlockAt { return b }, whole: true},
		{name: "the start of a larger pack", blocks: func(b []archive.BlockAt) []archive.BlockAt { return b[:3] }},
		{name: "not from the start", blocks: func(b []archive.BlockAt) []archive.BlockAt { return b[1:] }},
		{name: "a gap", blocks: func(b []archive.BlockAt) []archive.BlockAt { return []archive.BlockAt{b[0], b[2]} }},
		{name: "longer than the pack", fails: archive.ErrOutOfRange, blocks: func(b []archive.BlockAt) []archive.BlockAt {
			b = append([]archive.BlockAt(nil), b...)
			b[len(b)-1].Loc.Stored += 1 << 20
			b[len(b)-1].Loc.Raw += 1 << 20
			return b
		}},
		{name: "the index names another block", fails: archive.ErrCorrupt, blocks: func(b []archive.BlockAt) []archive.BlockAt {
			b = append([]archive.BlockAt(nil), b...)
			b[2].ID = archive.Hash([]byte("another block"))
			return b
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := testRepo(t)
			pack, all, contents := testPack(t, r, 5, 1)
			byID := map[archive.ID][]byte{}
			for i, b := range all {
				byID[b.ID] = contents[i]
			}
			want := tc.blocks(all)
			var got []archive.BlockAt
			var kept []byte
			var wholes int
			err := r.ReadPackFrom(context.Background(), pack, want, func(b archive.BlockAt, stored, raw []byte, whole bool) error {
				if !bytes.Equal(raw, byID[b.ID]) {
					t.Errorf("block %s handed over wrong", b.ID.Short())
				}
				got = append(got, b)
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
			if (err != nil) != (tc.fails != nil) || (tc.fails != nil && !errors.Is(err, tc.fails)) {
				t.Fatalf("err %v; want one matching %v", err, tc.fails)
			}
			if tc.fails != nil {
				if kept != nil {
					t.Error("a pack that does not check was kept")
				}
				return
			}
			if len(got) != len(want) {
				t.Fatalf("%d blocks handed over, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i].ID != want[i].ID {
					t.Fatalf("block %d handed over out of order", i)
				}
			}
			if (kept != nil) != tc.whole || (tc.whole && (archive.Hash(kept) != pack || wholes != len(want))) || (!tc.whole && wholes != 0) {
				t.Errorf("kept %d bytes (whole %d of %d blocks); want whole %v", len(kept), wholes, len(want), tc.whole)
			}
		})
	}
}
