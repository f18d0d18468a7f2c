// Package statcache is the local stat cache: per DATA_DIR, which
// snapshot the directory was last saved as or restored from, and for each
// file the stat data it had then together with its blocks. Save uses it to
// skip reading unchanged files, restore to skip rewriting identical ones,
// status to tell what changed (invariant 7). After a partial restore it
// records no snapshot, only, for status, the one before and the partial
// restores since (RecordPartial). It lives in the local
// store's cache directory, never in a repository that is shared.
//
// The cache vouches only for what statepack verified (invariant 8): a
// file changed within the racy window of the moment it was recorded is
// not trusted (Settled, Fresh, Holds).
//
// Save and restore both record and consult it, so it sits below both:
// it imports archive/format, archive/scan and internal/files, and must
// not import archive (the repository), archive/saver, archive/restorer or
// archive/maintain, nor remote.
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

// StatEntry is what the cache knows of one file.
type StatEntry struct {
	Size   int64
	MTime  int64
	CTime  int64
	Ino    uint64
	Blocks []format.BlockRef
	Lists  []format.BlockRef // the list blocks of Blocks, for files that have them
}

// StatCache is the cache of one DATA_DIR.
type StatCache struct {
	// Snapshot is what DATA_DIR wholly was when last saved or restored
	// (zero when it is not wholly any snapshot): restore trusts it to
	// answer a restore of that snapshot without writing (with each
	// file's stat); State is its state.
	Snapshot format.ID
	State    string
	Recorded int64 // nanoseconds; files changed at or after this are "racy"
	Files    map[string]*StatEntry
	// Base and Partial say how DATA_DIR came to be when a partial
	// restore (--only, --services) left it no one snapshot: Base (with
	// BaseState) is the snapshot it wholly was before, zero when none is
	// known; Partial the partial restores since, oldest first. They are
	// for status to tell the user; save and restore never trust them, as
	// Snapshot stays zero while they are set.
	Base      format.ID
	BaseState string
	Partial   []PartialRestore
}

// PartialRestore is one restore of the paths a filter selects from a
// snapshot.
type PartialRestore struct {
	Snapshot format.ID
	State    string
	Include  []string // the filter (scan.Filter) that chose the paths
	Exclude  []string
}

// MaxPartialRestores is how many partial restores a cache remembers;
// with more, the oldest are forgotten, and Base with them.
const MaxPartialRestores = 16

// RecordPartial records on c, the cache a partial restore of p wrote,
// that DATA_DIR is now what old (the cache before it; nil when there was
// none) describes with p's paths restored over it. c is then wholly no
// snapshot.
func (c *StatCache) RecordPartial(old *StatCache, p PartialRestore) {
	c.Snapshot, c.State = format.ID{}, ""
	c.Base, c.BaseState, c.Partial = format.ID{}, "", nil
	switch {
	case old == nil:
	case !old.Snapshot.IsZero():
		c.Base, c.BaseState = old.Snapshot, old.State
	default:
		c.Base, c.BaseState = old.Base, old.BaseState
		// A restore through the same filter replaces every path an
		// earlier one wrote: that one no longer says anything.
		for _, q := range old.Partial {
			if !sameFilter(q, p) {
				c.Partial = append(c.Partial, q)
			}
		}
	}
	c.Partial = append(c.Partial, p)
	if n := len(c.Partial); n > MaxPartialRestores {
		c.Partial = slices.Clone(c.Partial[n-MaxPartialRestores:])
		c.Base, c.BaseState = format.ID{}, ""
	}
}

func sameFilter(a, b PartialRestore) bool {
	return slices.Equal(a.Include, b.Include) && slices.Equal(a.Exclude, b.Exclude)
}

// RacyWindow: a file whose ctime is this close to (or after) the moment its
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

// Settled reports whether content read at readAt can be vouched for by
// st: read a whole window after the file's last change, so that any later
// change gets a later mtime or ctime.
func Settled(st scan.FileStat, readAt int64) bool {
	return max(st.MTime, st.CTime) < readAt-windowOf(st)
}

// Fresh reports whether the file at st still has the content the cache
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

// Holds reports whether the file at st still has e's content: the cache
// vouches for it with e's blocks or, for e's list blocks, with the same
// list blocks (which name the same blocks). A file restore recorded by
// its list blocks alone (the restorer's statTree, a file of very many
// blocks) counts here, never in Fresh: save needs the blocks themselves.
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
// cache still reads (its files' lists are recomputed). Version 3 is
// version 2 followed by Base and Partial; it is written only when there
// is a partial restore to record, so that a cache without one still
// reads with a statepack that knows only version 2.
const (
	statCacheMagic   = "SPC2"
	StatCacheMagicV1 = "SPC1"
	statCacheMagicV3 = "SPC3"
)

// StatCachePath is where the cache of dataDir lives in cacheDir: named by
// a hash of the path, so that each DATA_DIR has its own.
func StatCachePath(cacheDir, dataDir string) string {
	sum := blake3.Sum256([]byte(dataDir))
	return filepath.Join(cacheDir, fmt.Sprintf("datadir-%x", sum[:8]))
}

// LoadStatCache reads the cache of dataDir, or returns nil when there is
// none or it does not decode: a missing cache only costs a full read.
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

// SaveStatCache replaces the cache of dataDir with c, atomically. An
// empty cacheDir means no cache is kept.
func SaveStatCache(cacheDir, dataDir string, c *StatCache) error {
	if cacheDir == "" {
		return nil
	}
	return WriteStatCache(cacheDir, dataDir, EncodeStatCache(c))
}

// WriteStatCache writes an encoded stat cache for dataDir.
func WriteStatCache(cacheDir, dataDir string, data []byte) error {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return err
	}
	return files.WriteFileAtomic(StatCachePath(cacheDir, dataDir), data)
}

// SetStatCacheSnapshot writes the snapshot id into an encoded stat cache,
// so that a save can encode its cache while the snapshot is still being
// committed.
func SetStatCacheSnapshot(data []byte, id format.ID) { copy(data[len(statCacheMagic):], id[:]) }

// EncodeStatCache returns c in the current encoding, the snapshot id at a
// fixed offset (SetStatCacheSnapshot).
func EncodeStatCache(c *StatCache) []byte {
	// Sized first: at a million blocks the cache is tens of MiB, which
	// growing by appends would copy and clear several times over.
	size := len(statCacheMagic) + len(c.Snapshot) + 3*binary.MaxVarintLen64 + len(c.State)
	for p, e := range c.Files {
		size += len(p) + 7*binary.MaxVarintLen64 + (len(e.Blocks)+len(e.Lists))*(len(format.ID{})+binary.MaxVarintLen32)
	}
	magic := statCacheMagic
	if len(c.Partial) > 0 {
		magic = statCacheMagicV3
	}
	b := append(make([]byte, 0, size), magic...)
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
	if len(c.Partial) > 0 {
		b = appendPartial(b, c)
	}
	return b
}

// appendPartial encodes Base and Partial: the base id and state, then
// the count of partial restores and each one's snapshot id, state and
// filter (counted lists of patterns).
func appendPartial(b []byte, c *StatCache) []byte {
	b = append(b, c.Base[:]...)
	b = format.AppendString(b, c.BaseState)
	b = binary.AppendUvarint(b, uint64(len(c.Partial)))
	for _, p := range c.Partial {
		b = append(b, p.Snapshot[:]...)
		b = format.AppendString(b, p.State)
		for _, pats := range [][]string{p.Include, p.Exclude} {
			b = binary.AppendUvarint(b, uint64(len(pats)))
			for _, pat := range pats {
				b = format.AppendString(b, pat)
			}
		}
	}
	return b
}

// readPartial decodes what appendPartial wrote.
func readPartial(d *format.Decoder, c *StatCache) {
	c.Base = readID(d)
	c.BaseState = d.Str(format.MaxStateName)
	n := d.Uvarint(MaxPartialRestores)
	for i := uint64(0); i < n && d.Err == nil; i++ {
		p := PartialRestore{Snapshot: readID(d), State: d.Str(format.MaxStateName)}
		for _, pats := range []*[]string{&p.Include, &p.Exclude} {
			m := d.Uvarint(uint64(len(d.B)))
			for j := uint64(0); j < m && d.Err == nil; j++ {
				*pats = append(*pats, d.Str(format.MaxPathLen))
			}
		}
		c.Partial = append(c.Partial, p)
	}
	if d.Err == nil && (len(c.Partial) == 0 || !c.Snapshot.IsZero()) {
		d.Err = errors.New("bad stat cache: a partial restore record without a partial restore")
	}
}

// readID reads a snapshot id.
func readID(d *format.Decoder) format.ID {
	var id format.ID
	if d.Err != nil {
		return id
	}
	if len(d.B) < len(id) {
		d.Err = errors.New("bad stat cache: truncated")
		return id
	}
	copy(id[:], d.B)
	d.B = d.B[len(id):]
	return id
}

// DecodeStatCache reads either encoding. The cache is local and written
// only by statepack, but a damaged one must fail, not be trusted.
func DecodeStatCache(data []byte) (*StatCache, error) {
	magic := ""
	if len(data) >= 36 {
		magic = string(data[:4])
	}
	if magic != statCacheMagic && magic != StatCacheMagicV1 && magic != statCacheMagicV3 {
		return nil, errors.New("bad stat cache")
	}
	withLists := magic != StatCacheMagicV1
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
	if magic == statCacheMagicV3 {
		readPartial(d, c)
	}
	if d.Err != nil {
		return nil, d.Err
	}
	return c, nil
}
