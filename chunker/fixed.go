package chunker

import (
	"bufio"
	"fmt"
	"io"
)

// MaxFixedSize is the largest chunk a Fixed cuts, the largest Max.
const MaxFixedSize = maxMax

// Fixed cuts a stream into chunks of one size; only the last may be
// shorter. It is for files made of fixed-size pages written in place
// (SQLite databases): there a page rewritten changes the one chunk holding
// it and no other, where content-defined chunks would put every scattered
// page write into a chunk of Avg bytes. Like Chunker it is meant to be
// reused with Reset and is not safe for concurrent use.
type Fixed struct {
	size int
	br   *bufio.Reader
	buf  []byte
	err  error // sticky: io.EOF after the last chunk, or a wrapped read error
}

// NewFixed returns a Fixed cutting chunks of size bytes, 1..MaxFixedSize.
// It reads ahead in 1 MiB reads, so small pages do not mean small reads.
func NewFixed(size int) (*Fixed, error) {
	if size < 1 || size > MaxFixedSize {
		return nil, fmt.Errorf("chunker: fixed size %d outside 1..%d", size, MaxFixedSize)
	}
	return &Fixed{size: size, br: bufio.NewReaderSize(nil, minRefill), buf: make([]byte, size), err: io.EOF}, nil
}

// Size is the length of every chunk but the last.
func (f *Fixed) Size() int { return f.size }

// Reset makes f cut a new stream read from r, keeping its buffers.
func (f *Fixed) Reset(r io.Reader) {
	f.br.Reset(&checkedReader{r: r})
	f.err = nil
}

// Next returns the next chunk, with the contract of Chunker.Next: the
// slice is valid until the next call, io.EOF follows the last chunk, and a
// read error is returned (sticky) instead of a chunk cut short by it.
func (f *Fixed) Next() ([]byte, error) {
	if f.err != nil {
		return nil, f.err
	}
	n, err := io.ReadFull(f.br, f.buf)
	switch err {
	case nil:
	case io.ErrUnexpectedEOF:
		f.err = io.EOF // a short last chunk: the stream ended inside a page
	case io.EOF:
		f.err = io.EOF
		return nil, io.EOF
	default:
		f.err = fmt.Errorf("chunker: read: %w", err)
		return nil, f.err
	}
	return f.buf[:n:n], nil
}

// checkedReader holds a reader to the rules Chunker enforces itself:
// impossible counts become errBadRead before bufio, which trusts them, can
// corrupt its buffer, and a reader that keeps returning (0, nil) fails with
// io.ErrNoProgress instead of making io.ReadFull spin.
type checkedReader struct {
	r     io.Reader
	empty int
}

func (c *checkedReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	switch {
	case n < 0 || n > len(p):
		return 0, fmt.Errorf("%w (%d)", errBadRead, n)
	case n == 0 && err == nil && len(p) > 0:
		if c.empty++; c.empty >= maxEmptyReads {
			return 0, io.ErrNoProgress
		}
	default:
		c.empty = 0
	}
	return n, err
}
