package statcache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/scan"
	"github.com/statepack/statepack/internal/files"
	"github.com/zeebo/blake3"
)

// The stat cache is local, never part of a repository that is shared. It
// remembers, per DATA_DIR, which snapshot the directory was last saved as or
// restored from, and for each file the stat data it had then together with
// its blocks. Save uses it to skip reading unchanged files, restore to skip
// rewriting identical ones, status to tell what changed (invariant 7).

// statEntry is what the cache knows of one file.
type StatEntry struct {
	Size   int64
	MTime  int64
	CTime  int64
	Ino    uint64
	Blocks []format.BlockRef
	Lists  []format.BlockRef // the list blocks of Blocks, for files that have them
}

// statCache is the cache of one DATA_DIR.
type StatCache struct {
	Snapshot format.ID
	State    string
	Recorded int64 // nanoseconds; files changed at or after this are "racy"
	Files    map[string]*StatEntry
}

// racyWindow: a file whose ctime is this close to (or after) the moment its
// stat was recorded may be changed again within the same timestamp tick
// without its stat changing, so the cache does not vouch for it. File
// systems that keep whole seconds only get a window of two seconds.
const (
	RacyWindow       = int64(100e6)
	racyWindowCoarse = int64(2e9)
)

// windowOf is the racy window for a file with stat st.
func windowOf(st scan.FileStat) int64 {
	if st.CTime%1e9 == 0 {
		return racyWindowCoarse
	}
	return RacyWindow
}

// settled reports whether content read at readAt can be vouched for by
// st: read a whole window after the file's last change, so that any later
// change gets a later mtime or ctime.
func Settled(st scan.FileStat, readAt int64) bool {
	return max(st.MTime, st.CTime) < readAt-windowOf(st)
}

// fresh reports whether the file at st still has the content the cache
// recorded for it.
func (c *StatCache) Fresh(rel string, st scan.FileStat) (*StatEntry, bool) {
	if c == nil {
		return nil, false
	}
	e := c.Files[rel]
	if e == nil || !scan.SameStat(e.stat(), st) {
		return nil, false
	}
	if format.BlocksSize(e.Blocks) != e.Size {
		return nil, false // a damaged cache: its blocks are not this file
	}
	if !c.settled(e) {
		return nil, false
	}
	return e, true
}

// stat is what of a file's stat the cache compares.
func (e *StatEntry) stat() scan.FileStat {
	return scan.FileStat{Size: e.Size, MTime: e.MTime, CTime: e.CTime, Ino: e.Ino}
}

// settled reports whether the cache recorded e a racy window after its
// last change, so that any change since shows in its stat.
func (c *StatCache) settled(e *StatEntry) bool {
	window := windowOf(scan.FileStat{CTime: e.CTime})
	return e.CTime < c.Recorded-window && e.MTime < c.Recorded-window
}

// holds reports whether the file at st still has e's content: the cache
// vouches for it with e's blocks or, for e's list blocks, with the same
// list blocks (which name the same blocks). A file restore recorded by
// its list blocks alone (statTree, a file of very many blocks) counts
// here, never in fresh: save needs the blocks themselves.
func (c *StatCache) Holds(e *format.Entry, st scan.FileStat) bool {
	if c == nil {
		return false
	}
	listed := len(e.Lists) > 0 && len(e.Blocks) == 0
	if ce, ok := c.Fresh(e.Path, st); ok {
		if listed {
			return len(ce.Lists) > 0 && slices.Equal(ce.Lists, e.Lists)
		}
		return slices.Equal(ce.Blocks, e.Blocks)
	}
	ce := c.Files[e.Path]
	if !listed || ce == nil || len(ce.Blocks) > 0 || !scan.SameStat(ce.stat(), st) {
		return false
	}
	return ce.Size == e.Size && c.settled(ce) && slices.Equal(ce.Lists, e.Lists)
}

// Stat cache encodings: version 2 adds each file's list blocks, so that a
// save does not hash them again for files it does not read. A version 1
// cache still reads (its files' lists are recomputed).
const (
	statCacheMagic   = "SPC2"
	StatCacheMagicV1 = "SPC1"
)

func StatCachePath(cacheDir, dataDir string) string {
	sum := blake3.Sum256([]byte(dataDir))
	return filepath.Join(cacheDir, fmt.Sprintf("datadir-%x", sum[:8]))
}

func LoadStatCache(cacheDir, dataDir string) *StatCache {
	if cacheDir == "" {
		return nil
	}
	data, err := os.ReadFile(StatCachePath(cacheDir, dataDir))
	if err != nil {
		return nil
	}
	c, err := DecodeStatCache(data)
	if err != nil {
		return nil // a damaged cache only costs a full read
	}
	return c
}

func SaveStatCache(cacheDir, dataDir string, c *StatCache) error {
	if cacheDir == "" {
		return nil
	}
	return WriteStatCache(cacheDir, dataDir, EncodeStatCache(c))
}

// writeStatCache writes an encoded stat cache for dataDir.
func WriteStatCache(cacheDir, dataDir string, data []byte) error {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return err
	}
	return files.WriteFileAtomic(StatCachePath(cacheDir, dataDir), data)
}

// setStatCacheSnapshot writes the snapshot id into an encoded stat cache,
// so that a save can encode its cache while the snapshot is still being
// committed.
func SetStatCacheSnapshot(data []byte, id format.ID) { copy(data[len(statCacheMagic):], id[:]) }

func EncodeStatCache(c *StatCache) []byte {
	// Sized first: at a million blocks the cache is tens of MiB, and
	// growing it by appends copied and cleared it several times over.
	size := len(statCacheMagic) + len(c.Snapshot) + 3*binary.MaxVarintLen64 + len(c.State)
	for p, e := range c.Files {
		size += len(p) + 7*binary.MaxVarintLen64 + (len(e.Blocks)+len(e.Lists))*(len(format.ID{})+binary.MaxVarintLen32)
	}
	b := append(make([]byte, 0, size), statCacheMagic...)
	b = append(b, c.Snapshot[:]...)
	b = format.AppendString(b, c.State)
	b = binary.AppendVarint(b, c.Recorded)
	b = binary.AppendUvarint(b, uint64(len(c.Files)))
	for p, e := range c.Files {
		b = format.AppendString(b, p)
		b = binary.AppendVarint(b, e.Size)
		b = binary.AppendVarint(b, e.MTime)
		b = binary.AppendVarint(b, e.CTime)
		b = binary.AppendUvarint(b, e.Ino)
		b = binary.AppendUvarint(b, uint64(len(e.Blocks)))
		for _, r := range e.Blocks {
			b = append(b, r.ID[:]...)
			b = binary.AppendUvarint(b, uint64(r.Size))
		}
		b = binary.AppendUvarint(b, uint64(len(e.Lists)))
		for _, r := range e.Lists {
			b = append(b, r.ID[:]...)
			b = binary.AppendUvarint(b, uint64(r.Size))
		}
	}
	return b
}

func DecodeStatCache(data []byte) (*StatCache, error) {
	if len(data) < 36 || string(data[:4]) != statCacheMagic && string(data[:4]) != StatCacheMagicV1 {
		return nil, errors.New("bad stat cache")
	}
	withLists := string(data[:4]) == statCacheMagic
	c := &StatCache{}
	copy(c.Snapshot[:], data[4:36])
	d := &format.Decoder{B: data[36:]}
	c.State = d.Str(format.MaxStateName)
	c.Recorded = d.Varint()
	n := d.Uvarint(uint64(len(d.B) / 8))
	c.Files = make(map[string]*StatEntry, n)
	for i := uint64(0); i < n && d.Err == nil; i++ {
		p := d.Str(format.MaxPathLen)
		e := &StatEntry{Size: d.Varint(), MTime: d.Varint(), CTime: d.Varint(), Ino: d.Uvarint(1<<64 - 1)}
		nb := d.Uvarint(uint64(len(d.B) / 33))
		e.Blocks = d.Refs(nb, format.MaxBlockSize)
		if withLists {
			e.Lists = d.Refs(d.Uvarint(uint64(len(d.B)/33)), format.MaxListEntries*format.ListEntrySize)
		}
		c.Files[p] = e
	}
	if d.Err != nil {
		return nil, d.Err
	}
	return c, nil
}
