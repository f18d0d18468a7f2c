package remote

import (
	"context"
	"io"
	"sync/atomic"

	"github.com/statepack/statepack/remote/backend"
)

// Counter wraps a backend and counts its requests and the object bytes
// that cross it, for the summaries of push and pull. It is safe for
// concurrent use.
//
// Every call is one request, failed or not. Bytes are counted as they
// move: BytesSent as Put reads its reader (a retried Put inside the
// counted backend counts again, as the bytes travel again) and PutIf's
// data; BytesReceived as the readers of Get and GetRange are read, and
// GetVersioned's data. Wrap a counter inside WithRetry to count every
// attempt, outside it to count logical calls.
type Counter struct {
	b                             backend.Backend
	gets, puts, lists, stats, del atomic.Int64
	sent, received                atomic.Int64
}

var _ backend.RequestCounter = (*Counter)(nil)

// Counts is a snapshot of a Counter.
type Counts struct {
	Requests      int64 // all calls below
	Gets          int64 // Get, GetRange, GetVersioned
	Puts          int64 // Put, PutIf
	Lists         int64
	Heads         int64 // Stat
	Deletes       int64
	BytesSent     int64
	BytesReceived int64
}

// NewCounter wraps b.
func NewCounter(b backend.Backend) *Counter { return &Counter{b: b} }

// Stats returns the counts so far.
func (c *Counter) Stats() Counts {
	n := Counts{
		Gets:          c.gets.Load(),
		Puts:          c.puts.Load(),
		Lists:         c.lists.Load(),
		Heads:         c.stats.Load(),
		Deletes:       c.del.Load(),
		BytesSent:     c.sent.Load(),
		BytesReceived: c.received.Load(),
	}
	n.Requests = n.Gets + n.Puts + n.Lists + n.Heads + n.Deletes
	return n
}

// Requests implements backend.RequestCounter: the number of calls so far,
// for a caller that finds the counter with backend.As under other
// wrappers.
func (c *Counter) Requests() int64 { return c.Stats().Requests }

// Unwrap returns the wrapped backend.
func (c *Counter) Unwrap() backend.Backend { return c.b }

// Location implements backend.Backend.
func (c *Counter) Location() string { return c.b.Location() }

// Get implements backend.Backend.
func (c *Counter) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	c.gets.Add(1)
	rc, err := c.b.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	return newCountingReadCloser(rc, &c.received), nil
}

// GetRange implements backend.Backend.
func (c *Counter) GetRange(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	c.gets.Add(1)
	rc, err := c.b.GetRange(ctx, name, offset, length)
	if err != nil {
		return nil, err
	}
	return newCountingReadCloser(rc, &c.received), nil
}

// Put implements backend.Backend.
func (c *Counter) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	c.puts.Add(1)
	return c.b.Put(ctx, name, countReads(r, &c.sent), size)
}

// Stat implements backend.Backend.
func (c *Counter) Stat(ctx context.Context, name string) (backend.ObjectInfo, error) {
	c.stats.Add(1)
	return c.b.Stat(ctx, name)
}

// List implements backend.Backend.
func (c *Counter) List(ctx context.Context, prefix string, fn func(backend.ObjectInfo) error) error {
	c.lists.Add(1)
	return c.b.List(ctx, prefix, fn)
}

// Delete implements backend.Backend.
func (c *Counter) Delete(ctx context.Context, name string) error {
	c.del.Add(1)
	return c.b.Delete(ctx, name)
}

// GetVersioned implements backend.Backend.
func (c *Counter) GetVersioned(ctx context.Context, name string) ([]byte, string, error) {
	c.gets.Add(1)
	data, tag, err := c.b.GetVersioned(ctx, name)
	c.received.Add(int64(len(data)))
	return data, tag, err
}

// PutIf implements backend.Backend.
func (c *Counter) PutIf(ctx context.Context, name string, data []byte, ifMatch string) (string, error) {
	c.puts.Add(1)
	c.sent.Add(int64(len(data)))
	return c.b.PutIf(ctx, name, data, ifMatch)
}

// countingReadCloser is a countingReader that closes what it reads.
type countingReadCloser struct {
	countingReader
	c io.Closer
}

func newCountingReadCloser(rc io.ReadCloser, n *atomic.Int64) *countingReadCloser {
	return &countingReadCloser{countingReader{r: rc, n: n}, rc}
}

func (r *countingReadCloser) Close() error { return r.c.Close() }

// readSeekerAt is what an upload can read without buffering and rewind.
type readSeekerAt interface {
	io.ReadSeeker
	io.ReaderAt
}

// countReads wraps r to add the bytes read to n. It keeps io.Seeker and
// io.ReaderAt when r has them, so that retries can rewind and uploads need
// not buffer.
func countReads(r io.Reader, n *atomic.Int64) io.Reader {
	cr := &countingReader{r: r, n: n}
	switch r.(type) {
	case readSeekerAt:
		return &countingReadSeekerAt{cr}
	case io.ReadSeeker:
		return &countingReadSeeker{cr}
	}
	return cr
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n.Add(int64(n))
	return n, err
}

type countingReadSeeker struct{ *countingReader }

func (r *countingReadSeeker) Seek(off int64, whence int) (int64, error) {
	return r.r.(io.Seeker).Seek(off, whence)
}

type countingReadSeekerAt struct{ *countingReader }

func (r *countingReadSeekerAt) Seek(off int64, whence int) (int64, error) {
	return r.r.(io.Seeker).Seek(off, whence)
}

func (r *countingReadSeekerAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := r.r.(io.ReaderAt).ReadAt(p, off)
	r.n.Add(int64(n))
	return n, err
}
