package localstack

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestPing: Ping passes only when LocalStack's health endpoint says OK;
// nothing listening is ErrUnreachable, a server that answers otherwise
// (LocalStack starting, or not LocalStack at all) ErrNotReady, both
// naming the URL.
func TestPing(t *testing.T) {
	health := func(status int) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || r.URL.Path != "/_localstack/health" {
				http.NotFound(w, r)
				return
			}
			w.WriteHeader(status)
			_, _ = w.Write([]byte(`{"services": {"sqs": "running"}}`))
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	notLocalStack := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(notLocalStack.Close)
	tests := []struct {
		name string
		url  string
		want error
	}{
		{"up", health(http.StatusOK).URL, nil},
		{"starting", health(http.StatusServiceUnavailable).URL, ErrNotReady},
		{"not LocalStack", notLocalStack.URL, ErrNotReady},
		{"down", down.URL, ErrUnreachable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := New(tc.url).Ping(context.Background())
			if !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
				t.Fatalf("Ping: %v, want %v", err, tc.want)
			}
			if err != nil && !strings.Contains(err.Error(), tc.url) {
				t.Errorf("the error does not name %s: %v", tc.url, err)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := New(down.URL).Ping(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled Ping: %v", err)
	}
}
