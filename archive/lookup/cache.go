package lookup

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/statepack/statepack/archive/format"
	"github.com/zeebo/blake3"
	"github.com/zeebo/xxh3"
)

// The lookup cache is a local, sorted, verified copy of a remote
// repository's index, kept in a file of its own under the local store's
// cache, so that FindBlocks on a remote with millions of blocks reads a few
// kilobytes per block asked for instead of every index object. Its layout
// is in doc.go. It is only ever a cache: a file that fails any check is
// removed and rebuilt from the index objects, never trusted, because a
// wrong "the remote has block X" would make push skip X and leave a
// snapshot pointing at a missing block (invariant 1).

const (
	// lookupMagic opens a lookup file of this version.
	lookupMagic = "SPL1"
	// lookupName is the cache file inside the cache directory.
	lookupName = "index.lookup"
	// lookupHeaderSize: magic, object, pack and entry counts, repository
	// id hash [32], tables hash [32].
	lookupHeaderSize = 4 + 4 + 4 + 4 + 32 + 32
	// lookupHashed is the part of the header the tables hash covers.
	lookupHashed = 48
	// lookupBuckets: one fanout bucket per value of a block id's first
	// two bytes. With random ids, 10 million entries make buckets of
	// about 150 entries (7 KiB): one read per lookup.
	lookupBuckets = 1 << 16
	// lookupBucketHash is the size of a bucket's checksum in the fanout.
	lookupBucketHash = 16
	// lookupFanoutEntry: end of the bucket (entry number) u32, bucket hash.
	lookupFanoutEntry = 4 + lookupBucketHash
	lookupFanoutSize  = lookupBuckets * lookupFanoutEntry
	// lookupEntrySize: block id [32] | pack number u32 | offset u32 |
	// stored u32 | raw u32 | encoding u8. From the pack number on it is
	// an index entry's own tail, so building copies bytes, not fields.
	lookupEntrySize = 32 + 4 + format.PackEntrySize - 32
)

// Bounds. The cache file is local but read as untrusted: every count in
// it is checked against these and against the file's size before
// anything is allocated. A remote whose index exceeds them (or is skewed
// far from random ids, which only a hostile writer achieves) gets no
// cache, and FindBlocks scans its index objects as it would without one.
const (
	// maxLookupTableIDs bounds covered objects plus packs, the tables
	// held in memory while the cache is open: 64 MiB.
	maxLookupTableIDs = 1 << 21
	// maxLookupBucket bounds one bucket, the most one lookup reads.
	maxLookupBucket = 1 << 16
	// maxLookupPartition bounds the entries sharing a first id byte,
	// which building sorts in memory, two partitions at a time (about
	// 200 MiB at the bound; 256 million entries in all with random ids).
	maxLookupPartition = 1 << 20
	// lookupSpillBytes is how much of the entries being built is held in
	// memory before it goes to temporary files.
	lookupSpillBytes = 16 << 20
)

// When to merge: entries of index objects the cache does not cover are
// read on every FindBlocks, so once they are many (more than 1/8 of the
// cache, or a million, estimated from the listed sizes) or their objects
// are many, they are merged into a new cache file.
const (
	mergeMinEntries = 1 << 20
	mergeMaxObjects = 256
)

// lookupStaleAfter: temporary files older than this belong to a process
// that was killed while building, and are removed.
const lookupStaleAfter = time.Hour

var (
	// errLookupDamaged: the cache file failed a check. It is removed and
	// rebuilt.
	errLookupDamaged = errors.New("damaged")
	// errLookupTooBig: the index exceeds the cache's bounds; it is not
	// cached.
	errLookupTooBig = errors.New("index too large or too skewed to cache")
)

// File is an open cache file, or a lookup table on a repository
// (table.go), whose header, tables and fanout have been read and
// verified. Entries are read a bucket at a time, each verified against
// the fanout before it is used. Verify opens a table as one to check it
// (OpenLookupTable).
type File struct {
	path    string // for messages: the file's path or the object's location
	f       lookupReader
	size    int64  // of the whole file
	tables  []byte // header, objects, packs, fanout: verified
	objects int
	packs   int
	entries int
}

// lookupDamaged is the error for a cache file that failed a check.
func lookupDamaged(path, format string, args ...any) error {
	return fmt.Errorf("lookup cache %s: %s: %w", path, fmt.Sprintf(format, args...), errLookupDamaged)
}

// lookupReader is where a lookup file's bytes are: an *os.File for the
// local cache, ranged reads of an object for a table on a repository.
type lookupReader interface {
	io.ReaderAt
	io.Closer
}

// openLookup opens and verifies the cache file at path for the
// repository whose id hashes to repo. A missing file is reported with
// an error matching fs.ErrNotExist; any other failure matches
// errLookupDamaged.
func openLookup(path string, repo format.ID) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, lookupDamaged(path, "%v", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, lookupDamaged(path, "%v", err)
	}
	c, err := readLookup(f, st.Size(), path, repo, lookupBounds{objects: maxLookupTableIDs, packs: maxLookupTableIDs, entries: 1<<32 - 1})
	if err != nil {
		f.Close()
		return nil, err
	}
	return c, nil
}

// lookupBounds is what a lookup file's header may claim.
type lookupBounds struct {
	objects int
	packs   int64
	entries int64
}

// readLookup reads the header and tables of a lookup file of size bytes
// (two reads: the header, then everything up to the entries). Counts are
// bounded (for a table on a repository, by what the listed index can
// hold: tableBounds; one that covers more objects than are listed is
// stale anyway), then
// checked against the size, before the tables are allocated; then the
// tables are checked against their hash and for order.
func readLookup(f lookupReader, size int64, path string, repo format.ID, bound lookupBounds) (*File, error) {
	var hdr [lookupHeaderSize]byte
	if size < lookupHeaderSize {
		return nil, lookupDamaged(path, "%d bytes, shorter than its header", size)
	}
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return nil, lookupDamaged(path, "read header: %v", err)
	}
	if string(hdr[:4]) != lookupMagic {
		return nil, lookupDamaged(path, "not a lookup cache of this version")
	}
	if format.ID(hdr[16:48]) != repo {
		return nil, lookupDamaged(path, "made for another repository")
	}
	objects := int(binary.LittleEndian.Uint32(hdr[4:]))
	packs := int(binary.LittleEndian.Uint32(hdr[8:]))
	entries := int64(binary.LittleEndian.Uint32(hdr[12:]))
	if objects+packs > maxLookupTableIDs || objects > bound.objects || int64(packs) > bound.packs || entries > bound.entries {
		return nil, lookupDamaged(path, "claims %d objects, %d packs and %d entries", objects, packs, entries)
	}
	tablesLen := lookupHeaderSize + 32*(objects+packs) + lookupFanoutSize
	if want := int64(tablesLen) + entries*lookupEntrySize; size != want {
		return nil, lookupDamaged(path, "%d bytes, its header says %d", size, want)
	}
	tables := make([]byte, tablesLen)
	if _, err := f.ReadAt(tables, 0); err != nil {
		return nil, lookupDamaged(path, "read tables: %v", err)
	}
	sum := lookupTablesHash(tables)
	if !bytes.Equal(tables[:lookupHashed], hdr[:lookupHashed]) || !bytes.Equal(sum[:], tables[lookupHashed:lookupHeaderSize]) {
		return nil, lookupDamaged(path, "header and tables do not match their hash")
	}
	c := &File{path: path, f: f, size: size, tables: tables, objects: objects, packs: packs, entries: int(entries)}
	if err := c.checkTables(); err != nil {
		return nil, err
	}
	return c, nil
}

// checkTables checks what the hash cannot: that the covered objects are
// strictly sorted and the fanout describes buckets that tile the entries
// in order, none larger than one read may be.
func (c *File) checkTables() error {
	for i := 1; i < c.objects; i++ {
		if a, b := c.object(i-1), c.object(i); bytes.Compare(a[:], b[:]) >= 0 {
			return lookupDamaged(c.path, "covered objects out of order")
		}
	}
	var prev uint32
	for b := range lookupBuckets {
		end := c.bucketEnd(b)
		if end < prev || end-prev > maxLookupBucket {
			return lookupDamaged(c.path, "bucket %04x ends at %d after %d", b, end, prev)
		}
		prev = end
	}
	if int(prev) != c.entries {
		return lookupDamaged(c.path, "fanout covers %d of %d entries", prev, c.entries)
	}
	return nil
}

// lookupTablesHash is the BLAKE3 of the hashed header fields, the object
// and pack tables and the fanout: everything an open reads.
func lookupTablesHash(tables []byte) [32]byte {
	h := blake3.New()
	_, _ = h.Write(tables[:lookupHashed])
	_, _ = h.Write(tables[lookupHeaderSize:])
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// lookupBucketSum is the checksum the fanout keeps for one bucket:
// XXH3-128 of its entries, seeded with its number so that a bucket's
// bytes verify only in their place. It guards against damage, like the
// tables' BLAKE3, which is keyless too (whoever can write the store can
// write either); BLAKE3 of 65,536 buckets of a few KiB each runs at a
// fraction of XXH3's speed and would be half the cost of a build.
func lookupBucketSum(bucket int, data []byte) [lookupBucketHash]byte {
	sum := xxh3.Hash128Seed(data, uint64(bucket))
	var out [lookupBucketHash]byte
	binary.BigEndian.PutUint64(out[:8], sum.Hi)
	binary.BigEndian.PutUint64(out[8:], sum.Lo)
	return out
}

// repoKey binds a cache file to one repository: a remote URL that now
// holds another repository does not inherit the old one's cache.
func repoKey(cfg format.Config) format.ID {
	return format.Hash([]byte("statepack lookup cache\x00" + cfg.ID))
}

// Close closes the file.
func (c *File) Close() error { return c.f.Close() }

func (c *File) object(i int) format.ID {
	off := lookupHeaderSize + 32*i
	return format.ID(c.tables[off : off+32])
}

func (c *File) packTable() []byte {
	off := lookupHeaderSize + 32*c.objects
	return c.tables[off : off+32*c.packs]
}

func (c *File) pack(n uint32) format.ID {
	off := lookupHeaderSize + 32*(c.objects+int(n))
	return format.ID(c.tables[off : off+32])
}

func (c *File) fanout(b int) []byte {
	off := lookupHeaderSize + 32*(c.objects+c.packs) + b*lookupFanoutEntry
	return c.tables[off : off+lookupFanoutEntry]
}

// bucketEnd is the entry number where bucket b ends; -1 is the start.
func (c *File) bucketEnd(b int) uint32 {
	if b < 0 {
		return 0
	}
	return binary.LittleEndian.Uint32(c.fanout(b))
}

// bucket reads bucket b into buf and verifies it against the fanout.
func (c *File) bucket(b int, buf []byte) ([]byte, error) {
	start, end := c.bucketEnd(b-1), c.bucketEnd(b)
	n := int(end-start) * lookupEntrySize
	buf = slices.Grow(buf[:0], n)[:n]
	off := int64(len(c.tables)) + int64(start)*lookupEntrySize
	if _, err := c.f.ReadAt(buf, off); err != nil {
		return nil, lookupDamaged(c.path, "read bucket %04x: %v", b, err)
	}
	if sum := lookupBucketSum(b, buf); !bytes.Equal(sum[:], c.fanout(b)[4:]) {
		return nil, lookupDamaged(c.path, "bucket %04x does not match its hash", b)
	}
	return buf, nil
}

// Covers compares the covered objects with a listing of the index
// (sorted). It returns the listed objects the cache does not cover, and
// false when the cache covers an object that is no longer listed: the
// index was rewritten (prune, repair) and the cache must be rebuilt.
func (c *File) Covers(listed []IndexObject) ([]IndexObject, bool) {
	var uncovered []IndexObject
	i := 0
	for _, o := range listed {
		if i < c.objects {
			id := c.object(i)
			switch d := bytes.Compare(id[:], o.ID[:]); {
			case d < 0:
				return nil, false // listed in order: id was not listed
			case d == 0:
				i++
				continue
			}
		}
		uncovered = append(uncovered, o)
	}
	return uncovered, i == c.objects
}

// find adds to found the location of every wanted block the cache holds
// and found lacks. Wanted ids are sorted, so each bucket is read once
// however many of them it holds.
func (c *File) find(want map[format.ID]struct{}, found map[format.ID]format.Location) error {
	ids := make([]format.ID, 0, len(want))
	for id := range want {
		if _, ok := found[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b format.ID) int { return bytes.Compare(a[:], b[:]) })
	var buf []byte
	for i := 0; i < len(ids); {
		b := lookupBucketOf(ids[i])
		j := i + 1
		for j < len(ids) && lookupBucketOf(ids[j]) == b {
			j++
		}
		var err error
		if buf, err = c.bucket(b, buf); err != nil {
			return err
		}
		for _, id := range ids[i:j] {
			loc, ok, err := c.search(buf, id)
			if err != nil {
				return err
			}
			if ok {
				found[id] = loc
			}
		}
		i = j
	}
	return nil
}

func lookupBucketOf(id format.ID) int { return int(id[0])<<8 | int(id[1]) }

// search finds id in a verified bucket. An entry that verified but makes
// no sense (a pack number outside the table, impossible lengths) means
// the file was not written by this code: it is reported as damage.
func (c *File) search(bucket []byte, id format.ID) (format.Location, bool, error) {
	n := len(bucket) / lookupEntrySize
	k := sort.Search(n, func(k int) bool {
		return bytes.Compare(bucket[k*lookupEntrySize:k*lookupEntrySize+32], id[:]) >= 0
	})
	if k == n {
		return format.Location{}, false, nil
	}
	e := bucket[k*lookupEntrySize : (k+1)*lookupEntrySize]
	if format.ID(e[:32]) != id {
		return format.Location{}, false, nil
	}
	pack := binary.LittleEndian.Uint32(e[32:])
	loc := format.Location{
		Offset:   binary.LittleEndian.Uint32(e[36:]),
		Stored:   binary.LittleEndian.Uint32(e[40:]),
		Raw:      binary.LittleEndian.Uint32(e[44:]),
		Encoding: e[48],
	}
	if int(pack) >= c.packs || format.CheckEntry(loc.Offset, loc.Stored, loc.Raw, loc.Encoding) != nil {
		return format.Location{}, false, lookupDamaged(c.path, "entry for block %s is invalid", id.Short())
	}
	loc.Pack = c.pack(pack)
	return loc, true, nil
}

// sortLookupGroup sorts entries sharing their first three id bytes:
// almost always none or one, so insertion sort, unless a skewed index
// makes the group large.
func sortLookupGroup(g []lookupEntry) {
	if len(g) > 16 {
		slices.SortFunc(g, compareLookupEntries)
		return
	}
	for i := 1; i < len(g); i++ {
		for j := i; j > 0 && compareLookupEntries(g[j-1], g[j]) > 0; j-- {
			g[j-1], g[j] = g[j], g[j-1]
		}
	}
}

// lookupEntry is one entry while building: fixed size, no pointers.
type lookupEntry struct {
	id       format.ID
	pack     uint32
	offset   uint32
	stored   uint32
	raw      uint32
	encoding uint8
}

// compareLookupEntries orders by block id, then by pack number and
// offset, so that of several locations of one block the first sorts
// first: the one from the earliest index object (pack numbers follow the
// order objects were added in), the earliest in that object.
func compareLookupEntries(a, b lookupEntry) int {
	x, y := binary.BigEndian.Uint64(a.id[:8]), binary.BigEndian.Uint64(b.id[:8])
	if x != y {
		return cmp.Compare(x, y)
	}
	if d := bytes.Compare(a.id[8:], b.id[8:]); d != 0 {
		return d
	}
	if a.pack != b.pack {
		return cmp.Compare(a.pack, b.pack)
	}
	return cmp.Compare(a.offset, b.offset)
}

func decodeLookupEntry(e *lookupEntry, b []byte) {
	e.id = format.ID(b[:32])
	e.pack = binary.LittleEndian.Uint32(b[32:])
	e.offset = binary.LittleEndian.Uint32(b[36:])
	e.stored = binary.LittleEndian.Uint32(b[40:])
	e.raw = binary.LittleEndian.Uint32(b[44:])
	e.encoding = b[48]
}

func appendLookupEntry(b []byte, e *lookupEntry) []byte {
	b = append(b, e.id[:]...)
	b = binary.LittleEndian.AppendUint32(b, e.pack)
	b = binary.LittleEndian.AppendUint32(b, e.offset)
	b = binary.LittleEndian.AppendUint32(b, e.stored)
	b = binary.LittleEndian.AppendUint32(b, e.raw)
	return append(b, e.encoding)
}

// lookupBuilder builds a cache file from index objects, optionally on
// top of an existing one (a merge), in bounded memory: records are
// grouped by their id's first byte into 256 streams (plus one of pack
// ids), held in memory and, past lookupSpillBytes, appended to one
// temporary spill file in runs; then each partition is gathered, sorted
// and written in order. A failure of the builder (a full disk, an index
// over the bounds) never fails the scan that feeds it: it is kept in err
// and reported by finish, and the scan's answers stand.
type lookupBuilder struct {
	dir     string      // the cache directory
	base    *File       // the cache being merged into, or nil
	streams [257][]byte // records by first id byte, then pack ids
	mem     int         // bytes in streams
	spill   *os.File    // made on the first spill
	runs    [][257]spillChunk
	nPacks  uint32
	entries int
	err     error
	pool    sync.Pool // of *objectRecords
}

// packStream is the stream of pack ids, after the 256 of records.
const packStream = 256

// spillChunk is where one stream's bytes of one run are in the spill.
type spillChunk struct{ off, n int64 }

// newLookupBuilder starts a cache in dir; with base, a merge whose pack
// numbers continue base's, so that every location base knows stays the
// first one seen.
func newLookupBuilder(dir string, base *File) *lookupBuilder {
	b := &lookupBuilder{dir: dir, base: base}
	if base != nil {
		b.nPacks, b.entries = uint32(base.packs), base.entries
	}
	return b
}

// objectRecords is one index object's valid entries in the cache's
// record form, grouped by their first id byte, with pack numbers counted
// from 0 within the object. The goroutine that read the object makes it,
// so that the per-entry work runs in parallel; the builder takes objects
// in order and only renumbers and copies.
type objectRecords struct {
	packs []byte // pack ids, 32 bytes each, in number order
	recs  []byte
	ends  [256]int // end of each first byte's records in recs
}

// validIndexEntry: entries that fail the index's own checks are never
// trusted, so never cached.
func validIndexEntry(raw []byte) bool {
	return format.CheckEntry(binary.LittleEndian.Uint32(raw[32:]), binary.LittleEndian.Uint32(raw[36:]), binary.LittleEndian.Uint32(raw[40:]), raw[44]) == nil
}

// fill partitions the valid entries of a well-formed index object (one
// scanIndex accepted), given how many there are per first byte.
func (o *objectRecords) fill(data []byte, counts *[256]int) {
	next, total := [256]int{}, 0
	for i, c := range counts {
		next[i] = total * lookupEntrySize
		total += c
		o.ends[i] = total * lookupEntrySize
	}
	o.recs = slices.Grow(o.recs[:0], total*lookupEntrySize)[:total*lookupEntrySize]
	o.packs = o.packs[:0]
	var last format.ID
	num := -1
	_ = format.ScanIndex(data, func(pack format.ID, raw []byte) error {
		if !validIndexEntry(raw) {
			return nil
		}
		if num < 0 || pack != last {
			last, num = pack, num+1
			o.packs = append(o.packs, pack[:]...)
		}
		rec := o.recs[next[raw[0]]:]
		next[raw[0]] += lookupEntrySize
		copy(rec[:32], raw[:32])
		binary.LittleEndian.PutUint32(rec[32:], uint32(num))
		copy(rec[36:lookupEntrySize], raw[32:format.PackEntrySize])
		return nil
	})
}

// records returns an objectRecords to fill, reused from earlier objects.
func (b *lookupBuilder) records() *objectRecords {
	if o, ok := b.pool.Get().(*objectRecords); ok {
		return o
	}
	return &objectRecords{}
}

// addObject adds the next object's records: its packs get the next pack
// numbers, so that an earlier object's location of a block sorts first.
func (b *lookupBuilder) addObject(o *objectRecords) {
	defer b.pool.Put(o)
	if b.err != nil {
		return
	}
	np, n := len(o.packs)/32, len(o.recs)/lookupEntrySize
	if int(b.nPacks)+np > maxLookupTableIDs || b.entries+n > 1<<32-1 {
		b.err = errLookupTooBig
		return
	}
	for off := 32; off < len(o.recs); off += lookupEntrySize {
		binary.LittleEndian.PutUint32(o.recs[off:], binary.LittleEndian.Uint32(o.recs[off:])+b.nPacks)
	}
	b.nPacks += uint32(np)
	b.entries += n
	b.streams[packStream] = append(b.streams[packStream], o.packs...)
	start := 0
	for p, end := range o.ends {
		b.streams[p] = append(b.streams[p], o.recs[start:end]...)
		start = end
	}
	b.mem += len(o.packs) + len(o.recs)
	if b.mem >= lookupSpillBytes {
		b.err = b.spillRun()
	}
}

// spillRun appends what every stream holds to the spill file, as one
// run, and records where each stream's part of it is.
func (b *lookupBuilder) spillRun() error {
	if b.spill == nil {
		if err := os.MkdirAll(b.dir, 0o755); err != nil {
			return fmt.Errorf("lookup cache %s: %w", b.dir, err)
		}
		f, err := os.CreateTemp(b.dir, ".lookup-spill-*")
		if err != nil {
			return fmt.Errorf("lookup cache %s: %w", b.dir, err)
		}
		b.spill = f
	}
	off, err := b.spill.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("lookup cache %s: %w", b.spill.Name(), err)
	}
	var run [257]spillChunk
	for i := range b.streams {
		if _, err := b.spill.Write(b.streams[i]); err != nil {
			return fmt.Errorf("lookup cache %s: %w", b.spill.Name(), err)
		}
		run[i] = spillChunk{off, int64(len(b.streams[i]))}
		off += run[i].n
		b.streams[i] = b.streams[i][:0]
	}
	b.runs = append(b.runs, run)
	b.mem = 0
	return nil
}

// streamSize is how many bytes stream i holds, spilled and in memory.
func (b *lookupBuilder) streamSize(i int) int64 {
	n := int64(len(b.streams[i]))
	for _, run := range b.runs {
		n += run[i].n
	}
	return n
}

// appendStream appends stream i, spilled runs first, to dst.
func (b *lookupBuilder) appendStream(dst []byte, i int) ([]byte, error) {
	for _, run := range b.runs {
		c := run[i]
		k := len(dst)
		dst = dst[:k+int(c.n)]
		if _, err := b.spill.ReadAt(dst[k:], c.off); err != nil {
			return nil, fmt.Errorf("read %s: %w", b.spill.Name(), err)
		}
	}
	return append(dst, b.streams[i]...), nil
}

// copyPacks writes the new pack ids, spilled runs first, to w.
func (b *lookupBuilder) copyPacks(w io.Writer) error {
	for _, run := range b.runs {
		c := run[packStream]
		if _, err := io.Copy(w, io.NewSectionReader(b.spill, c.off, c.n)); err != nil {
			return fmt.Errorf("read %s: %w", b.spill.Name(), err)
		}
	}
	_, err := w.Write(b.streams[packStream])
	return err
}

// cleanup removes the spill file.
func (b *lookupBuilder) cleanup() {
	if b.spill != nil {
		b.spill.Close()
		_ = os.Remove(b.spill.Name())
		b.spill = nil
	}
}

// pendingDir holds verified copies of the index objects the cache file
// does not cover yet, which FindBlocks reads on every call until they
// are merged in.
func pendingDir(dir string) string { return filepath.Join(dir, "pending") }

// readPendingCopy reads the kept copy of index object id. A copy that
// does not hash to its id is removed and reported missing: it is read
// from the repository again.
func readPendingCopy(dir string, id format.ID) ([]byte, bool) {
	p := filepath.Join(pendingDir(dir), id.String())
	f, err := os.Open(p)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() > format.MaxIndexObjectSize {
		_ = os.Remove(p)
		return nil, false
	}
	data := make([]byte, st.Size())
	if _, err := io.ReadFull(f, data); err != nil || format.Hash(data) != id {
		_ = os.Remove(p)
		return nil, false
	}
	return data, true
}

// writePendingCopy keeps a verified copy of index object id, written to
// a unique temporary name and renamed, since processes may share the
// store. Failing to keep one only costs reading the object again.
func writePendingCopy(dir string, id format.ID, data []byte) {
	pd := pendingDir(dir)
	if err := os.MkdirAll(pd, 0o755); err != nil {
		return
	}
	f, err := os.CreateTemp(pd, ".tmp-*")
	if err != nil {
		return
	}
	_, werr := f.Write(data)
	if cerr := f.Close(); werr == nil && cerr == nil {
		_ = os.Rename(f.Name(), filepath.Join(pd, id.String()))
	}
	_ = os.Remove(f.Name())
}

// removeStaleLookupTemps removes what builders killed mid-way left in
// dir. Recent ones may belong to another process sharing the store.
func removeStaleLookupTemps(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".lookup-") {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > lookupStaleAfter {
			_ = os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}

// finish writes the cache file for the covered objects (sorted) to a
// unique temporary name and renames it over path, so that processes
// sharing the store see the old file or the new one, never a mix. The
// tables hash is computed from what was written, read back.
func (b *lookupBuilder) finish(stop func() error, objects []format.ID, repo format.ID, path string) (err error) {
	defer b.cleanup()
	if b.err != nil {
		return fmt.Errorf("lookup cache %s: %w", path, b.err)
	}
	if len(objects)+int(b.nPacks) > maxLookupTableIDs {
		return fmt.Errorf("lookup cache %s: %d objects and %d packs: %w", path, len(objects), b.nPacks, errLookupTooBig)
	}
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return fmt.Errorf("lookup cache %s: %w", path, err)
	}
	removeStaleLookupTemps(b.dir)
	out, err := os.CreateTemp(b.dir, ".lookup-*.tmp")
	if err != nil {
		return fmt.Errorf("lookup cache %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			out.Close()
			os.Remove(out.Name())
		}
	}()
	fanout := make([]byte, lookupFanoutSize)
	total, err := b.writeBody(stop, out, objects, fanout)
	if err != nil {
		return fmt.Errorf("lookup cache %s: %w", path, err)
	}
	var hdr [lookupHeaderSize]byte
	copy(hdr[:], lookupMagic)
	binary.LittleEndian.PutUint32(hdr[4:], uint32(len(objects)))
	binary.LittleEndian.PutUint32(hdr[8:], b.nPacks)
	binary.LittleEndian.PutUint32(hdr[12:], total)
	copy(hdr[16:48], repo[:])
	fanoutOff := int64(lookupHeaderSize) + 32*int64(len(objects)+int(b.nPacks))
	h := blake3.New()
	_, _ = h.Write(hdr[:lookupHashed])
	if _, err := io.Copy(h, io.NewSectionReader(out, lookupHeaderSize, fanoutOff-lookupHeaderSize)); err != nil {
		return fmt.Errorf("lookup cache %s: %w", path, err)
	}
	_, _ = h.Write(fanout)
	h.Sum(hdr[lookupHashed:lookupHashed])
	if _, err := out.WriteAt(fanout, fanoutOff); err != nil {
		return fmt.Errorf("lookup cache %s: %w", path, err)
	}
	if _, err := out.WriteAt(hdr[:], 0); err != nil {
		return fmt.Errorf("lookup cache %s: %w", path, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("lookup cache %s: %w", path, err)
	}
	if err := os.Rename(out.Name(), path); err != nil {
		return fmt.Errorf("lookup cache %s: %w", path, err)
	}
	return nil
}

// writeBody writes everything but the header and fanout (left as zeros
// and filled in by finish): the covered objects, the pack table, then
// the entries partition by partition. It fills fanout and returns the
// number of entries written.
func (b *lookupBuilder) writeBody(stop func() error, out *os.File, objects []format.ID, fanout []byte) (uint32, error) {
	w := bufio.NewWriterSize(out, 1<<20)
	if _, err := w.Write(make([]byte, lookupHeaderSize)); err != nil {
		return 0, err
	}
	for _, id := range objects {
		if _, err := w.Write(id[:]); err != nil {
			return 0, err
		}
	}
	if b.base != nil {
		if _, err := w.Write(b.base.packTable()); err != nil {
			return 0, err
		}
	}
	if err := b.copyPacks(w); err != nil {
		return 0, err
	}
	if _, err := w.Write(fanout); err != nil {
		return 0, err
	}
	var total uint32
	err := b.eachPartition(func(sp *sortedPartition) error {
		if err := stop(); err != nil {
			return err
		}
		if _, err := w.Write(sp.data); err != nil {
			return err
		}
		for i, end := range sp.ends {
			f := fanout[(sp.p<<8|i)*lookupFanoutEntry:]
			binary.LittleEndian.PutUint32(f, total+uint32(end))
			copy(f[4:lookupFanoutEntry], sp.sums[i][:])
		}
		total += uint32(len(sp.data) / lookupEntrySize)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return total, w.Flush()
}

// sortedPartition is partition p ready to write: its entries encoded,
// sorted, one per block id, with the end of each of its 256 buckets
// (counted in entries from the partition's start) and their hashes.
type sortedPartition struct {
	p    int
	data []byte
	ends [256]int
	sums [256][lookupBucketHash]byte
	bufs *partitionBufs
	err  error
}

// partitionBufs are the buffers one partition is sorted in, reused.
type partitionBufs struct {
	raw    []byte // the partition's records as gathered, then as written
	bucket []byte
	sorted []lookupEntry
	counts [1 << 16]int32
}

// lookupSmallPartition: below this many entries a partition is sorted
// directly; above, the counting sort's fixed cost (65,536 groups) is
// the smaller one.
const lookupSmallPartition = 1 << 10

// lookupSortWorkers sort and hash partitions while the writer writes.
const lookupSortWorkers = 2

// eachPartition hands the 256 sorted partitions to fn in order. Workers
// sort and hash the next ones meanwhile, each taking a set of buffers
// before a partition number, so that the partition fn waits for always
// has its buffers: there are workers+1 sets, so at most that many
// partitions are in memory.
func (b *lookupBuilder) eachPartition(fn func(*sortedPartition) error) error {
	free := make(chan *partitionBufs, lookupSortWorkers+1)
	for range lookupSortWorkers + 1 {
		free <- &partitionBufs{}
	}
	var results [256]chan *sortedPartition
	for p := range results {
		results[p] = make(chan *sortedPartition, 1)
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(quit)
	var next atomic.Int32
	for range lookupSortWorkers {
		wg.Go(func() {
			for {
				var bufs *partitionBufs
				select {
				case bufs = <-free:
				case <-quit:
					return
				}
				p := int(next.Add(1)) - 1
				if p >= len(results) {
					return
				}
				results[p] <- b.partition(p, bufs)
			}
		})
	}
	for _, ch := range results {
		sp := <-ch
		if sp.err != nil {
			return sp.err
		}
		if err := fn(sp); err != nil {
			return err
		}
		free <- sp.bufs
	}
	return nil
}

// partition gathers, sorts and encodes partition p. A large partition is
// first scattered by the id's second and third bytes (a counting sort),
// so that what remains is sorting groups of about one entry.
func (b *lookupBuilder) partition(p int, pb *partitionBufs) *sortedPartition {
	sp := &sortedPartition{p: p, bufs: pb}
	raw, err := b.gather(p, pb)
	if err != nil {
		sp.err = err
		return sp
	}
	n := len(raw) / lookupEntrySize
	entries := slices.Grow(pb.sorted[:0], n)[:n]
	pb.sorted = entries
	if n < lookupSmallPartition {
		for i := range entries {
			decodeLookupEntry(&entries[i], raw[i*lookupEntrySize:])
		}
		slices.SortFunc(entries, compareLookupEntries)
		entries = slices.CompactFunc(entries, func(a, b lookupEntry) bool { return a.id == b.id })
	} else {
		entries = sortByCounting(raw, entries, pb.counts[:])
	}
	// The records are sorted: raw is free to hold them as written.
	data := raw[:0]
	i := 0
	for bk := range sp.ends {
		start := len(data)
		for ; i < len(entries) && int(entries[i].id[1]) == bk; i++ {
			data = appendLookupEntry(data, &entries[i])
		}
		if (len(data)-start)/lookupEntrySize > maxLookupBucket {
			sp.err = errLookupTooBig
			return sp
		}
		sp.ends[bk] = len(data) / lookupEntrySize
		sp.sums[bk] = lookupBucketSum(p<<8|bk, data[start:])
	}
	sp.data = data
	return sp
}

// sortByCounting sorts the records of raw into entries (of the same
// length) by the id's second and third bytes, then each group of
// records sharing them, and drops all but the first of each block id.
func sortByCounting(raw []byte, entries []lookupEntry, counts []int32) []lookupEntry {
	clear(counts)
	for off := 0; off < len(raw); off += lookupEntrySize {
		counts[int(raw[off+1])<<8|int(raw[off+2])]++
	}
	var total int32
	for i, c := range counts {
		counts[i] = total
		total += c
	}
	for off := 0; off < len(raw); off += lookupEntrySize {
		g := int(raw[off+1])<<8 | int(raw[off+2])
		decodeLookupEntry(&entries[counts[g]], raw[off:])
		counts[g]++
	}
	// counts[g] is now the end of group g.
	out, start := 0, 0
	for _, end := range counts {
		switch n := int(end) - start; n {
		case 0:
		case 1:
			entries[out] = entries[start]
			out++
		default:
			group := entries[start:end]
			sortLookupGroup(group)
			out += copy(entries[out:], slices.CompactFunc(group, func(a, b lookupEntry) bool { return a.id == b.id }))
		}
		start = int(end)
	}
	return entries[:out]
}

// gather reads partition p's records into pb.raw: the base cache's
// buckets (each verified), then the new ones, spilled runs first.
func (b *lookupBuilder) gather(p int, pb *partitionBufs) ([]byte, error) {
	n := b.streamSize(p) / lookupEntrySize
	if b.base != nil {
		n += int64(b.base.bucketEnd(p<<8+255) - b.base.bucketEnd(p<<8-1))
	}
	if n > maxLookupPartition {
		return nil, errLookupTooBig
	}
	raw := slices.Grow(pb.raw[:0], int(n)*lookupEntrySize)
	if b.base != nil {
		for bk := p << 8; bk < (p+1)<<8; bk++ {
			var err error
			if pb.bucket, err = b.base.bucket(bk, pb.bucket); err != nil {
				return nil, err
			}
			raw = append(raw, pb.bucket...)
		}
	}
	raw, err := b.appendStream(raw, p)
	if err != nil {
		return nil, err
	}
	pb.raw = raw
	return raw, nil
}
