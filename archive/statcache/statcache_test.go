package statcache

import (
	"testing"

	"github.com/statepack/statepack/archive/format"
)

// TestStatCacheKeepsLists: the stat cache carries each file's list blocks
// (so a no-op save does not hash them again), and a cache written before
// it did still reads.
func TestStatCacheKeepsLists(t *testing.T) {
	blocks := []format.BlockRef{{ID: format.Hash([]byte("a")), Size: 10}}
	lists := []format.BlockRef{{ID: format.Hash([]byte("l")), Size: format.ListEntrySize}}
	c := &StatCache{Snapshot: format.Hash([]byte("s")), State: "s", Recorded: 5,
		Files: map[string]*StatEntry{"f": {Size: 10, MTime: 1, CTime: 2, Ino: 3, Blocks: blocks, Lists: lists}}}
	got, err := DecodeStatCache(EncodeStatCache(c))
	if err != nil || len(got.Files["f"].Lists) != 1 || got.Files["f"].Lists[0] != lists[0] || got.Files["f"].Blocks[0] != blocks[0] {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	c.Files["f"].Lists = nil
	v1 := EncodeStatCache(c)
	v1 = append([]byte(StatCacheMagicV1), v1[4:len(v1)-1]...) // version 1: no list count
	got, err = DecodeStatCache(v1)
	if err != nil || got.Files["f"].Lists != nil || len(got.Files["f"].Blocks) != 1 {
		t.Fatalf("version 1 cache: %+v, %v", got, err)
	}
	for _, tt := range []struct {
		n     int
		lists []format.BlockRef
		want  bool
	}{
		{33, []format.BlockRef{{Size: 32 * format.ListEntrySize}, {Size: format.ListEntrySize}}, true},
		{64, []format.BlockRef{{Size: 32 * format.ListEntrySize}, {Size: 32 * format.ListEntrySize}}, true},
		{34, []format.BlockRef{{Size: 32 * format.ListEntrySize}, {Size: format.ListEntrySize}}, false},
		{33, []format.BlockRef{{Size: 33 * format.ListEntrySize}}, false},
		{33, nil, false},
	} {
		if got := format.ListsCover(tt.lists, tt.n); got != tt.want {
			t.Errorf("listsCover(%d lists, %d blocks) = %v", len(tt.lists), tt.n, got)
		}
	}
}
