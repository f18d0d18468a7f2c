package chunker

import (
	"errors"
	"fmt"
	"io"
)

// minRefill is the least a refill asks the reader for, so that small Max
// values do not turn into many small reads.
const minRefill = 1 << 20

// maxEmptyReads is how many (0, nil) reads in a row are taken as a broken
// reader rather than a slow one, as bufio does.
const maxEmptyReads = 100

// errBadRead reports a reader that claimed to read more than it was given or
// a negative count, which would corrupt the buffer if trusted.
var errBadRead = errors.New("reader returned an invalid count")

// Chunker cuts the stream of one io.Reader at a time into content-defined
// chunks. It holds a fixed buffer, so it is meant to be reused with Reset
// (callers keep Chunkers in a pool); it is not safe for concurrent use.
type Chunker struct {
	r            io.Reader
	p            Params
	maskS, maskL uint64

	// buf[start:end] is read but not yet returned. len(buf) >= 2*Max, so a
	// refill always leaves at least Max bytes to cut from unless the stream
	// ended.
	buf        []byte
	start, end int

	eof bool  // r has reported io.EOF; buf[start:end] is all that is left
	err error // sticky, wrapped read error
}

// New returns a Chunker that reads from r and cuts with p. It fails only if p
// is invalid. The buffer, Max+max(Max, 1 MiB) bytes, is allocated here once.
// r may be nil for a Chunker made ahead of time for a pool; Reset must then
// give it a reader before Next is called.
func New(r io.Reader, p Params) (*Chunker, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	c := &Chunker{
		p:   p,
		buf: make([]byte, p.Max+max(p.Max, minRefill)),
	}
	c.maskS, c.maskL = p.masks()
	c.Reset(r)
	return c, nil
}

// Params returns the parameters c cuts with, so a caller holding a pooled
// Chunker can check that it matches the repository's config.
func (c *Chunker) Params() Params { return c.p }

// Reset makes c cut a new stream read from r, as if newly made by New with
// the same Params, keeping its buffer so that pooled Chunkers do not
// allocate. Chunks returned before Reset must not be used afterwards.
func (c *Chunker) Reset(r io.Reader) {
	c.r = r
	c.start, c.end = 0, 0
	c.eof = false
	c.err = nil
}

// Next returns the next chunk. The slice aliases an internal buffer and is
// valid only until the next call to Next or Reset; its capacity is limited to
// its length, so appending to it cannot overwrite the buffer. After the last
// chunk Next returns nil, io.EOF. An empty reader yields io.EOF at once (no
// empty chunk).
//
// Read errors are returned wrapped (errors.Is finds the reader's error) and
// are sticky. Chunks whose boundary the data already read fixes are still
// returned first; the error is returned where the stream would otherwise
// have to end early, so a failed read never yields a truncated chunk as if it
// were the last one.
func (c *Chunker) Next() ([]byte, error) {
	if c.end-c.start < c.p.Max && !c.eof && c.err == nil {
		c.fill()
	}
	avail := c.end - c.start
	if c.err != nil && avail < c.p.Max {
		return nil, c.err
	}
	if avail == 0 {
		return nil, io.EOF
	}
	n := cut(c.buf[c.start:c.end], c.p.Min, c.p.Avg, c.p.Max, c.maskS, c.maskL)
	chunk := c.buf[c.start : c.start+n : c.start+n]
	c.start += n
	return chunk, nil
}

// fill moves the unread bytes to the front of the buffer and reads until the
// buffer is full, the reader ends, or it fails. Reading until full, as
// io.ReadFull does, copes with readers that return short reads, and with
// readers that return data together with io.EOF. Since fill runs only when
// fewer than Max bytes are unread and the buffer holds at least 2*Max, it
// copies less than Max bytes and reads at least Max per call.
func (c *Chunker) fill() {
	if c.start > 0 {
		c.end = copy(c.buf, c.buf[c.start:c.end])
		c.start = 0
	}
	empty := 0
	for c.end < len(c.buf) {
		n, err := c.r.Read(c.buf[c.end:])
		if n < 0 || n > len(c.buf)-c.end {
			c.err = fmt.Errorf("chunker: read: %w (%d)", errBadRead, n)
			return
		}
		c.end += n
		switch {
		case err == io.EOF:
			c.eof = true
			return
		case err != nil:
			c.err = fmt.Errorf("chunker: read: %w", err)
			return
		case n > 0:
			empty = 0
		default:
			empty++
			if empty >= maxEmptyReads {
				c.err = fmt.Errorf("chunker: read: %w", io.ErrNoProgress)
				return
			}
		}
	}
}

// Boundaries cuts all of data with p and returns the chunk lengths in order;
// they sum to len(data). It gives the same boundaries as a Chunker reading
// data, without copying, which makes it a convenience for tests and tools.
func Boundaries(data []byte, p Params) ([]int, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	maskS, maskL := p.masks()
	lengths := make([]int, 0, len(data)/p.Avg+1)
	for len(data) > 0 {
		n := cut(data, p.Min, p.Avg, p.Max, maskS, maskL)
		lengths = append(lengths, n)
		data = data[n:]
	}
	return lengths, nil
}

// cut returns the length of the chunk at the start of data, which holds
// either at least hi bytes or all that is left of the stream.
//
// The first lo bytes are skipped unhashed. A chunk of at most avg bytes ends
// after the first byte where the gear hash has the maskS bits clear; a longer
// one where it has the maskL bits clear; a chunk that reaches hi bytes, or
// the end of data, ends there. This is repository format 1: see the package
// comment before changing anything here. cutRef in the tests is the same
// rule written one byte at a time, and the tests hold cut to it.
func cut(data []byte, lo, avg, hi int, maskS, maskL uint64) int {
	n := len(data)
	if n <= lo {
		return n
	}
	if n > hi {
		n = hi
	}
	normal := min(avg, n)
	k, fp := scan(data[lo:normal], 0, maskS)
	if k > 0 {
		return lo + k
	}
	if k, _ = scan(data[normal:n], fp, maskL); k > 0 {
		return normal + k
	}
	return n
}

// scan rolls the gear hash fp over data and returns how many bytes it took
// until, after a byte, fp&mask == 0, with fp at that point; or 0 and the
// hash after all of data when that never happens.
//
// This loop is where chunking spends its time, so it takes two bytes per
// step. Written one byte at a time, fp = fp<<1 + gear[b] is a chain of a
// shift and an add per byte that the processor cannot overlap. Here the
// two new hashes are computed from fp independently,
//
//	f0 = fp<<1 + g0
//	f1 = fp<<2 + (g0<<1 + g1)   (= f0<<1 + g1)
//
// so the chain through fp is one shift-add per two bytes, and both are
// tested at once: mask is the top bits of the word, so f&mask == 0 is
// f <= ^mask, and the smaller of the two is the one to test. About 40%
// faster than one byte at a time (BenchmarkCut), same boundaries.
func scan(data []byte, fp, mask uint64) (int, uint64) {
	g := &gear
	lim := ^mask
	i := 0
	for ; i+2 <= len(data); i += 2 {
		b := data[i : i+2 : i+2]
		g0 := g[b[0]]
		f0 := fp<<1 + g0
		f1 := fp<<2 + (g0<<1 + g[b[1]])
		if min(f0, f1) <= lim {
			if f0 <= lim {
				return i + 1, f0
			}
			return i + 2, f1
		}
		fp = f1
	}
	if i < len(data) {
		fp = fp<<1 + g[data[i]]
		if fp <= lim {
			return i + 1, fp
		}
	}
	return 0, fp
}
