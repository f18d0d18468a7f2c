package archive_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/remote/backend"
)

// testPack stores a pack of n random raw blocks of 1000-4000 bytes in r
// and returns its id, its blocks as the index locates them, and their
// contents.
func testPack(t *testing.T, r *archive.Repository, n int, seed uint64) (format.ID, []archive.BlockAt, [][]byte) {
	t.Helper()
	return testPackOf(t, r, n, seed, func(rng *rand.Rand, _ int) int { return 1000 + rng.IntN(3000) })
}

// testPackOf is testPack with block i of size(rng, i) bytes.
func testPackOf(t *testing.T, r *archive.Repository, n int, seed uint64, size func(rng *rand.Rand, i int) int) (format.ID, []archive.BlockAt, [][]byte) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	p := format.NewPackBuilder(1 << 20)
	var contents [][]byte
	for i := range n {
		raw := make([]byte, size(rng, i))
		for i := range raw {
			raw[i] = byte(rng.Uint32())
		}
		p.Add(format.Hash(raw), raw, len(raw), format.EncodingRaw)
		contents = append(contents, raw)
	}
	id, data, entries := p.Finish()
	if err := r.PutPack(context.Background(), id, data); err != nil {
		t.Fatal(err)
	}
	blocks := make([]archive.BlockAt, len(entries))
	for i, e := range entries {
		blocks[i] = archive.BlockAt{ID: e.ID, Loc: format.Location{Pack: id, Offset: e.Offset, Stored: e.Stored, Raw: e.Raw, Encoding: e.Encoding}}
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
		{name: "longer than the pack", fails: backend.ErrOutOfRange, blocks: func(b []archive.BlockAt) []archive.BlockAt {
			b = append([]archive.BlockAt(nil), b...)
			b[len(b)-1].Loc.Stored += 1 << 20
			b[len(b)-1].Loc.Raw += 1 << 20
			return b
		}},
		{name: "the index names another block", fails: format.ErrCorrupt, blocks: func(b []archive.BlockAt) []archive.BlockAt {
			b = append([]archive.BlockAt(nil), b...)
			b[2].ID = format.Hash([]byte("another block"))
			return b
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := testRepo(t)
			pack, all, contents := testPack(t, r, 5, 1)
			byID := map[format.ID][]byte{}
			for i, b := range all {
				byID[b.ID] = contents[i]
			}
			want := tc.blocks(all)
			var got, added []archive.BlockAt
			var kept []byte
			err := r.ReadPackFrom(context.Background(), pack, want, archive.PackReceiver{
				Block: func(b archive.BlockAt, stored, raw []byte) error {
					if !bytes.Equal(raw, byID[b.ID]) {
						t.Errorf("block %s handed over wrong", b.ID.Short())
					}
					got = append(got, b)
					return nil
				},
				Keep: func(data []byte, entries []format.PackEntry) error {
					kept = bytes.Clone(data)
					if len(entries) != len(all) {
						t.Errorf("%d entries kept, want %d", len(entries), len(all))
					}
					return nil
				},
				Add: func(b archive.BlockAt, stored []byte) error {
					if len(stored) != int(b.Loc.Stored) || !bytes.Equal(stored, byID[b.ID]) { // raw blocks: stored as they are
						t.Errorf("block %s added with the wrong bytes", b.ID.Short())
					}
					added = append(added, b)
					return nil
				},
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
			if (kept != nil) != tc.whole || (tc.whole && (format.Hash(kept) != pack || len(added) != 0)) {
				t.Errorf("kept %d bytes, added %d of %d blocks; want whole %v", len(kept), len(added), len(want), tc.whole)
			}
			if !tc.whole && !slices.Equal(added, want) {
				t.Errorf("added %d blocks, want each of the %d not kept, in order", len(added), len(want))
			}
		})
	}
}

// gatedPack serves every GetRange of one object in two parts: the bytes
// up to cut, then, once open is closed, the rest; with short set the rest
// never comes (the object ends early).
type gatedPack struct {
	backend.Backend
	cut   int64
	open  chan struct{}
	short bool
}

func (g *gatedPack) GetRange(ctx context.Context, name string, off, n int64) (io.ReadCloser, error) {
	rc, err := g.Backend.GetRange(ctx, name, off, n)
	if err != nil || off != 0 || n <= g.cut {
		return rc, err
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, err
	}
	rest := io.Reader(&waitReader{r: bytes.NewReader(data[g.cut:]), open: g.open})
	if g.short {
		rest = bytes.NewReader(nil)
	}
	return io.NopCloser(io.MultiReader(bytes.NewReader(data[:g.cut]), rest)), nil
}

// waitReader reads r once open is closed, or fails after 30 s: the
// bytes before it were handed over whole, never decoded.
type waitReader struct {
	r    io.Reader
	open chan struct{}
}

func (w *waitReader) Read(p []byte) (int, error) {
	select {
	case <-w.open:
		return w.r.Read(p)
	case <-time.After(30 * time.Second):
		return 0, errors.New("the rest of the pack was asked for before the blocks already read were handed over")
	}
}

// TestReadPackFromStreams: blocks go to Block as their bytes arrive, not
// once the whole pack has (the rest of this pack comes only after the
// first block is handed over), and when the read of a whole pack ends
// early, the blocks handed over before the end are added and the rest are
// read as ReadPackBlocks reads them: each block once.
func TestReadPackFromStreams(t *testing.T) {
	for _, short := range []bool{false, true} {
		r, _ := testRepo(t)
		pack, all, _ := testPack(t, r, 300, 2) // about 750 KiB: several reads of readStep
		g := &gatedPack{Backend: r.Backend(), cut: int64(all[150].Loc.Offset), open: make(chan struct{}), short: short}
		gr, err := archive.Open(context.Background(), g)
		if err != nil {
			t.Fatal(err)
		}
		var got, added int
		var kept bool
		err = gr.ReadPackFrom(context.Background(), pack, all, archive.PackReceiver{
			Block: func(b archive.BlockAt, stored, raw []byte) error {
				if got++; got == 1 {
					close(g.open)
				}
				return nil
			},
			Keep: func([]byte, []format.PackEntry) error { kept = true; return nil },
			Add:  func(archive.BlockAt, []byte) error { added++; return nil },
		})
		switch {
		case !short && (err != nil || !kept || got != len(all) || added != 0):
			t.Errorf("streamed pack: err %v, kept %v, %d blocks handed over, %d added; want it kept with all %d", err, kept, got, added, len(all))
		case short && (err != nil || kept || got != len(all) || added != len(all)):
			t.Errorf("pack cut at block 150: err %v, kept %v, %d blocks handed over, %d added; want each of the %d once, the rest by ranged reads, and added", err, kept, got, added, len(all))
		}
	}
}

// TestReadPackBlocksWindow: a read longer than the window readSpan holds
// hands over every block intact, whether the blocks lie back to back,
// with gaps, or one of them is longer than the window itself.
func TestReadPackBlocksWindow(t *testing.T) {
	r, _ := testRepo(t)
	pack, all, raws := testPackOf(t, r, 60, 3, func(rng *rand.Rand, i int) int {
		if i == 30 {
			return 3 << 20 // longer than the window: it must grow
		}
		return 20<<10 + rng.IntN(100<<10)
	})
	contents := map[format.ID][]byte{}
	for i, b := range all {
		contents[b.ID] = raws[i]
	}
	for _, tc := range []struct {
		name string
		pick func(i int) bool
	}{
		{"back to back", func(int) bool { return true }},
		{"every other block", func(i int) bool { return i%2 == 0 }},
		{"around the long block", func(i int) bool { return i >= 28 && i <= 33 }},
	} {
		var want []archive.BlockAt
		for i, b := range all {
			if tc.pick(i) {
				want = append(want, b)
			}
		}
		var got []format.ID
		err := r.ReadPackBlocks(context.Background(), pack, want, func(b archive.BlockAt, stored, raw []byte) error {
			if !bytes.Equal(raw, contents[b.ID]) || !bytes.Equal(stored, contents[b.ID]) {
				t.Errorf("%s: block %s handed over wrong", tc.name, b.ID.Short())
			}
			got = append(got, b.ID)
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(got) != len(want) {
			t.Errorf("%s: %d blocks handed over, want %d", tc.name, len(got), len(want))
		}
	}
}
