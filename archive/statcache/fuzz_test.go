package statcache

import (
	"testing"

	"github.com/statepack/statepack/archive/format"
)

// FuzzDecodeStatCache: the stat cache is local and written only by
// statepack, but a damaged one must fail to decode, never panic or claim
// more than its bytes hold; what decodes re-encodes to a cache that
// decodes the same.
func FuzzDecodeStatCache(f *testing.F) {
	c := &StatCache{Snapshot: format.Hash([]byte("s")), State: "s", Recorded: 5, Files: map[string]*StatEntry{
		"f":   {Size: 10, MTime: 1, CTime: 2, Ino: 3, Blocks: []format.BlockRef{{ID: format.Hash([]byte("a")), Size: 10}}},
		"d/g": {Size: 0, MTime: 4, CTime: 5, Ino: 6},
	}}
	f.Add(EncodeStatCache(c))
	f.Add([]byte(statCacheMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := DecodeStatCache(data)
		if err != nil {
			return
		}
		again, err := DecodeStatCache(EncodeStatCache(got))
		if err != nil || len(again.Files) != len(got.Files) || again.State != got.State || again.Snapshot != got.Snapshot {
			t.Fatalf("stat cache does not round-trip: %v", err)
		}
	})
}
