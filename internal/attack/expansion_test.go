package attack

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/statepack/statepack/archive/format"
)

// Part 5 of issue 15: small objects that cost gigabytes. Each object
// below claims far more than statepack would ever write of its kind (a
// list block named millions of times, an index object of 1000 MiB, a
// pack trailer of 46 million entries); every command that reads it must
// refuse it in one line naming it, with memory that follows what it read,
// not what the object claims.

// expansionRSS bounds the peak RSS of a command refusing such an object:
// the README's figure for hostile remotes, with room for the runtime.
const expansionRSS = 40 << 20

// plantSized writes an object of size bytes that ends with tail: a sparse
// file on a directory remote (what costs the attacker nothing), real
// zeros on S3 (so keep size small there).
func (h *hostile) plantSized(name string, size int64, tail []byte) {
	h.t.Helper()
	if h.kind == "s3" {
		data := make([]byte, size)
		copy(data[size-int64(len(tail)):], tail)
		h.put(name, data)
		return
	}
	p := filepath.Join(h.url, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		h.t.Fatal(err)
	}
	f, err := os.Create(p)
	if err != nil {
		h.t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		h.t.Fatal(err)
	}
	if _, err := f.WriteAt(tail, size-int64(len(tail))); err != nil {
		h.t.Fatal(err)
	}
}

// bounded runs a command of the victim against the crafted remote and
// checks that it failed, within expansionRSS, with output naming want.
func (h *hostile) bounded(want string, args ...string) {
	h.t.Helper()
	r := h.victim.run(args...)
	if r.code <= 0 || !strings.Contains(r.stdout+r.stderr, want) {
		h.t.Errorf("want a failure naming %q:\n%s", want, r)
	}
	if r.maxRSS > expansionRSS {
		h.t.Errorf("statepack %s: peak RSS %d MiB, want under %d MiB", strings.Join(args, " "), r.maxRSS>>20, expansionRSS>>20)
	}
	h.t.Logf("statepack %s: exit %d in %v, peak RSS %d MiB", strings.Join(args, " "), r.code, r.took, r.maxRSS>>20)
}

// listBlock stores a list block of n entries, each naming a 1-byte block
// that exists nowhere (so that an old statepack that expands it fails
// before it writes), and returns its reference.
func (h *hostile) listBlock(n int) format.BlockRef {
	h.t.Helper()
	var list []byte
	missing := format.Hash([]byte("a block no pack holds"))
	for range n {
		list = append(list, missing[:]...)
		list = binary.LittleEndian.AppendUint32(list, 1)
	}
	id := format.Hash(list)
	packID, _, entries := h.pack(packBlock{id, list, len(list), format.EncodingRaw})
	h.index(format.IndexPack{Pack: packID, Entries: entries})
	return format.BlockRef{ID: id, Size: uint32(len(list))}
}

// listsEntry is a file whose blocks are in the list blocks lists.
func listsEntry(p string, size int64, lists []format.BlockRef) format.Entry {
	return format.Entry{Path: p, Type: format.TypeFile, Mode: 0o644, MTime: crafted.UnixNano(), Size: size, Lists: lists}
}

// TestHostileListBlockBomb stops a manifest that names one list block of
// 4,096 entries 7,900 times: 276 KB that expanded to 32 million block
// references (1.1 GB for show, verify and pull, 2.6 GB for pull
// --restore). statepack writes 32 entries a list block, so a manifest's
// lists expand to at most 32 blocks per reference, checked when it is
// decoded, before any list block is read. A file whose lists name more
// blocks than it has bytes is refused likewise.
func TestHostileListBlockBomb(t *testing.T) {
	forEachRemote(t, func(t *testing.T, h *hostile) {
		big := h.listBlock(4096)
		bomb := make([]format.BlockRef, 7900)
		for i := range bomb {
			bomb[i] = big
		}
		id := h.publish("evil", format.EncodeManifest(manifest(listsEntry("bomb", 7900*4096, bomb))))
		h.refused("evil", "snapshot "+id.Short(), "block lists")
		h.bounded(id.Short(), "show", "evil", "--remote")
		h.bounded(id.Short(), "verify", "--remote", "--json")
		h.bounded(id.Short(), "pull", "evil")

		small := h.listBlock(32)
		id = h.publish("evil", format.EncodeManifest(manifest(listsEntry("dense", 31, []format.BlockRef{small}))))
		h.refused("evil", "snapshot "+id.Short(), "32 blocks for a file of 31 bytes")
	})
}

// TestHostileHugeIndexObject stops an index object larger than any
// statepack writes (5.3 MiB at most): a sparse 1000 MiB file on a
// directory remote cost every pull 2.7 GB and 19 s before its hash was
// found wrong. Its listed size refuses it before a byte is read.
func TestHostileHugeIndexObject(t *testing.T) {
	forEachRemote(t, func(t *testing.T, h *hostile) {
		size := int64(1000 << 20)
		if h.kind == "s3" {
			size = 9 << 20
		}
		name := "index/" + format.Hash([]byte("an oversized index")).String()
		h.plantSized(name, size, []byte("SPI1"))
		h.put("refs/evil", []byte(h.baseID.String()+"\n"))
		h.refused("evil", name, "larger than 5308424 bytes")
		h.bounded(name, "verify", "--remote", "--json")
	})
}

// TestHostilePackTrailerClaims stops a pack whose footer claims tens of
// millions of entries: verify read and held the whole claimed trailer
// (4 GB for a sparse 2 GiB pack). A footer may claim at most one entry
// per stored byte of its pack, and the entries are checked as they
// stream in: a trailer of zeros fails at its first.
func TestHostilePackTrailerClaims(t *testing.T) {
	forEachRemote(t, func(t *testing.T, h *hostile) {
		cases := []struct{ entries, size int64 }{
			{47_000_000, 47_000_000*45 + 108}, // the claimed count does not fit
			{46_000_000, 46_000_000*46 + 108}, // it fits, in a trailer of zeros
		}
		if h.kind == "s3" { // uploaded for real: smaller
			cases = []struct{ entries, size int64 }{{100_000, 100_000*45 + 108}, {100_000, 100_000*46 + 108}}
		}
		for i, c := range cases {
			footer := append(binary.LittleEndian.AppendUint32(nil, uint32(c.entries)), "SPK1"...)
			packID := format.Hash(append(footer, byte(i)))
			h.plantSized(format.PackName(packID), c.size, footer)
			other := format.Hash(append([]byte("a block of the crafted pack"), byte(i)))
			h.index(format.IndexPack{Pack: packID, Entries: []format.PackEntry{{ID: other, Offset: 10, Stored: 10, Raw: 10}}})
			h.bounded(packID.String(), "verify", "--remote", "--json")
		}
	})
}

// TestHostileHugeSnapshot stops a snapshot object of 1000 MiB that is
// not what its name says (a sparse file): show and pull read and held it
// whole (2.7 GB) before its hash was found wrong. A snapshot past 4 MiB
// is hashed as it streams before it is held.
func TestHostileHugeSnapshot(t *testing.T) {
	forEachRemote(t, func(t *testing.T, h *hostile) {
		size := int64(1000 << 20)
		if h.kind == "s3" {
			size = 9 << 20
		}
		id := format.Hash([]byte("a sparse snapshot"))
		name := "snapshots/" + id.String()
		h.plantSized(name, size, []byte("SPM1"))
		h.put("refs/evil", []byte(id.String()+"\n"))
		h.refused("evil", name, "damaged")
		h.bounded(name, "show", "evil", "--remote")
		h.bounded(name, "log", "evil", "--remote")
	})
}

// TestHostileListRepeats: within the bound of 32 blocks per list
// reference, a manifest may still name one list block of 32 entries
// 200,000 times (7 MB for 6.4 million block references, 230 MB
// expanded). show, verify and pull walk the lists without expanding
// them, so they cost what they read; restore walks them too
// (TestRestoreMemoryFollowsWork).
func TestHostileListRepeats(t *testing.T) {
	forEachRemote(t, func(t *testing.T, h *hostile) {
		small := h.listBlock(32)
		const times = 200_000
		// What walking a 7 MB manifest takes (its bytes, its decoded
		// entries, the runtime), far under the 230 MB of its expansion.
		const walkRSS = 96 << 20
		lists := make([]format.BlockRef, times)
		for i := range lists {
			lists[i] = small
		}
		id := h.publish("evil", format.EncodeManifest(manifest(listsEntry("zeros", times*32, lists))))
		for _, args := range [][]string{{"show", "evil", "--remote", "--files"}, {"verify", "--remote", "--json"}, {"pull", "evil"}} {
			r := h.victim.run(args...)
			if r.maxRSS > walkRSS {
				t.Errorf("peak RSS %d MiB, want under %d MiB:\n%s", r.maxRSS>>20, walkRSS>>20, r)
			}
			t.Logf("statepack %s: exit %d in %v, peak RSS %d MiB", strings.Join(args, " "), r.code, r.took, r.maxRSS>>20)
		}
		if r := h.victim.run("show", "evil", "--remote", "--files", "--json"); !strings.Contains(r.stdout, `"blocks": 6400000`) || !strings.Contains(r.stdout, id.String()) {
			t.Errorf("show does not count the blocks the lists name:\n%.2000s", r.stdout)
		}
	})
}
