package s3

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/minio/minio-go/v7"

	"github.com/statepack/statepack/remote/backend"
)

// ErrNoBucket: the S3 bucket named by a remote URL does not exist. It is
// S3's own: the backend contract knows no buckets. remote.Open creates
// the bucket on it when asked to; the CLI suggests doing so.
var ErrNoBucket = errors.New("bucket does not exist")

// s3Error is an error from one S3 request. Its message names the
// operation, the object and the endpoint, and never the credentials; it
// matches the sentinel the S3 error code maps to, and keeps the minio-go
// error for Transient and for callers that look deeper.
type s3Error struct {
	op       string // "get", "put", ...
	object   string // s3://bucket/prefix/name
	endpoint string
	sentinel error // nil when the failure maps to none
	err      error
	secrets  []string
	// explain says what the answer means for the server-side encryption
	// settings, and what to change; "" when it has nothing to do with it.
	explain string
}

func (e *s3Error) Error() string {
	msg := fmt.Sprintf("s3 %s %s (endpoint %s): %s", e.op, e.object, e.endpoint, describeS3Error(e.err))
	if e.explain != "" {
		msg = fmt.Sprintf("s3 %s %s (endpoint %s): %s (server: %s)", e.op, e.object, e.endpoint, e.explain, describeS3Error(e.err))
	}
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
	"NoSuchBucket":                   ErrNoBucket,
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

// s3Sentinel returns the sentinel for err, or nil.
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
func (b *Backend) fail(op, name string, err error) error {
	return b.failAs(op, name, err, s3Sentinel(err))
}

func (b *Backend) failAs(op, name string, err, sentinel error) error {
	explain, sseSentinel := b.sseExplain(op, err)
	if sentinel == nil {
		sentinel = sseSentinel
	}
	return &s3Error{
		op:       op,
		object:   b.objectURL(name),
		endpoint: b.endpoint.String(),
		sentinel: sentinel,
		err:      err,
		secrets:  b.secrets,
		explain:  explain,
	}
}

// Transient implements backend.TransientClassifier. S3 answers throttling
// (SlowDown and its kin), a request that timed out on the server's side
// and server errors (HTTP 5xx, 429) with codes that only this backend can
// read; those are worth another try. Any other answer of the server is
// permanent, and so is ErrNoBucket. An error that holds no answer of the
// server (the connection failed) is left to the caller's generic rules.
func (b *Backend) Transient(err error) (transient, known bool) {
	if errors.Is(err, ErrNoBucket) {
		return false, true
	}
	var er minio.ErrorResponse
	if !errors.As(err, &er) {
		return false, false
	}
	return transientResponse(er), true
}

// transientResponse classifies an S3 error response.
func transientResponse(er minio.ErrorResponse) bool {
	switch er.Code {
	case "SlowDown", "SlowDownRead", "SlowDownWrite", "Throttling", "ThrottlingException",
		"RequestTimeout", "InternalError", "ServiceUnavailable", "XMinioServerNotInitialized":
		return true
	case "NotImplemented":
		return false // HTTP 501: the server lacks the feature (such as a KMS), for good
	}
	return er.StatusCode >= 500 || er.StatusCode == http.StatusTooManyRequests
}
