// Package faultnet is a fault-injecting TCP proxy for tests: it sits on a
// loopback port between an HTTP/1.1 client (statepack) and a server
// (MinIO) and, for a seeded share of requests, cuts, stalls, resets or
// slows the connection, or answers with an S3 error itself.
//
// # One request per connection
//
// The proxy parses just enough HTTP/1.1 to find the request line, the
// headers and the length of a request body. It forwards each connection's
// first request with `Connection: close` in place of any Connection
// header, so the server closes the connection after its answer and the
// client opens a new one for the next request. Every request is thus the
// first of its connection, a fault decision is made per request, and the
// proxy never has to parse responses to find where one ends. The price is
// one TCP connection per request, which on loopback costs nothing worth
// measuring. The server ignores the added header when it checks a request
// signature: SigV4 covers only the headers the client signed.
//
// # Faults
//
// For each request the proxy draws from a generator seeded with the plan's
// seed and the connection's number (in accept order), so a plan and the
// order of connections fix every decision: a failing run can be replayed
// with the same seed. The first Fault of the plan whose draw hits applies;
// at most one per request.
//
//   - Drop: after K bytes in one direction, both connections are closed
//     normally (FIN): a request or response body cut mid-way.
//   - Stall: after K bytes in one direction, forwarding stops for For, or
//     with For 0 until the client gives up and closes. A stall before the
//     first byte of a request connects to the server only once it ends,
//     so the server's idle timeout cannot cut it short.
//   - Reset: after K bytes in one direction, the client connection is
//     closed with SO_LINGER 0, so the client sees a TCP RST.
//   - Delay: every chunk forwarded, either way, waits For first.
//   - Error500 and Error503: the request (body included) is read and
//     answered with 500 InternalError or 503 SlowDown and an S3 XML error
//     body; nothing reaches the server.
//
// K is drawn uniformly from [MinBytes, MaxBytes]; a fault whose K lies beyond
// what the connection carries in its direction never fires and is not
// counted. Stats counts the faults that fired.
package faultnet

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Kind is a kind of fault.
type Kind int

// The kinds of fault, in the order Stats reports them.
const (
	None Kind = iota
	Drop
	Stall
	Reset
	Delay
	Error500
	Error503
	numKinds
)

// Kinds lists every fault kind but None.
var Kinds = []Kind{Drop, Stall, Reset, Delay, Error500, Error503}

func (k Kind) String() string {
	switch k {
	case None:
		return "none"
	case Drop:
		return "drop"
	case Stall:
		return "stall"
	case Reset:
		return "reset"
	case Delay:
		return "delay"
	case Error500:
		return "500"
	case Error503:
		return "503"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Direction says which way's bytes a byte-count fault counts.
type Direction int

// Directions: Either picks one of the two at random per request.
const (
	Either     Direction = iota
	Upstream             // client to server: the request
	Downstream           // server to client: the response
)

func (d Direction) String() string {
	switch d {
	case Upstream:
		return "up"
	case Downstream:
		return "down"
	}
	return "either"
}

// Fault is one rule of a plan.
type Fault struct {
	Kind Kind
	// Rate is the share of requests, from 0 to 1, that get this fault.
	Rate float64
	// Match, when not empty, limits the fault to requests whose
	// "METHOD target" contains it (e.g. "PUT /bucket/p/packs/").
	Match string
	// Dir is the direction whose bytes Drop, Stall and Reset count.
	Dir Direction
	// MinBytes and MaxBytes bound K, the bytes let through before Drop,
	// Stall or Reset fires: K is uniform in [MinBytes, MaxBytes].
	MinBytes, MaxBytes int64
	// For is how long a Stall lasts (0: until the connection closes),
	// or how long Delay holds each chunk.
	For time.Duration
}

// Plan is what the proxy does to the requests it forwards. The zero Plan
// forwards everything untouched.
type Plan struct {
	Seed   uint64
	Faults []Fault
}

// Stats counts what the proxy saw and did.
type Stats struct {
	Conns    int64          // connections accepted
	Requests int64          // request heads read
	Injected map[Kind]int64 // faults that fired, by kind
}

// Total is the number of faults that fired.
func (s Stats) Total() int64 {
	var n int64
	for _, v := range s.Injected {
		n += v
	}
	return n
}

func (s Stats) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d conns, %d requests", s.Conns, s.Requests)
	for _, k := range Kinds {
		if n := s.Injected[k]; n > 0 {
			fmt.Fprintf(&b, ", %d %s", n, k)
		}
	}
	return b.String()
}

// Proxy forwards connections from its loopback port to a target.
type Proxy struct {
	ln     net.Listener
	target string
	plan   atomic.Pointer[Plan]

	conns, requests atomic.Int64
	injected        [numKinds]atomic.Int64

	mu     sync.Mutex
	open   map[*conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// New starts a proxy on 127.0.0.1 (a free port) that forwards to target,
// "host:port" or "http://host:port", applying plan.
func New(target string, plan Plan) (*Proxy, error) {
	target = strings.TrimPrefix(target, "http://")
	if _, _, err := net.SplitHostPort(target); err != nil {
		return nil, fmt.Errorf("faultnet: target %q: %w", target, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultnet: %w", err)
	}
	p := &Proxy{ln: ln, target: target, open: map[*conn]struct{}{}}
	p.SetPlan(plan)
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr is the proxy's "127.0.0.1:port".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL is the proxy as an HTTP endpoint, "http://127.0.0.1:port".
func (p *Proxy) URL() string { return "http://" + p.Addr() }

// SetPlan replaces the plan for connections accepted from now on.
func (p *Proxy) SetPlan(plan Plan) {
	plan.Faults = append([]Fault(nil), plan.Faults...)
	p.plan.Store(&plan)
}

// Stats returns the counts so far.
func (p *Proxy) Stats() Stats {
	s := Stats{Conns: p.conns.Load(), Requests: p.requests.Load(), Injected: map[Kind]int64{}}
	for _, k := range Kinds {
		if n := p.injected[k].Load(); n > 0 {
			s.Injected[k] = n
		}
	}
	return s
}

// Close stops accepting, closes every open connection (ending stalls) and
// waits for the proxy's goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	for c := range p.open {
		c.teardown()
	}
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		nc, err := p.ln.Accept()
		if err != nil {
			return
		}
		n := p.conns.Add(1)
		c := &conn{p: p, client: nc.(*net.TCPConn), num: uint64(n), done: make(chan struct{})}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			nc.Close()
			return
		}
		p.open[c] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go func() {
			defer p.wg.Done()
			c.run(*p.plan.Load())
			p.mu.Lock()
			delete(p.open, c)
			p.mu.Unlock()
		}()
	}
}

// Limits of what the proxy parses.
const (
	maxHead     = 64 << 10
	maxDiscard  = 1 << 30
	chunkSize   = 32 << 10
	dialTimeout = 5 * time.Second
)

// decision is the fault chosen for one request.
type decision struct {
	kind  Kind
	dir   Direction
	after int64
	dur   time.Duration
}

// decide draws the fault for a request. Every fault of the plan takes
// the same draws whether it matches or not, so adding a Match does not
// shift the decisions of other requests.
func decide(plan Plan, num uint64, line string) decision {
	rng := rand.New(rand.NewPCG(plan.Seed, num))
	chosen := decision{kind: None}
	for _, f := range plan.Faults {
		u := rng.Float64()
		dir := f.Dir
		if dir == Either {
			dir = Upstream
			if rng.IntN(2) == 1 {
				dir = Downstream
			}
		} else {
			rng.IntN(2)
		}
		after := f.MinBytes + rng.Int64N(max(f.MaxBytes-f.MinBytes, 0)+1)
		if chosen.kind != None || u >= f.Rate || (f.Match != "" && !strings.Contains(line, f.Match)) {
			continue
		}
		chosen = decision{kind: f.Kind, dir: dir, after: after, dur: f.For}
	}
	return chosen
}

// conn is one client connection and, once dialled, its upstream.
type conn struct {
	p        *Proxy
	client   *net.TCPConn
	upstream net.Conn
	num      uint64

	once sync.Once
	mu   sync.Mutex
	done chan struct{} // closed by teardown
}

// teardown closes both sides once; it ends any stall.
func (c *conn) teardown() {
	c.once.Do(func() {
		close(c.done)
		c.client.Close()
		c.mu.Lock()
		if c.upstream != nil {
			c.upstream.Close()
		}
		c.mu.Unlock()
	})
}

// reset closes the client connection with SO_LINGER 0: the client gets
// an RST instead of a FIN.
func (c *conn) reset() {
	_ = c.client.SetLinger(0)
	c.teardown()
}

func (c *conn) run(plan Plan) {
	defer c.teardown()
	br := bufio.NewReaderSize(c.client, chunkSize)
	req, err := readHead(br)
	if err != nil {
		return
	}
	c.p.requests.Add(1)
	d := decide(plan, c.num, req.method+" "+req.target)
	switch d.kind {
	case Error500, Error503:
		c.answer(br, req, d.kind)
		return
	}
	if d.kind == Stall && d.dir == Upstream && d.after == 0 {
		// Nothing is sent before this stall, so nothing is connected
		// either: the server's own idle timeout must not end it.
		if !c.fire(d) {
			return
		}
		d.kind = None
	}
	up, err := net.DialTimeout("tcp", c.p.target, dialTimeout)
	if err != nil {
		return
	}
	c.mu.Lock()
	c.upstream = up
	c.mu.Unlock()
	select {
	case <-c.done: // torn down (Proxy.Close) while dialling
		up.Close()
		return
	default:
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		c.pipe(up, io.MultiReader(bytes.NewReader(req.rewritten()), br), Upstream, d)
		c.teardown()
	}()
	go func() {
		defer wg.Done()
		c.pipe(c.client, up, Downstream, d)
		c.teardown()
	}()
	wg.Wait()
}

// pipe copies src to dst in chunks, applying the decision's fault when
// it concerns this direction. It returns when either side fails or the
// fault ends the connection.
func (c *conn) pipe(dst io.Writer, src io.Reader, dir Direction, d decision) {
	buf := make([]byte, chunkSize)
	armed := d.dir == dir && (d.kind == Drop || d.kind == Stall || d.kind == Reset)
	var sent int64
	if d.kind == Delay && dir == Upstream {
		c.p.injected[Delay].Add(1)
	}
	for {
		if armed && sent >= d.after {
			armed = false
			if !c.fire(d) {
				return
			}
		}
		n, err := src.Read(buf)
		data := buf[:n]
		for len(data) > 0 {
			part := data
			if armed && sent+int64(len(part)) > d.after {
				part = part[:d.after-sent]
			}
			if d.kind == Delay && !c.wait(d.dur) {
				return
			}
			if _, werr := dst.Write(part); werr != nil {
				return
			}
			sent += int64(len(part))
			data = data[len(part):]
			if armed && sent >= d.after {
				armed = false
				if !c.fire(d) {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// fire applies a byte-count fault; it reports whether forwarding goes on.
func (c *conn) fire(d decision) bool {
	c.p.injected[d.kind].Add(1)
	switch d.kind {
	case Drop:
		c.teardown()
		return false
	case Reset:
		c.reset()
		return false
	case Stall:
		return c.wait(d.dur)
	}
	return true
}

// wait sleeps for d (forever when d is 0) unless the connection is torn
// down first; it reports whether the connection is still up.
func (c *conn) wait(d time.Duration) bool {
	if d == 0 {
		<-c.done
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.done:
		return false
	case <-t.C:
		return true
	}
}

// answer reads the request body (unless the client waits for 100
// Continue) and replies with an S3 error of its own.
func (c *conn) answer(br *bufio.Reader, req *request, kind Kind) {
	if !req.expectContinue {
		_ = c.client.SetReadDeadline(time.Now().Add(30 * time.Second))
		if err := req.discardBody(br); err != nil {
			return
		}
	}
	status, text, code, msg := 500, "Internal Server Error", "InternalError", "We encountered an internal error. Please try again."
	if kind == Error503 {
		status, text, code, msg = 503, "Service Unavailable", "SlowDown", "Please reduce your request rate."
	}
	id := fmt.Sprintf("faultnet-%d", c.num)
	body := fmt.Sprintf("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>%s</Message><Resource>%s</Resource><RequestId>%s</RequestId></Error>",
		code, msg, xmlEscape(req.path()), id)
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", status, text)
	fmt.Fprintf(&b, "Content-Type: application/xml\r\nContent-Length: %d\r\nConnection: close\r\nx-amz-request-id: %s\r\n", len(body), id)
	if kind == Error503 {
		b.WriteString("Retry-After: 1\r\n")
	}
	b.WriteString("\r\n")
	if req.method != "HEAD" {
		b.WriteString(body)
	}
	c.p.injected[kind].Add(1) // counted first: the client may read the answer at once
	_, _ = io.WriteString(c.client, b.String())
}

func xmlEscape(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// request is the head of an HTTP/1.1 request.
type request struct {
	method, target, proto string
	headers               []string // raw header lines without CRLF
	contentLength         int64    // -1 when absent
	chunked               bool
	expectContinue        bool
}

var errBadHead = errors.New("faultnet: not an HTTP/1.1 request head")

// readHead reads a request line and headers, up to the empty line.
func readHead(br *bufio.Reader) (*request, error) {
	var lines []string
	total := 0
	for {
		line, err := br.ReadString('\n')
		total += len(line)
		if err != nil {
			return nil, err
		}
		if total > maxHead {
			return nil, errBadHead
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			if len(lines) == 0 {
				continue // tolerated before a request line (RFC 9112 2.2)
			}
			break
		}
		lines = append(lines, line)
	}
	parts := strings.SplitN(lines[0], " ", 3)
	if len(parts) != 3 || !strings.HasPrefix(parts[2], "HTTP/1.") {
		return nil, errBadHead
	}
	r := &request{method: parts[0], target: parts[1], proto: parts[2], headers: lines[1:], contentLength: -1}
	for _, h := range r.headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok {
			return nil, errBadHead
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "content-length":
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || n < 0 {
				return nil, errBadHead
			}
			r.contentLength = n
		case "transfer-encoding":
			r.chunked = strings.Contains(strings.ToLower(value), "chunked")
		case "expect":
			r.expectContinue = strings.EqualFold(value, "100-continue")
		}
	}
	return r, nil
}

// rewritten is the head as forwarded: Connection (and the headers it
// governs in HTTP/1.0 habits) replaced by "Connection: close".
func (r *request) rewritten() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s %s\r\n", r.method, r.target, r.proto)
	for _, h := range r.headers {
		name, _, _ := strings.Cut(h, ":")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "connection", "keep-alive", "proxy-connection":
			continue
		}
		b.WriteString(h)
		b.WriteString("\r\n")
	}
	b.WriteString("Connection: close\r\n\r\n")
	return b.Bytes()
}

// path is the target without its query, for the error's Resource.
func (r *request) path() string {
	p, _, _ := strings.Cut(r.target, "?")
	return p
}

// discardBody reads the request body as its headers frame it.
func (r *request) discardBody(br *bufio.Reader) error {
	switch {
	case r.chunked:
		return discardChunked(br)
	case r.contentLength > maxDiscard:
		return errBadHead
	case r.contentLength > 0:
		_, err := io.CopyN(io.Discard, br, r.contentLength)
		return err
	}
	return nil
}

// discardChunked reads a chunked body and its trailers.
func discardChunked(br *bufio.Reader) error {
	var total int64
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		size, _, _ := strings.Cut(strings.TrimSpace(line), ";")
		n, err := strconv.ParseInt(size, 16, 64)
		if err != nil || n < 0 {
			return errBadHead
		}
		if total += n; total > maxDiscard {
			return errBadHead
		}
		if n == 0 {
			for {
				t, err := br.ReadString('\n')
				if err != nil {
					return err
				}
				if strings.TrimRight(t, "\r\n") == "" {
					return nil
				}
			}
		}
		if _, err := io.CopyN(io.Discard, br, n+2); err != nil {
			return err
		}
	}
}
