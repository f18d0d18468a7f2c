package archive

import "testing"

// TestPackOfExactly: only blocks back to back from offset 0 make a pack
// ReadPackFrom may read whole, and only while one request can hold it.
func TestPackOfExactly(t *testing.T) {
	at := func(off, stored uint32) BlockAt { return BlockAt{Loc: Location{Offset: off, Stored: stored}} }
	big := uint32(maxRangeBytes / 2)
	for _, tc := range []struct {
		name   string
		blocks []BlockAt
		size   int64
		ok     bool
	}{
		{"none", nil, 0, false},
		{"one", []BlockAt{at(0, 100)}, 100 + packEntrySize + packFooterSize, true},
		{"three back to back", []BlockAt{at(0, 10), at(10, 20), at(30, 5)}, 35 + 3*packEntrySize + packFooterSize, true},
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
