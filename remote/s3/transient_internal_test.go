package s3

import (
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/minio/minio-go/v7"
)

// TestTransient: the backend decides on the answers of the server, which
// only it can read, and on ErrNoBucket; failures that hold no answer (the
// connection) it leaves to the retry wrapper's generic rules.
func TestTransient(t *testing.T) {
	b := &Backend{bucket: "bkt", prefix: "p/", endpoint: endpoint{host: "h:1"}}
	cases := []struct {
		name             string
		err              error
		transient, known bool
	}{
		{"HTTP 500", minio.ErrorResponse{Code: "InternalError", StatusCode: 500}, true, true},
		{"HTTP 503 SlowDown", minio.ErrorResponse{Code: "SlowDown", StatusCode: 503}, true, true},
		{"HTTP 429", minio.ErrorResponse{Code: "TooManyRequests", StatusCode: 429}, true, true},
		{"RequestTimeout", minio.ErrorResponse{Code: "RequestTimeout", StatusCode: 400}, true, true},
		{"throttled, no status", minio.ErrorResponse{Code: "Throttling"}, true, true},
		{"HTTP 502, no code", minio.ErrorResponse{StatusCode: 502}, true, true},
		{"HTTP 400", minio.ErrorResponse{Code: "InvalidArgument", StatusCode: 400}, false, true},
		{"HTTP 403", minio.ErrorResponse{Code: "AccessDenied", StatusCode: 403}, false, true},
		{"wrapped 5xx", b.fail("get", "config", minio.ErrorResponse{Code: "InternalError", StatusCode: 500}), true, true},
		{"no bucket", b.failAs("open bucket", "", errors.New("bucket does not exist"), ErrNoBucket), false, true},
		{"NoSuchBucket", minio.ErrorResponse{Code: "NoSuchBucket", StatusCode: 404}, false, true},
		{"connection reset", b.fail("get", "config", &net.OpError{Op: "read", Err: errors.New("reset")}), false, false},
		{"truncated body", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), false, false},
	}
	for _, c := range cases {
		transient, known := b.Transient(c.err)
		if transient != c.transient || known != c.known {
			t.Errorf("%s: Transient(%v) = %v, %v; want %v, %v", c.name, c.err, transient, known, c.transient, c.known)
		}
	}
}
