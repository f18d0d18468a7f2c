package s3

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/statepack/statepack/internal/miniotest"
	"github.com/statepack/statepack/remote/backend"
)

func TestParseEndpoint(t *testing.T) {
	ok := map[string]endpoint{
		"":                                   {host: "s3.amazonaws.com", secure: true},
		"http://127.0.0.1:9000":              {host: "127.0.0.1:9000", secure: false},
		"http://localhost:4566/":             {host: "localhost:4566", secure: false},
		"https://s3.example.com":             {host: "s3.example.com", secure: true},
		"minio.internal:9000":                {host: "minio.internal:9000", secure: true},
		"https://[::1]:9000":                 {host: "[::1]:9000", secure: true},
		"https://s3.eu-west-1.amazonaws.com": {host: "s3.eu-west-1.amazonaws.com", secure: true},
	}
	for in, want := range ok {
		got, err := parseEndpoint(in)
		if err != nil || got != want {
			t.Errorf("parseEndpoint(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{
		"ftp://host", "http://", "https://host/path", "http://host?x=1",
		"http://user:" + plantedSecret + "@host", "http://host:port%zz",
	} {
		_, err := parseEndpoint(in)
		if err == nil {
			t.Errorf("parseEndpoint(%q) succeeded", in)
		} else if strings.Contains(err.Error(), plantedSecret) {
			t.Errorf("parseEndpoint(%q) error shows the password: %v", in, err)
		}
	}
}

const plantedSecret = "SECRET-must-never-print-internal"

func TestS3Sentinels(t *testing.T) {
	cases := []struct {
		err  error
		want error
	}{
		{minio.ErrorResponse{Code: "NoSuchKey", StatusCode: 404}, backend.ErrNotFound},
		{minio.ErrorResponse{Code: "NoSuchBucket", StatusCode: 404}, ErrNoBucket},
		{minio.ErrorResponse{Code: "AccessDenied", StatusCode: 403}, backend.ErrAccessDenied},
		{minio.ErrorResponse{Code: "InvalidAccessKeyId", StatusCode: 403}, backend.ErrAccessDenied},
		{minio.ErrorResponse{Code: "SignatureDoesNotMatch", StatusCode: 403}, backend.ErrAccessDenied},
		{minio.ErrorResponse{Code: "ExpiredToken", StatusCode: 400}, backend.ErrAccessDenied},
		{minio.ErrorResponse{Code: "PreconditionFailed", StatusCode: 412}, backend.ErrConflict},
		{minio.ErrorResponse{Code: "ConditionalRequestConflict", StatusCode: 409}, backend.ErrConflict},
		{minio.ErrorResponse{Code: "XMinioStorageFull", StatusCode: 507}, backend.ErrNoSpace},
		{minio.ErrorResponse{StatusCode: http.StatusForbidden}, backend.ErrAccessDenied},
		{minio.ErrorResponse{StatusCode: http.StatusPreconditionFailed}, backend.ErrConflict},
		{minio.ErrorResponse{Code: "BucketNotEmpty", StatusCode: 409}, nil},
		{minio.ErrorResponse{Code: "InternalError", StatusCode: 500}, nil},
		{errors.New("dial tcp: connection refused"), nil},
	}
	b := &Backend{bucket: "bkt", prefix: "p/", endpoint: endpoint{host: "h:1"}}
	for _, c := range cases {
		err := b.fail("get", "refs/main", c.err)
		if got := s3Sentinel(c.err); got != c.want {
			t.Errorf("s3Sentinel(%v) = %v, want %v", c.err, got, c.want)
		}
		if c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("wrapped %v does not match %v", c.err, c.want)
		}
		if !errors.Is(err, c.err) {
			t.Errorf("wrapped %v does not match the original", c.err)
		}
	}
}

func TestS3ErrorMessage(t *testing.T) {
	b := &Backend{bucket: "bkt", prefix: "team/", endpoint: endpoint{host: "s3.example.com", secure: true}, secrets: []string{plantedSecret}}
	err := b.fail("put", "packs/ab/abcd", minio.ErrorResponse{
		Code: "SignatureDoesNotMatch", StatusCode: 403,
		Message: "signature mismatch for secret " + plantedSecret,
	})
	msg := err.Error()
	for _, want := range []string{"put", "s3://bkt/team/packs/ab/abcd", "https://s3.example.com", "SignatureDoesNotMatch", "HTTP 403"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, plantedSecret) {
		t.Errorf("message shows the secret: %s", msg)
	}
}

func TestCheckContentRange(t *testing.T) {
	cases := []struct {
		cr                string
		n, offset, length int64
		ok                bool
	}{
		{"bytes 0-9/100", 10, 0, 10, true},
		{"bytes 90-99/100", 10, 90, 10, true},
		{"bytes 95-99/100", 5, 95, 10, false},  // shortened: ran past the end
		{"bytes 0-99/100", 100, 10, 10, false}, // whole object for a range
		{"", 100, 0, 100, true},                // whole object, asked for whole
		{"", 100, 10, 10, false},
		{"garbage", 10, 0, 10, false},
	}
	for _, c := range cases {
		err := checkContentRange(c.cr, c.n, c.offset, c.length)
		if (err == nil) != c.ok {
			t.Errorf("checkContentRange(%q, %d, %d, %d) = %v, want ok %v", c.cr, c.n, c.offset, c.length, err, c.ok)
		}
	}
}

func TestS3ConfigRedacts(t *testing.T) {
	cfg := Config{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: plantedSecret, SessionToken: plantedSecret + "-token"}
	for _, s := range []string{cfg.String(), cfg.GoString(), fmtAll(cfg)} {
		if strings.Contains(s, plantedSecret) {
			t.Errorf("printed config shows a secret: %s", s)
		}
		if !strings.Contains(s, "AKIDEXAMPLE") {
			t.Errorf("printed config hides the key id: %s", s)
		}
	}
}

// TestS3OperationsWithWrongCredentials: every request signed with a wrong
// secret fails with ErrAccessDenied, and no message shows the secret.
func TestS3OperationsWithWrongCredentials(t *testing.T) {
	srv := miniotest.Get(t)
	bucket := srv.NewBucket(t.Context(), t)
	cfg := Config{Endpoint: srv.Endpoint, Region: srv.Region, AccessKeyID: srv.AccessKey, SecretAccessKey: plantedSecret}
	b, err := New(bucket, "p", cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	_, errPutIf := b.PutIf(ctx, "refs/x", []byte("x"), "")
	_, errGet := b.Get(ctx, "config")
	_, errRange := b.GetRange(ctx, "config", 0, 1)
	_, errStat := b.Stat(ctx, "config")
	_, _, errVersioned := b.GetVersioned(ctx, "refs/x")
	ops := map[string]error{
		"Put":          b.Put(ctx, "config", bytes.NewReader([]byte("x")), 1),
		"PutIf":        errPutIf,
		"Get":          errGet,
		"GetRange":     errRange,
		"Stat":         errStat,
		"GetVersioned": errVersioned,
		"List":         b.List(ctx, "", func(backend.ObjectInfo) error { return nil }),
		"Delete":       b.Delete(ctx, "config"),
	}
	for op, err := range ops {
		if !errors.Is(err, backend.ErrAccessDenied) {
			t.Errorf("%s with a wrong secret: %v, want ErrAccessDenied", op, err)
		}
		if err != nil && strings.Contains(err.Error(), plantedSecret) {
			t.Errorf("%s: message shows the secret: %v", op, err)
		}
	}
}

// fmtAll prints cfg every way a log line might.
func fmtAll(cfg Config) string {
	return fmt.Sprintf("%v %+v %#v %s %v %+v", cfg, cfg, cfg, cfg, &cfg, []Config{cfg})
}

// TestShortSecretsNotScrubbed: a dummy secret such as "s" is not scrubbed
// from messages, which would otherwise lose every letter s.
func TestShortSecretsNotScrubbed(t *testing.T) {
	cfg := Config{AccessKeyID: "k", SecretAccessKey: "s", SessionToken: plantedSecret}
	if got := cfg.secrets(); len(got) != 1 || got[0] != plantedSecret {
		t.Errorf("secrets() = %q, want only the long token", got)
	}
}
