package archive

import (
	"testing"

	"github.com/statepack/statepack/archive/format"
)

// TestPackOfExactly: only blocks back to back from offset 0 make a pack
// ReadPackFrom may read whole, and only while one request can hold it.
func TestPackOfExactly(t *testing.T) {
	at := func(off, stored uint32) BlockAt { return BlockAt{Loc: format.Location{Offset: off, Stored: stored}} }
	big := uint32(maxRangeBytes / 2)
	for _, tc := range []struct {
		name   string
		blocks []BlockAt
		size   int64
		ok     bool
	}{
		{"none", nil, 0, false},
		{"one", []BlockAt{at(0, 100)}, 100 + format.PackEntrySize + format.PackFooterSize, true},
		{"three back to back", []BlockAt{at(0, 10), at(10, 20), at(30, 5)}, 35 + 3*format.PackEntrySize + format.PackFooterSize, true},
		{"not from the start", []BlockAt{at(10, 20)}, 0, false},
		{"a gap", []BlockAt{at(0, 10), at(11, 5)}, 0, false},
		{"an overlap", []BlockAt{at(0, 10), at(5, 10)}, 0, false},
		{"too large for one request", []BlockAt{at(0, big), at(big, big)}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			size, ok := packOfExactly(tc.blocks)
			if ok != tc.ok || (ok && size != tc.size) {
				t.Errorf("packOfExactly = %d, %v; want %d, %v", size, ok, tc.size, tc.ok)
			}
		})
	}
}

// TestWholePack: bytes are a whole pack only when they hash to its name
// and their trailer lists exactly the blocks asked for, where they were
// asked for; a pack whose every block and trailer match but whose name
// is another's is not stored under that name.
func TestWholePack(t *testing.T) {
	p := format.NewPackBuilder(1 << 20)
	for i := range 3 {
		raw := []byte{byte(i), 1, 2, 3}
		p.Add(format.Hash(raw), raw, len(raw), format.EncodingRaw)
	}
	id, data, entries := p.Finish()
	blocks := make([]BlockAt, len(entries))
	for i, e := range entries {
		blocks[i] = BlockAt{ID: e.ID, Loc: format.Location{Pack: id, Offset: e.Offset, Stored: e.Stored, Raw: e.Raw, Encoding: e.Encoding}}
	}
	moved := append([]BlockAt(nil), blocks...)
	moved[1].Loc.Raw++
	for _, tc := range []struct {
		name   string
		pack   format.ID
		data   []byte
		blocks []BlockAt
		whole  bool
	}{
		{"the pack", id, data, blocks, true},
		{"another pack's name", format.Hash([]byte("another")), data, blocks, false},
		{"fewer blocks than the trailer", id, data, blocks[:2], false},
		{"the index disagrees with the trailer", id, data, moved, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, ok := wholePack(tc.pack, tc.data, tc.blocks); ok != tc.whole || (ok && len(got) != len(entries)) {
				t.Errorf("wholePack = %d entries, %v; want %v", len(got), ok, tc.whole)
			}
		})
	}
}
