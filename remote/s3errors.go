package remote

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/minio/minio-go/v7"

	"github.com/statepack/statepack/remote/backend"
)

// s3Error is an error from one S3 request. Its message names the
// operation, the object and the endpoint, and never the credentials; it
// matches the archive sentinel the S3 error code maps to, and keeps the
// minio-go error for callers (and WithRetry) that look deeper.
type s3Error struct {
	op       string // "get", "put", ...
	object   string // s3://bucket/prefix/name
	endpoint string
	sentinel error // nil when the failure maps to none
	err      error
	secrets  []string
}

func (e *s3Error) Error() string {
	msg := fmt.Sprintf("s3 %s %s (endpoint %s): %s", e.op, e.object, e.endpoint, describeS3Error(e.err))
	for _, s := range e.secrets {
		msg = strings.ReplaceAll(msg, s, "<redacted>")
	}
	return Redact(msg) // also a profile's or an IAM role's secrets
}

func (e *s3Error) Unwrap() []error {
	if e.sentinel == nil {
		return []error{e.err}
	}
	return []error{e.sentinel, e.err}
}

// describeS3Error renders an S3 error response with its code and status,
// which the minio-go message alone leaves out.
func describeS3Error(err error) string {
	var er minio.ErrorResponse
	if !errors.As(err, &er) || er.Code == "" {
		return err.Error()
	}
	msg := strings.TrimSuffix(er.Error(), ".")
	if er.StatusCode != 0 {
		return fmt.Sprintf("%s (%s, HTTP %d)", msg, er.Code, er.StatusCode)
	}
	return fmt.Sprintf("%s (%s)", msg, er.Code)
}

// s3Sentinels maps S3 error codes to the errors callers branch on.
var s3Sentinels = map[string]error{
	"NoSuchKey":                      backend.ErrNotFound,
	"NoSuchBucket":                   backend.ErrNoBucket,
	"AccessDenied":                   backend.ErrAccessDenied,
	"AllAccessDisabled":              backend.ErrAccessDenied,
	"InvalidAccessKeyId":             backend.ErrAccessDenied,
	"SignatureDoesNotMatch":          backend.ErrAccessDenied,
	"InvalidToken":                   backend.ErrAccessDenied,
	"ExpiredToken":                   backend.ErrAccessDenied,
	"PreconditionFailed":             backend.ErrConflict,
	"ConditionalRequestConflict":     backend.ErrConflict,
	"XMinioStorageFull":              backend.ErrNoSpace,
	"XMinioAdminBucketQuotaExceeded": backend.ErrNoSpace,
}

// s3Sentinel returns the archive sentinel for err, or nil.
func s3Sentinel(err error) error {
	var er minio.ErrorResponse
	if !errors.As(err, &er) {
		return nil
	}
	if s, ok := s3Sentinels[er.Code]; ok {
		return s
	}
	switch er.StatusCode {
	case http.StatusForbidden:
		return backend.ErrAccessDenied
	case http.StatusPreconditionFailed:
		return backend.ErrConflict
	}
	return nil
}

// fail wraps an error from an S3 request on object name ("" for the
// bucket itself).
func (b *S3Backend) fail(op, name string, err error) error {
	return b.failAs(op, name, err, s3Sentinel(err))
}

func (b *S3Backend) failAs(op, name string, err, sentinel error) error {
	return &s3Error{
		op:       op,
		object:   b.objectURL(name),
		endpoint: b.endpoint.String(),
		sentinel: sentinel,
		err:      err,
		secrets:  b.secrets,
	}
}
