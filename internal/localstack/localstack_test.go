package localstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// fakeLocalStack speaks the documented protocol: POST
// /_localstack/state/{save,load} answered with one JSON line per service.
func fakeLocalStack(t *testing.T, lines map[string][]string) (*httptest.Server, *[]string) {
	t.Helper()
	var calls []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "method", http.StatusMethodNotAllowed)
			return
		}
		calls = append(calls, r.URL.Path)
		out, ok := lines[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		for _, l := range out {
			fmt.Fprintln(w, l)
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func TestSaveAndLoad(t *testing.T) {
	ok := []string{`{"service": "sqs", "status": "ok"}`, `{"service": "s3", "status": "ok"}`}
	failing := []string{`{"service": "sqs", "status": "ok"}`, `{"service": "dynamodb", "status": "error", "message": "disk full"}`, `{"service": "s3", "status": "ok"}`}
	cases := []struct {
		name    string
		lines   []string
		op      string
		want    int
		wantErr string
	}{
		{"save ok", ok, "save", 2, ""},
		{"load ok", ok, "load", 2, ""},
		{"a service fails", failing, "save", 2, "could not save the state of dynamodb"},
		{"garbage line", []string{"not json"}, "save", 0, "unreadable line"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv, calls := fakeLocalStack(t, map[string][]string{"/_localstack/state/" + c.op: c.lines})
			cl := New(srv.URL)
			var res []Result
			var err error
			if c.op == "save" {
				res, err = cl.Save(context.Background(), nil)
			} else {
				res, err = cl.Load(context.Background(), nil)
			}
			if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
				t.Fatalf("err = %v, want %q", err, c.wantErr)
			}
			if len(res) != c.want || len(*calls) != 1 {
				t.Fatalf("results %v, calls %v", res, *calls)
			}
			var se *ServiceError
			if c.name == "a service fails" && (!errors.As(err, &se) || se.Service != "dynamodb") {
				t.Fatalf("want a ServiceError naming dynamodb, got %v", err)
			}
		})
	}
}

func TestLocalStackDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = New("http://"+addr).Save(context.Background(), nil)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("want unreachable naming %s, got %v", addr, err)
	}
	// A server that accepts and never answers is bounded by the context.
	l, _ = net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := New("http://"+l.Addr().String()).Save(ctx, nil); err == nil {
		t.Fatal("a silent LocalStack did not fail")
	}
}

func TestPaths(t *testing.T) {
	got, err := Paths(SplitServices([]string{"sqs,dynamodb", "s3"}))
	if err != nil {
		t.Fatal(err)
	}
	want := "api_states/dynamodb,api_states/s3,api_states/sqs,dynamodb,s3"
	if strings.Join(got, ",") != want {
		t.Fatalf("got %v, want %s", got, want)
	}
	if _, err := Paths([]string{"../etc"}); err == nil {
		t.Fatal("a path-like service name was accepted")
	}
}
