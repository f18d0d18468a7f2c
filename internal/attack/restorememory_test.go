package attack

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/statepack/statepack/archive/format"
)

// restoreRSS bounds the peak RSS of restoring a snapshot whose block
// lists name far more blocks than restore can hold at once.
const restoreRSS = 100 << 20

// zeroList stores a one-byte block of zero and a list block naming it 32
// times, as statepack writes lists, and returns the list's reference: a
// manifest naming it n times is a file of 32*n zero bytes, which restore
// writes as holes.
func (h *hostile) zeroList() format.BlockRef {
	h.t.Helper()
	zero := []byte{0}
	zid := format.Hash(zero)
	var list []byte
	for range 32 {
		list = append(list, zid[:]...)
		list = binary.LittleEndian.AppendUint32(list, 1)
	}
	id := format.Hash(list)
	packID, _, entries := h.pack(packBlock{zid, zero, 1, format.EncodingRaw}, packBlock{id, list, len(list), format.EncodingRaw})
	h.index(format.IndexPack{Pack: packID, Entries: entries})
	return format.BlockRef{ID: id, Size: uint32(len(list))}
}

// TestRestoreMemoryFollowsWork (issue 15, item 5): a manifest of 2.5 MB
// may name one list block of 32 entries 70,000 times: a file of 2.2
// million block references, legitimate in shape (a file of zeros), 80 MB
// expanded. Restore expanded every file's lists before writing anything,
// and pull --restore planned every reference of the snapshot at once
// (the old code: 2.7 GB for a million references to such a list).
// Restore now walks each file's blocks a list block at a time as it
// writes it, and pull --restore, above 2 million references, pulls and
// then restores: both stay under restoreRSS, and the file comes out
// whole. Push, prune, status, diff and repair, which expanded every list
// too, walk them.
func TestRestoreMemoryFollowsWork(t *testing.T) {
	forEachRemote(t, func(t *testing.T, h *hostile) {
		list := h.zeroList()
		const times = 70_000
		const size = times * 32
		lists := make([]format.BlockRef, times)
		for i := range lists {
			lists[i] = list
		}
		h.publish("evil", format.EncodeManifest(manifest(dirEntry("db"), listsEntry("db/zeros", size, lists))))
		other := filepath.Join(h.victim.root, "other-remote")
		if err := os.MkdirAll(other, 0o755); err != nil { // empty: the push creates the remote there
			t.Fatal(err)
		}
		restored := filepath.Join(h.victim.root, "restore-of-the-pulled-state")
		for _, tc := range []struct {
			name    string
			args    []string
			dataDir bool // restores into an empty DATA_DIR of its own
			extra   map[string]string
			rss     int64 // push and prune only walk the lists: what reading the 2.5 MB manifest takes
		}{
			{"pull --restore into an empty DATA_DIR", []string{"pull", "evil", "--restore"}, true, nil, restoreRSS},
			{"restore of the pulled state", []string{"restore", "evil"}, true, nil, restoreRSS},
			{"push of the pulled state", []string{"push", "evil"}, false, map[string]string{"STATEPACK_REMOTE": other}, 48 << 20},
			{"prune of the store holding it", []string{"prune"}, false, nil, 48 << 20},
			{"status of the restored DATA_DIR", []string{"status"}, false, map[string]string{"DATA_DIR": restored}, 48 << 20},
			{"diff with the restored DATA_DIR", []string{"diff", "evil"}, false, map[string]string{"DATA_DIR": restored}, 48 << 20},
			{"diff with another snapshot", []string{"diff", "mine", "evil"}, false, nil, 48 << 20},
		} {
			extra := map[string]string{}
			for k, v := range tc.extra {
				extra[k] = v
			}
			data := filepath.Join(h.victim.root, strings.ReplaceAll(tc.name, " ", "-"))
			if tc.dataDir {
				extra["DATA_DIR"] = data
			}
			r := h.victim.runWith(extra, runLimit, tc.args...)
			t.Logf("statepack %s: exit %d in %v, peak RSS %d MiB", strings.Join(tc.args, " "), r.code, r.took, r.maxRSS>>20)
			if r.code != 0 {
				t.Fatalf("%s:\n%s", tc.name, r)
			}
			if r.maxRSS > tc.rss {
				t.Errorf("%s: peak RSS %d MiB, want under %d MiB", tc.name, r.maxRSS>>20, tc.rss>>20)
			}
			if !tc.dataDir {
				continue
			}
			got, err := os.ReadFile(filepath.Join(data, "db", "zeros"))
			if err != nil || len(got) != size || strings.Trim(string(got), "\x00") != "" {
				t.Errorf("%s: restored %d bytes (%v), want %d zeros", tc.name, len(got), err, size)
			}
		}
	})
}
