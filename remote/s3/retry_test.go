package s3_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/statepack/statepack/internal/miniotest"
	"github.com/statepack/statepack/remote"
	"github.com/statepack/statepack/remote/backend"
)

// noWaitRetry retries without waiting: the tests count attempts, not time.
var noWaitRetry = remote.RetryPolicy{Attempts: 4}

// TestRetryAsksBackend: remote.WithRetry, wrapped around other wrappers,
// finds the S3 backend's classifier and retries what it calls transient
// (two calls, the second succeeding) and nothing else (one call), while
// its own rules (cancellation, the contract's sentinels) still come
// first. The error it returns carries the verdict to remote.IsTransient.
func TestRetryAsksBackend(t *testing.T) {
	srv := miniotest.Get(t)
	be := newS3(t, srv, srv.NewBucket(t.Context(), t), "retry/"+miniotest.RandomHex(4))
	if err := be.Put(t.Context(), "config", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		err   error
		calls int
	}{
		{"HTTP 500", minio.ErrorResponse{Code: "InternalError", StatusCode: 500}, 2},
		{"HTTP 503 SlowDown", minio.ErrorResponse{Code: "SlowDown", StatusCode: 503}, 2},
		{"HTTP 429", minio.ErrorResponse{Code: "TooManyRequests", StatusCode: 429}, 2},
		{"RequestTimeout", minio.ErrorResponse{Code: "RequestTimeout", StatusCode: 400}, 2},
		{"cancelled mid 5xx", errors.Join(context.Canceled, minio.ErrorResponse{StatusCode: 503}), 1},
		{"not found as 5xx", errors.Join(backend.ErrNotFound, minio.ErrorResponse{StatusCode: 503}), 1},
		{"HTTP 400", minio.ErrorResponse{Code: "InvalidArgument", StatusCode: 400}, 1},
	}
	for _, c := range cases {
		f := remote.NewFaulty(be).FailNth(remote.MethodStat, 1, c.err).FailNth(remote.MethodGet, 1, c.err)
		b := remote.WithRetry(remote.NewCounter(f), noWaitRetry)
		_, errStat := b.Stat(t.Context(), "config")
		rc, errGet := b.Get(t.Context(), "config")
		if rc != nil {
			rc.Close()
		}
		for method, err := range map[string]error{remote.MethodStat: errStat, remote.MethodGet: errGet} {
			if got := f.Calls(method); got != c.calls {
				t.Errorf("%s: %s called %d times, want %d", c.name, method, got, c.calls)
			}
			if (err == nil) != (c.calls == 2) {
				t.Errorf("%s: %s returned %v", c.name, method, err)
			}
		}
	}
}

// TestRetryPutIfServerError: a conditional write the server failed with a
// 5xx may have gone through, so it is read back, not repeated blindly;
// not written (the fault came before the server), it is made again.
func TestRetryPutIfServerError(t *testing.T) {
	srv := miniotest.Get(t)
	be := newS3(t, srv, srv.NewBucket(t.Context(), t), "putif/"+miniotest.RandomHex(4))
	f := remote.NewFaulty(be).FailNth(remote.MethodPutIf, 1, minio.ErrorResponse{Code: "InternalError", StatusCode: 500})
	_, err := remote.WithRetry(f, noWaitRetry).PutIf(t.Context(), "refs/main", []byte("s"), "")
	if f.Calls(remote.MethodPutIf) != 2 || err != nil {
		t.Fatalf("PutIf failing with HTTP 500: %d calls, err %v; want it read back and made again", f.Calls(remote.MethodPutIf), err)
	}
	if f.Calls(remote.MethodGetVersioned) != 1 {
		t.Errorf("%d reads back, want 1", f.Calls(remote.MethodGetVersioned))
	}
}

// TestNeverSentServerError: an answer of the server shows the request
// reached it.
func TestNeverSentServerError(t *testing.T) {
	if err := (minio.ErrorResponse{StatusCode: 503}); remote.NeverSent(err) {
		t.Errorf("NeverSent(%v) = true: the request may have reached the server", err)
	}
}
