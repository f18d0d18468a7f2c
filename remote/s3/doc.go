// Package s3 is the backend.Backend on an S3 bucket (AWS or any
// S3-compatible server, such as MinIO), built on minio-go. Everything
// that is particular to S3 lives here and nowhere else: the client and
// its transport timeouts, the credentials chain (static keys, a profile of
// the shared credentials file, an IAM role), S3's naming rules for
// buckets and key prefixes, the mapping of S3 error codes to the
// contract's sentinels, ErrNoBucket, and which of S3's answers are worth
// a retry (Backend.Transient, which remote.WithRetry asks through the
// backend.TransientClassifier ability).
//
// It knows nothing of URLs, the environment or retries: remote parses
// s3://bucket/prefix, reads the AWS environment into a Config
// (remote.S3ConfigFromEnv), opens the backend and wraps it. Every error
// it returns names the operation, the object and the endpoint, and never a
// secret (Redact).
//
// It imports the contract (remote/backend) and, for the ErrCorrupt
// sentinel the contract shares, archive/format. It must not import
// archive or any other of its packages, which stand above the backends,
// nor remote, which imports it.
package s3
