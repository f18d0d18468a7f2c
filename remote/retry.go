package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/statepack/statepack/remote/backend"
)

// RetryPolicy says how WithRetry retries a failed call.
type RetryPolicy struct {
	// Attempts is the most tries per call, the first included. Values
	// below 2 mean no retries.
	Attempts int
	// BaseDelay is the wait before the first retry; each later wait
	// doubles, up to MaxDelay (zero: every wait is BaseDelay). Every wait
	// is jittered to a random point in its upper half, so clients that
	// failed together do not retry together.
	BaseDelay time.Duration
	MaxDelay  time.Duration
	// OnRetry, when set, is called before each wait, for a log line or a
	// progress warning. It must be safe for concurrent use.
	OnRetry func(RetryEvent)
}

// RetryEvent describes a failed attempt that is about to be retried.
type RetryEvent struct {
	Method  string // MethodGet, MethodPut, ...
	Name    string // the object, or the prefix for List
	Attempt int    // the attempt that failed, from 1
	Err     error
	Delay   time.Duration // the wait before the next attempt
}

// DefaultRetryPolicy retries up to 5 times, waiting 4 to 8 seconds in all:
// enough to ride out a throttling burst or a dropped connection, short
// enough that a real outage is reported while the user is still watching.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{Attempts: 6, BaseDelay: 250 * time.Millisecond, MaxDelay: 8 * time.Second}
}

// delay is the jittered wait after the given failed attempt.
func (p RetryPolicy) delay(attempt int) time.Duration {
	d := p.BaseDelay
	for i := 1; i < attempt && d < p.MaxDelay; i++ {
		d *= 2
	}
	if p.MaxDelay > 0 && d > p.MaxDelay {
		d = p.MaxDelay
	}
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

// WithRetry wraps b so that calls failing with a transient error are
// tried again, with exponential backoff and jitter, up to p.Attempts
// times, and never past the cancellation of ctx. Transient is what
// IsTransient says, except that a backend in b's chain that is a
// backend.TransientClassifier (S3) decides on the errors it recognises;
// the errors WithRetry returns carry that verdict, so IsTransient agrees
// with it further up.
//
// Not every call can be repeated safely:
//
//   - Put is retried only when its reader is an io.Seeker, rewound to
//     where it stood; a plain reader has been consumed by the failed try.
//   - List is retried only while it has delivered nothing to fn, so fn
//     never sees an object twice. Errors from fn are returned as they are.
//   - PutIf is repeated blindly only when the request never reached the
//     server. After a failure that may have reached it, the object is
//     read back to tell whether the write went through (see PutIf).
//   - The readers Get and GetRange return resume after a transient
//     failure mid-stream: they ask for the rest of the object (a range
//     from where the failed read stopped) and go on, within the same
//     bound of attempts. Objects read this way never change once written
//     (refs and locks are read with GetVersioned), and callers verify
//     what they read against its id.
func WithRetry(b backend.Backend, p RetryPolicy) backend.Backend {
	return newRetry(b, p)
}

func newRetry(b backend.Backend, p RetryPolicy) *retryBackend {
	c, _ := backend.As[backend.TransientClassifier](b)
	return &retryBackend{b: b, p: p, c: c}
}

type retryBackend struct {
	b backend.Backend
	p RetryPolicy
	c backend.TransientClassifier // nil when no backend in b's chain classifies
}

// Unwrap returns the wrapped backend.
func (r *retryBackend) Unwrap() backend.Backend { return r.b }

// do runs op until it succeeds, fails for good, or runs out of attempts.
func (r *retryBackend) do(ctx context.Context, method, name string, retryable func(error) bool, op func() error) error {
	for attempt := 1; ; attempt++ {
		err := op()
		if err == nil || ctx.Err() != nil || !retryable(err) {
			return r.mark(err)
		}
		if attempt >= r.p.Attempts {
			if attempt > 1 {
				return fmt.Errorf("%w (gave up after %d attempts)", r.mark(err), attempt)
			}
			return r.mark(err)
		}
		d := r.p.delay(attempt)
		if r.p.OnRetry != nil {
			r.p.OnRetry(RetryEvent{Method: method, Name: name, Attempt: attempt, Err: err, Delay: d})
		}
		if cerr := sleep(ctx, d); cerr != nil {
			return fmt.Errorf("%w (while waiting to retry after: %w)", cerr, err)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Location implements backend.Backend.
func (r *retryBackend) Location() string { return r.b.Location() }

// Get implements backend.Backend.
func (r *retryBackend) Get(ctx context.Context, name string) (rc io.ReadCloser, err error) {
	err = r.do(ctx, MethodGet, name, r.transient, func() error {
		rc, err = r.b.Get(ctx, name)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &resumingReader{r: r, ctx: ctx, name: name, rc: rc, end: -1}, nil
}

// GetRange implements backend.Backend.
func (r *retryBackend) GetRange(ctx context.Context, name string, offset, length int64) (rc io.ReadCloser, err error) {
	err = r.do(ctx, MethodGetRange, name, r.transient, func() error {
		rc, err = r.b.GetRange(ctx, name, offset, length)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &resumingReader{r: r, ctx: ctx, name: name, rc: rc, off: offset, end: offset + length}, nil
}

// resumingReader reads an object and, when a read fails mid-stream with
// a transient error, fetches the rest of the object and goes on (see
// WithRetry). At most p.Attempts reads fail in all.
type resumingReader struct {
	r        *retryBackend
	ctx      context.Context
	name     string
	rc       io.ReadCloser
	off, end int64 // next offset in the object; end is -1 until known
	failures int
}

func (x *resumingReader) Read(p []byte) (int, error) {
	for {
		n, err := x.rc.Read(p)
		x.off += int64(n)
		if err == nil || err == io.EOF {
			return n, err
		}
		if !x.r.transient(err) || x.ctx.Err() != nil {
			return n, x.r.mark(err)
		}
		err = x.r.mark(err)
		x.failures++
		if x.failures >= x.r.p.Attempts {
			return n, fmt.Errorf("%w (gave up after %d attempts)", err, x.failures)
		}
		if rerr := x.resume(err); rerr != nil {
			return n, rerr
		}
		if n > 0 {
			return n, nil
		}
	}
}

// resume replaces the failed stream with one of the rest of the object.
func (x *resumingReader) resume(cause error) error {
	d := x.r.p.delay(x.failures)
	if x.r.p.OnRetry != nil {
		x.r.p.OnRetry(RetryEvent{Method: MethodGetRange, Name: x.name, Attempt: x.failures, Err: cause, Delay: d})
	}
	if err := sleep(x.ctx, d); err != nil {
		return fmt.Errorf("%w (while waiting to retry after: %w)", err, cause)
	}
	x.rc.Close()
	x.rc = io.NopCloser(strings.NewReader("")) // until a new stream opens
	if x.end < 0 {
		info, err := x.r.Stat(x.ctx, x.name)
		if err != nil {
			return fmt.Errorf("%w (resuming after: %w)", err, cause)
		}
		x.end = info.Size
	}
	if x.off > x.end {
		return fmt.Errorf("%s is shorter than what was read of it (resuming after: %w)", x.name, cause)
	}
	var rc io.ReadCloser
	err := x.r.do(x.ctx, MethodGetRange, x.name, x.r.transient, func() (err error) {
		rc, err = x.r.b.GetRange(x.ctx, x.name, x.off, x.end-x.off)
		return err
	})
	if err != nil {
		return fmt.Errorf("%w (resuming after: %w)", err, cause)
	}
	x.rc = rc
	return nil
}

func (x *resumingReader) Close() error { return x.rc.Close() }

// Put implements backend.Backend.
func (r *retryBackend) Put(ctx context.Context, name string, rd io.Reader, size int64) error {
	seeker, ok := rd.(io.Seeker)
	if !ok {
		return r.mark(r.b.Put(ctx, name, rd, size))
	}
	start, err := seeker.Seek(0, io.SeekCurrent)
	if err != nil {
		return r.mark(r.b.Put(ctx, name, rd, size))
	}
	first := true
	return r.do(ctx, MethodPut, name, r.transient, func() error {
		if !first {
			if _, err := seeker.Seek(start, io.SeekStart); err != nil {
				return fmt.Errorf("put %s: rewind for retry: %w", name, err)
			}
		}
		first = false
		return r.b.Put(ctx, name, rd, size)
	})
}

// Stat implements backend.Backend.
func (r *retryBackend) Stat(ctx context.Context, name string) (info backend.ObjectInfo, err error) {
	err = r.do(ctx, MethodStat, name, r.transient, func() error {
		info, err = r.b.Stat(ctx, name)
		return err
	})
	return info, err
}

// List implements backend.Backend.
func (r *retryBackend) List(ctx context.Context, prefix string, fn func(backend.ObjectInfo) error) error {
	delivered := false
	retryable := func(err error) bool { return !delivered && r.transient(err) }
	return r.do(ctx, MethodList, prefix, retryable, func() error {
		return r.b.List(ctx, prefix, func(oi backend.ObjectInfo) error {
			delivered = true
			return fn(oi)
		})
	})
}

// Delete implements backend.Backend.
func (r *retryBackend) Delete(ctx context.Context, name string) error {
	return r.do(ctx, MethodDelete, name, r.transient, func() error {
		return r.b.Delete(ctx, name)
	})
}

// GetVersioned implements backend.Backend.
func (r *retryBackend) GetVersioned(ctx context.Context, name string) (data []byte, tag string, err error) {
	err = r.do(ctx, MethodGetVersioned, name, r.transient, func() error {
		data, tag, err = r.b.GetVersioned(ctx, name)
		return err
	})
	return data, tag, err
}

// PutIf implements backend.Backend. A conditional write is repeated
// blindly only when the request never left this machine. One that may
// have reached the server (its answer lost, a server error) may have
// won before it failed, and repeating it would then lose its own
// condition and report a conflict for a write that went through; so the
// object is read back instead. Holding what was written, the write went
// through; still as it was (absent, or at ifMatch), it did not and is
// made again; changed by someone else, or unreadable, the failure stands
// and is not retried. This is the one place where ref and config writes
// are retried (push's ref, a first push's config).
func (r *retryBackend) PutIf(ctx context.Context, name string, data []byte, ifMatch string) (tag string, err error) {
	err = r.do(ctx, MethodPutIf, name, r.transient, func() error {
		tag, err = r.b.PutIf(ctx, name, data, ifMatch)
		if err == nil || NeverSent(err) || !r.transient(err) {
			return err
		}
		now, nowTag, rerr := r.b.GetVersioned(ctx, name)
		switch {
		case rerr == nil && bytes.Equal(now, data):
			tag = nowTag
			return nil
		case ifMatch == "" && errors.Is(rerr, backend.ErrNotFound), ifMatch != "" && rerr == nil && nowTag == ifMatch:
			return err // not written: made again
		}
		return &classified{err: err, transient: false}
	})
	return tag, err
}

// IsTransient reports whether err is a failure that may pass if the same
// request is made again: a network timeout, a connection refused, reset
// or closed mid-flight, or a truncated body (io.ErrUnexpectedEOF). An
// error in the chain with a Transient() bool method decides for itself;
// so do the errors WithRetry returns when its backend classified them
// (an S3 throttling or server error).
//
// It is false for the contract's sentinels (ErrNotFound, ErrConflict,
// ErrAccessDenied, ErrNoSpace, ErrOutOfRange, ErrReadOnly), for context
// cancellation, and for anything it does not recognise.
func IsTransient(err error) bool {
	t, _ := classify(nil, err)
	return t
}

// transient is IsTransient with the wrapped backend's classifier asked.
func (r *retryBackend) transient(err error) bool {
	t, _ := classify(r.c, err)
	return t
}

// classify decides whether err is transient: the generic rules first
// (cancellation, sentinels, an error that decides for itself), then c,
// when set, on the errors it recognises, then the rules for network
// failures. byBackend reports that c decided.
func classify(c backend.TransientClassifier, err error) (transient, byBackend bool) {
	if err == nil || isContextError(err) || isSentinel(err) {
		return false, false
	}
	var self interface{ Transient() bool }
	if errors.As(err, &self) {
		return self.Transient(), false
	}
	if c != nil {
		if t, ok := c.Transient(err); ok {
			return t, true
		}
	}
	return transientNet(err), false
}

// mark returns err with the verdict of the wrapped backend's classifier
// attached, when the classifier decided, so that IsTransient, called
// further up with no backend at hand (a ref update deciding whether to
// read the ref back), answers as the wrapper did.
func (r *retryBackend) mark(err error) error {
	if err == nil || r.c == nil {
		return err
	}
	if t, byBackend := classify(r.c, err); byBackend {
		return &classified{err: err, transient: t}
	}
	return err
}

// classified is an error with the verdict of its backend's classifier.
type classified struct {
	err       error
	transient bool
}

func (e *classified) Error() string   { return e.err.Error() }
func (e *classified) Unwrap() error   { return e.err }
func (e *classified) Transient() bool { return e.transient }

// isContextError reports a cancellation, or the expiry of a context's
// deadline. Network timeouts also match context.DeadlineExceeded with
// errors.Is, so the deadline is looked for by identity.
func isContextError(err error) bool {
	if errors.Is(err, context.Canceled) {
		return true
	}
	found := false
	walk(err, func(e error) {
		if e == context.DeadlineExceeded {
			found = true
		}
	})
	return found
}

// walk calls fn for err and every error it wraps.
func walk(err error, fn func(error)) {
	for err != nil {
		fn(err)
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e, fn)
			}
			return
		default:
			return
		}
	}
}

func isSentinel(err error) bool {
	for _, s := range []error{backend.ErrNotFound, backend.ErrConflict, backend.ErrAccessDenied, backend.ErrNoSpace, backend.ErrOutOfRange, backend.ErrReadOnly} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// transientNet classifies transport failures.
func transientNet(err error) bool {
	// net.ErrClosed: the transport closed the connection under a request
	// after the peer reset it (seen as "use of closed network connection").
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return true
	}
	for _, errno := range []syscall.Errno{
		syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE,
		syscall.ETIMEDOUT, syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ENETDOWN,
	} {
		if errors.Is(err, errno) {
			return true
		}
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return dns.IsTimeout || dns.IsTemporary
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		// minio-go replaces a connection closed mid-request with a
		// plain error; net/http reports some closes only in text.
		msg := ue.Err.Error()
		// "transport connection broken": an answer's head cut short.
		return strings.Contains(msg, "EOF") || strings.Contains(msg, "Connection closed by foreign host") ||
			strings.Contains(msg, "connection reset") || strings.Contains(msg, "transport connection broken")
	}
	return false
}

// NeverSent reports whether err shows that a request never reached the
// server: the connection could not be opened (refused, unreachable, a
// dial timeout, a failed DNS lookup). Such a request is safe to repeat
// even when it is not idempotent.
func NeverSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns) || errors.Is(err, syscall.ECONNREFUSED)
}
