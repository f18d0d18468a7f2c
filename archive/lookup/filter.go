package lookup

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/statepack/statepack/archive/format"
	"golang.org/x/sync/errgroup"
)

// A lookup table's filter: a Bloom filter of every block id the table
// holds, published beside it as lookup/<tablesid>.filter. A push of new
// blocks asks about ids the remote mostly lacks; without the filter each
// of them costs a ranged read of its bucket (hundreds of requests for a
// 16 MiB state, each a round trip to S3), with it only the few the filter
// cannot rule out do. The filter only ever rules ids out: an id it lets
// through is looked up in its bucket as before, so a wrong filter can
// make push send a block the remote has (harmless, the bytes are sent
// twice), never skip one it lacks (invariant 1).
//
// Layout: "SPF1" | k u32 | m u64 (bits) | table id [32] | bits [m/8] |
// BLAKE3 of everything before [32]. Bit i of the filter is bits[i/8] >>
// (i%8) & 1. An id sets k bits: (h1 + j*h2) mod m for j < k, where h1 and
// h2|1 are its bytes 0-8 and 8-16 read little endian (ids are BLAKE3
// hashes: already uniform).

const (
	lookupFilterMagic  = "SPF1"
	lookupFilterSuffix = ".filter"
	lookupFilterHeader = 4 + 4 + 8 + 32
	// lookupFilterBits per entry and lookupFilterK hashes: a false
	// positive rate under 1%; 12 MiB for 10 million blocks.
	lookupFilterBits = 10
	lookupFilterK    = 7
	// maxLookupFilterBitsPerEntry and maxLookupFilterBytes bound the
	// filter a reader accepts, per entry of its table and in all, before
	// it allocates (invariant 5): what the writer writes, with room to
	// spare. Past 50 million blocks the writer keeps to the bound with
	// fewer bits per block: more false positives, each one bucket read.
	maxLookupFilterBitsPerEntry = 2 * lookupFilterBits
	maxLookupFilterBytes        = 64 << 20
)

// Filter is a lookup table's filter, verified against its hash and its
// table (CheckLookupFilter).
type Filter struct {
	k    int
	m    uint64
	bits []byte
}

// FilterName is the object name of the filter of table id.
func FilterName(id format.ID) string { return TableName(id) + lookupFilterSuffix }

func newLookupFilter(entries int) *Filter {
	m := (uint64(max(entries, 1))*lookupFilterBits + 63) / 64 * 64
	m = min(m, (maxLookupFilterBytes-lookupFilterHeader-32)*8/64*64)
	return &Filter{k: lookupFilterK, m: m, bits: make([]byte, m/8)}
}

func (f *Filter) add(id format.ID) {
	h1, h2 := binary.LittleEndian.Uint64(id[:8]), binary.LittleEndian.Uint64(id[8:16])|1
	for j := range uint64(f.k) {
		i := (h1 + j*h2) % f.m
		f.bits[i/8] |= 1 << (i % 8)
	}
}

// mayHold reports false only for ids the table does not hold.
func (f *Filter) mayHold(id format.ID) bool {
	h1, h2 := binary.LittleEndian.Uint64(id[:8]), binary.LittleEndian.Uint64(id[8:16])|1
	for j := range uint64(f.k) {
		i := (h1 + j*h2) % f.m
		if f.bits[i/8]&(1<<(i%8)) == 0 {
			return false
		}
	}
	return true
}

// buildLookupFilter makes the filter of the open lookup file c, reading
// its entries bucket by bucket (each verified), and encodes it.
func buildLookupFilter(c *File) ([]byte, error) {
	f := newLookupFilter(c.entries)
	var buf []byte
	for b := range lookupBuckets {
		var err error
		if buf, err = c.bucket(b, buf); err != nil {
			return nil, err
		}
		for off := 0; off < len(buf); off += lookupEntrySize {
			f.add(format.ID(buf[off : off+32]))
		}
	}
	out := make([]byte, 0, lookupFilterHeader+len(f.bits)+32)
	out = append(out, lookupFilterMagic...)
	out = binary.LittleEndian.AppendUint32(out, uint32(f.k))
	out = binary.LittleEndian.AppendUint64(out, f.m)
	id := c.id()
	out = append(out, id[:]...)
	out = append(out, f.bits...)
	sum := format.Hash(out)
	return append(out, sum[:]...), nil
}

// decodeLookupFilter checks a filter's bytes against their hash, the
// table they were made for and the bounds, and returns it.
func decodeLookupFilter(data []byte, table *File) (*Filter, error) {
	if len(data) < lookupFilterHeader+32 || string(data[:4]) != lookupFilterMagic {
		return nil, fmt.Errorf("not a lookup filter: %w", errLookupDamaged)
	}
	body := data[:len(data)-32]
	if sum := format.Hash(body); !bytes.Equal(sum[:], data[len(body):]) {
		return nil, fmt.Errorf("does not match its hash: %w", errLookupDamaged)
	}
	k := binary.LittleEndian.Uint32(body[4:])
	m := binary.LittleEndian.Uint64(body[8:])
	if format.ID(body[16:48]) != table.id() {
		return nil, fmt.Errorf("made for another table: %w", errLookupDamaged)
	}
	bits := body[lookupFilterHeader:]
	if k < 1 || k > 32 || m == 0 || m%8 != 0 || m/8 != uint64(len(bits)) {
		return nil, fmt.Errorf("k %d, %d bits in %d bytes: %w", k, m, len(bits), errLookupDamaged)
	}
	return &Filter{k: int(k), m: m, bits: bits}, nil
}

// maxFilterSize is the largest filter object accepted for table c.
func maxFilterSize(c *File) int64 {
	return min(int64(lookupFilterHeader+32)+int64(max(c.entries, 64))*maxLookupFilterBitsPerEntry/8, maxLookupFilterBytes)
}

// FetchLookupFilter reads the filter of table t, unchecked, so that it
// can be read while the table is opened. Before the table's entry count
// is known, the entries it may hold bound it: no more than its listed
// size has room for (49 bytes each), nor than the listed index objects
// of listedBytes hold (45 bytes each), at maxLookupFilterBitsPerEntry.
func (f *Finder) FetchLookupFilter(ctx context.Context, t Table, listedBytes int64) ([]byte, error) {
	name := FilterName(t.ID)
	entries := max(min(t.Size/lookupEntrySize, listedBytes/format.PackEntrySize), 64)
	limit := min(lookupFilterHeader+32+entries*maxLookupFilterBitsPerEntry/8+1024, maxLookupFilterBytes)
	if t.FilterSize > limit {
		return nil, fmt.Errorf("%s: %s: %d bytes for a table of %d: %w", f.be.Location(), name, t.FilterSize, t.Size, errLookupDamaged)
	}
	if parts := min(lookupFilterParts, (t.FilterSize+lookupFilterPart-1)/lookupFilterPart); parts > 1 {
		return f.fetchInParts(ctx, name, t.FilterSize, parts)
	}
	data, err := f.read.ReadAtMost(ctx, name, limit, t.FilterSize)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: %s: larger than %d bytes: %w", f.be.Location(), name, limit, errLookupDamaged)
	}
	return data, nil
}

// lookupFilterParts ranged reads at once fetch a filter larger than
// lookupFilterPart: one GET stream delivers a fraction of what a few do
// (a 12 MiB filter took 22 ms in one stream from MinIO on the same
// machine, most of a cold push's lookup; S3 advises ranged reads in
// parallel for the same reason). A variable for tests.
var lookupFilterPart int64 = 2 << 20

const lookupFilterParts = 4

// fetchInParts reads the size bytes of object name, as listed, in parts
// ranged reads at once. The requests go out before the buffer is
// allocated (a 12 MiB allocation took 2 ms, the round trip of a ranged
// read). An object that is not the size listed fails with a short read
// or, when larger, the filter's hash check.
func (f *Finder) fetchInParts(ctx context.Context, name string, size, parts int64) ([]byte, error) {
	var data []byte
	ready := make(chan struct{})
	step := (size + parts - 1) / parts
	g, gctx := errgroup.WithContext(ctx)
	for off := int64(0); off < size; off += step {
		n := min(step, size-off)
		g.Go(func() error {
			rc, err := f.be.GetRange(gctx, name, off, n)
			if err != nil {
				return err
			}
			defer rc.Close()
			<-ready
			_, err = io.ReadFull(rc, data[off:off+n])
			return err
		})
	}
	data = make([]byte, size)
	close(ready)
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("read %s from %s: %w", name, f.be.Location(), err)
	}
	return data, nil
}

// CheckLookupFilter checks fetched filter bytes against table c: their
// size against its entries, their hash, and the table they name.
func (f *Finder) CheckLookupFilter(data []byte, c *File) (*Filter, error) {
	name := FilterName(c.id())
	if limit := maxFilterSize(c); int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: %s: %d bytes for a table of %d entries: %w", f.be.Location(), name, len(data), c.entries, errLookupDamaged)
	}
	filter, err := decodeLookupFilter(data, c)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", f.be.Location(), name, err)
	}
	return filter, nil
}
