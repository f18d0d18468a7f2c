package benchutil

import (
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
)

// CountingProxy forwards HTTP requests to a server and counts them: the
// requests a client really made, as the server sees them, whatever the
// client reports. It keeps the Host header the client sent, so that S3
// signatures made for the proxy's address still verify.
type CountingProxy struct {
	URL string // http://127.0.0.1:PORT

	n   atomic.Int64
	srv *http.Server
}

// StartCountingProxy listens on a free loopback port and forwards to
// target (an http:// URL).
func StartCountingProxy(target string) (*CountingProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &CountingProxy{URL: "http://" + ln.Addr().String()}
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(u)
		r.Out.Host = r.In.Host
	}}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.n.Add(1)
		rp.ServeHTTP(w, r)
	})}
	go func() {
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			panic(err)
		}
	}()
	return p, nil
}

// Take returns the requests counted since the last Take and starts
// counting again from zero.
func (p *CountingProxy) Take() int64 { return p.n.Swap(0) }

// Close stops the proxy.
func (p *CountingProxy) Close() error { return p.srv.Close() }
