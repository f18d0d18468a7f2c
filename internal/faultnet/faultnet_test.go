package faultnet

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// origin is the server behind the proxy: GET /big answers size bytes,
// PUT and POST read the body and answer how much arrived.
type origin struct {
	*httptest.Server
	requests atomic.Int64
	closes   atomic.Int64 // requests that asked for Connection: close
	received atomic.Int64 // body bytes of the last PUT
	body     []byte
}

func newOrigin(t *testing.T, size int) *origin {
	t.Helper()
	o := &origin{body: make([]byte, size)}
	for i := range o.body {
		o.body[i] = byte(i*7 + i>>8)
	}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.requests.Add(1)
		if r.Close {
			o.closes.Add(1)
		}
		switch r.Method {
		case http.MethodPut, http.MethodPost:
			n, _ := io.Copy(io.Discard, r.Body)
			o.received.Store(n)
			fmt.Fprintf(w, "%d", n)
		default:
			w.Header().Set("Content-Length", fmt.Sprint(len(o.body)))
			if r.Method != http.MethodHead {
				_, _ = w.Write(o.body)
			}
		}
	}))
	t.Cleanup(o.Close)
	return o
}

func newProxy(t *testing.T, o *origin, plan Plan) *Proxy {
	t.Helper()
	p, err := New(o.URL, plan)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// client is a keep-alive HTTP client that ignores proxy settings of the
// environment.
func client(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4}}
}

func get(c *http.Client, url string) ([]byte, error) {
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("status %d: %s", resp.StatusCode, data)
	}
	return data, err
}

// TestForwardsOneRequestPerConnection: without faults every byte passes
// both ways, and each request travels on its own connection because the
// proxy forwards it with Connection: close.
func TestForwardsOneRequestPerConnection(t *testing.T) {
	o := newOrigin(t, 300<<10)
	p := newProxy(t, o, Plan{})
	c := client(10 * time.Second)
	for i := range 3 {
		data, err := get(c, p.URL()+"/big")
		if err != nil || !bytes.Equal(data, o.body) {
			t.Fatalf("get %d: %d bytes, %v", i, len(data), err)
		}
	}
	resp, err := c.Post(p.URL()+"/put", "application/octet-stream", bytes.NewReader(o.body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = c.Do(mustRequest(t, http.MethodPut, p.URL()+"/put", bytes.NewReader(o.body)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := o.received.Load(); got != int64(len(o.body)) {
		t.Errorf("origin received %d body bytes, want %d", got, len(o.body))
	}
	st := p.Stats()
	if st.Conns != 5 || st.Requests != 5 || st.Total() != 0 {
		t.Errorf("stats %v, want 5 conns, 5 requests, no faults", st)
	}
	if o.closes.Load() != o.requests.Load() {
		t.Errorf("%d of %d requests reached the origin with Connection: close", o.closes.Load(), o.requests.Load())
	}
}

func mustRequest(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

type s3Error struct {
	Code      string
	Message   string
	Resource  string
	RequestID string `xml:"RequestId"`
}

// TestErrorAnswers: 500 and 503 are answered by the proxy with an S3 XML
// error body, after reading the request body (fixed length or chunked);
// nothing reaches the origin.
func TestErrorAnswers(t *testing.T) {
	for _, tc := range []struct {
		kind   Kind
		status int
		code   string
	}{{Error500, 500, "InternalError"}, {Error503, 503, "SlowDown"}} {
		t.Run(tc.kind.String(), func(t *testing.T) {
			o := newOrigin(t, 1000)
			p := newProxy(t, o, Plan{Seed: 1, Faults: []Fault{{Kind: tc.kind, Rate: 1}}})
			c := client(10 * time.Second)
			bodies := map[string]func() io.Reader{
				"sized": func() io.Reader { return bytes.NewReader(make([]byte, 200<<10)) },
				"chunked": func() io.Reader {
					return io.MultiReader(strings.NewReader("abc"), bytes.NewReader(make([]byte, 100<<10)))
				},
			}
			for name, body := range bodies {
				resp, err := c.Do(mustRequest(t, http.MethodPut, p.URL()+"/bucket/key?x=1", body()))
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				data, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var e s3Error
				if err := xml.Unmarshal(data, &e); err != nil || resp.StatusCode != tc.status || e.Code != tc.code || e.Resource != "/bucket/key" {
					t.Errorf("%s: status %d, body %q (%v)", name, resp.StatusCode, data, err)
				}
			}
			resp, err := c.Head(p.URL() + "/bucket/key")
			if err != nil || resp.StatusCode != tc.status {
				t.Fatalf("HEAD: %v %v", resp, err)
			}
			resp.Body.Close()
			if o.requests.Load() != 0 {
				t.Errorf("%d requests reached the origin", o.requests.Load())
			}
			if st := p.Stats(); st.Injected[tc.kind] != 3 || st.Total() != 3 {
				t.Errorf("stats %v, want 3 %s", st, tc.kind)
			}
		})
	}
}

// TestDrop: a response cut after K bytes reaches the client as a short
// body; a request cut after K bytes reaches the origin short, and the
// client sees its connection closed.
func TestDrop(t *testing.T) {
	o := newOrigin(t, 1<<20)
	p := newProxy(t, o, Plan{Seed: 2, Faults: []Fault{{Kind: Drop, Rate: 1, Dir: Downstream, MinBytes: 100 << 10, MaxBytes: 100 << 10}}})
	data, err := get(client(10*time.Second), p.URL()+"/big")
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("downstream drop: %d bytes, %v; want an unexpected EOF", len(data), err)
	}
	if len(data) >= 100<<10 {
		t.Errorf("client got %d bytes, more than the %d let through minus the head", len(data), 100<<10)
	}

	p.SetPlan(Plan{Seed: 2, Faults: []Fault{{Kind: Drop, Rate: 1, Dir: Upstream, MinBytes: 50 << 10, MaxBytes: 50 << 10}}})
	resp, err := client(10 * time.Second).Do(mustRequest(t, http.MethodPut, p.URL()+"/put", bytes.NewReader(make([]byte, 1<<20))))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("upstream drop: request succeeded with status %d", resp.StatusCode)
	}
	if got := o.received.Load(); got >= 50<<10 {
		t.Errorf("origin received %d body bytes, want fewer than %d", got, 50<<10)
	}
	if st := p.Stats(); st.Injected[Drop] != 2 {
		t.Errorf("stats %v, want 2 drops", st)
	}
}

// TestReset: the client sees ECONNRESET, not a clean close.
func TestReset(t *testing.T) {
	o := newOrigin(t, 1<<20)
	p := newProxy(t, o, Plan{Seed: 3, Faults: []Fault{{Kind: Reset, Rate: 1, Dir: Downstream, MinBytes: 64 << 10, MaxBytes: 64 << 10}}})
	_, err := get(client(10*time.Second), p.URL()+"/big")
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("reset: %v, want ECONNRESET", err)
	}
	if st := p.Stats(); st.Injected[Reset] != 1 {
		t.Errorf("stats %v, want 1 reset", st)
	}
}

// TestStall: a stall of D delays the transfer by D and then lets it
// finish; a stall without end holds until the client gives up, and
// Close ends it at once.
func TestStall(t *testing.T) {
	o := newOrigin(t, 256<<10)
	p := newProxy(t, o, Plan{Seed: 4, Faults: []Fault{{Kind: Stall, Rate: 1, Dir: Downstream, MinBytes: 1000, MaxBytes: 1000, For: 300 * time.Millisecond}}})
	start := time.Now()
	data, err := get(client(10*time.Second), p.URL()+"/big")
	if took := time.Since(start); err != nil || !bytes.Equal(data, o.body) || took < 300*time.Millisecond {
		t.Errorf("finite stall: %d bytes, %v, after %v", len(data), err, took)
	}

	p.SetPlan(Plan{Seed: 4, Faults: []Fault{{Kind: Stall, Rate: 1, Dir: Upstream}}})
	_, err = get(client(300*time.Millisecond), p.URL()+"/big")
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("endless stall: %v, want the client's timeout", err)
	}
	// A stalled connection the client keeps open ends with Close.
	raw, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	fmt.Fprintf(raw, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(50 * time.Millisecond)
	closed := make(chan struct{})
	go func() { p.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not end a stalled connection")
	}
	if st := p.Stats(); st.Injected[Stall] != 3 {
		t.Errorf("stats %v, want 3 stalls", st)
	}
}

// TestDelay: each chunk waits, so a body of n chunks takes n delays.
func TestDelay(t *testing.T) {
	o := newOrigin(t, 8*chunkSize)
	p := newProxy(t, o, Plan{Seed: 5, Faults: []Fault{{Kind: Delay, Rate: 1, For: 20 * time.Millisecond}}})
	start := time.Now()
	data, err := get(client(10*time.Second), p.URL()+"/big")
	if took := time.Since(start); err != nil || !bytes.Equal(data, o.body) || took < 8*20*time.Millisecond {
		t.Errorf("delay: %d bytes, %v, after %v; want the whole body after at least 160ms", len(data), err, took)
	}
	if st := p.Stats(); st.Injected[Delay] != 1 {
		t.Errorf("stats %v, want 1 delay", st)
	}
}

// TestDecisionsFollowSeed: the decisions are a function of the seed and
// the connection number; rates hold; Match limits a fault to matching
// requests without shifting the other decisions.
func TestDecisionsFollowSeed(t *testing.T) {
	plan := Plan{Seed: 42, Faults: []Fault{
		{Kind: Error503, Rate: 0.2},
		{Kind: Drop, Rate: 0.2, MaxBytes: 1000},
	}}
	const n = 5000
	var hits [numKinds]int
	for i := uint64(1); i <= n; i++ {
		a, b := decide(plan, i, "GET /x"), decide(plan, i, "GET /x")
		if a != b {
			t.Fatalf("conn %d: %+v then %+v", i, a, b)
		}
		if a.after < 0 || a.after > 1000 {
			t.Fatalf("K %d outside [0, 1000]", a.after)
		}
		hits[a.kind]++
	}
	// The first rule takes 20%; the second 20% of the rest.
	if share := float64(hits[Error503]) / n; share < 0.17 || share > 0.23 {
		t.Errorf("503 share %.3f, want about 0.20", share)
	}
	if share := float64(hits[Drop]) / n; share < 0.13 || share > 0.19 {
		t.Errorf("drop share %.3f, want about 0.16", share)
	}
	other := plan
	other.Seed = 43
	same := 0
	for i := uint64(1); i <= 100; i++ {
		if decide(plan, i, "GET /x") == decide(other, i, "GET /x") {
			same++
		}
	}
	if same == 100 {
		t.Error("another seed gives the same decisions")
	}
	matched := Plan{Seed: 42, Faults: []Fault{{Kind: Error503, Rate: 0.2, Match: "PUT /b/packs/"}, plan.Faults[1]}}
	for i := uint64(1); i <= n; i++ {
		if d := decide(matched, i, "GET /x"); d.kind == Error503 {
			t.Fatalf("conn %d: a fault limited to PUT hit a GET", i)
		}
		if decide(matched, i, "PUT /b/packs/aa/bb") != decide(plan, i, "PUT /b/packs/aa/bb") {
			t.Fatalf("conn %d: Match changed a matching decision", i)
		}
	}
}

// TestRates: over real connections, a 30% 503 plan fails about 30% of
// requests, and SetPlan(Plan{}) turns faults off.
func TestRates(t *testing.T) {
	o := newOrigin(t, 100)
	p := newProxy(t, o, Plan{Seed: 7, Faults: []Fault{{Kind: Error503, Rate: 0.3}}})
	c := client(10 * time.Second)
	failed := 0
	const n = 200
	for range n {
		if _, err := get(c, p.URL()+"/big"); err != nil {
			failed++
		}
	}
	if failed < n*20/100 || failed > n*40/100 || int64(failed) != p.Stats().Injected[Error503] {
		t.Errorf("%d of %d failed, stats %v; want about 30%%", failed, n, p.Stats())
	}
	p.SetPlan(Plan{})
	for range 20 {
		if _, err := get(c, p.URL()+"/big"); err != nil {
			t.Fatalf("fault with an empty plan: %v", err)
		}
	}
}

// TestNotHTTP: bytes that are not a request head end the connection
// without reaching the origin.
func TestNotHTTP(t *testing.T) {
	o := newOrigin(t, 100)
	p := newProxy(t, o, Plan{})
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "HELLO\r\n\r\n")
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := c.Read(make([]byte, 10)); n != 0 || err == nil {
		t.Errorf("read %d bytes, %v; want the connection closed", n, err)
	}
	if o.requests.Load() != 0 {
		t.Error("garbage reached the origin")
	}
}
