package benchutil

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// Link is a TCP proxy that carries every connection to a server over one
// shared link of a fixed rate each way, as a network between a runner and
// S3 would: with MinIO on loopback, a GET moves faster than any client can
// verify what it receives, and the link puts the bound back where users
// meet it. Connections share the rate; the link adds no latency of its own.
type Link struct {
	URL string // http://127.0.0.1:PORT

	ln       net.Listener
	target   string
	up, down *pacer
	wg       sync.WaitGroup
	mu       sync.Mutex
	open     map[net.Conn]bool // client connections, closed by Close
}

// linkBurst is how far behind its schedule a direction may fall and still
// catch up at full speed: long enough that timer slack does not cost
// throughput, short enough that the rate holds over a 16 MiB object.
const linkBurst = 5 * time.Millisecond

// linkChunk is the most a connection forwards per wait.
const linkChunk = 64 << 10

// StartLink listens on a free loopback port and forwards every
// connection to target (host:port) at bytesPerSec each way.
func StartLink(target string, bytesPerSec int64) (*Link, error) {
	if bytesPerSec <= 0 {
		return nil, errors.New("link rate must be positive")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	l := &Link{URL: "http://" + ln.Addr().String(), ln: ln, target: target,
		up: &pacer{rate: float64(bytesPerSec)}, down: &pacer{rate: float64(bytesPerSec)},
		open: map[net.Conn]bool{}}
	l.wg.Add(1)
	go l.accept()
	return l, nil
}

// Close stops accepting, closes the connections still open (a client's
// idle keep-alive ones among them) and waits for their goroutines.
func (l *Link) Close() error {
	err := l.ln.Close()
	l.mu.Lock()
	for c := range l.open {
		c.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
	return err
}

// accept serves connections until the listener closes.
func (l *Link) accept() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		l.open[c] = true
		l.mu.Unlock()
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.serve(c.(*net.TCPConn))
			l.mu.Lock()
			delete(l.open, c)
			l.mu.Unlock()
		}()
	}
}

// serve forwards one connection both ways; a direction that ends half
// closes the other side, as the peers would see without the link.
func (l *Link) serve(c *net.TCPConn) {
	defer c.Close()
	s, err := net.Dial("tcp", l.target)
	if err != nil {
		return
	}
	srv := s.(*net.TCPConn)
	defer srv.Close()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); l.up.forward(srv, c) }()
	go func() { defer wg.Done(); l.down.forward(c, srv) }()
	wg.Wait()
}

// pacer is one direction of a link: a schedule of when the bytes sent so
// far have finished crossing it.
type pacer struct {
	mu   sync.Mutex
	rate float64 // bytes per second
	next time.Time
}

// forward copies src to dst at the pacer's rate, then half closes dst; an
// error either way closes both, so that the other direction ends too.
func (p *pacer) forward(dst, src *net.TCPConn) {
	buf := make([]byte, linkChunk)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.wait(n)
			if _, werr := dst.Write(buf[:n]); werr != nil {
				src.Close()
				return
			}
		}
		if errors.Is(err, io.EOF) {
			_ = dst.CloseWrite()
			return
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

// wait blocks until n more bytes have crossed the link after everything
// scheduled before them.
func (p *pacer) wait(n int) {
	p.mu.Lock()
	start := p.next
	if floor := time.Now().Add(-linkBurst); start.Before(floor) {
		start = floor
	}
	p.next = start.Add(time.Duration(float64(n) / p.rate * float64(time.Second)))
	done := p.next
	p.mu.Unlock()
	time.Sleep(time.Until(done))
}
