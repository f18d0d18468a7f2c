// Package remote is how statepack reaches a repository that is not the
// local store: it parses remote URLs, looks up S3 credentials, opens the
// backend a URL names, and holds the wrappers that add one behaviour
// around any backend. It also holds push and pull, which copy snapshots
// between two repositories.
//
// A remote is named by a URL (see ParseURL):
//
//	s3://bucket/some/prefix   an S3 bucket, every object under the prefix
//	file:///srv/statepack     a plain directory, such as a mounted share
//	/srv/statepack, ./remote  the same, as a path
//
// The backends live in their own packages, behind the contract of
// remote/backend: a directory in remote/dirbackend, S3 (AWS or any
// S3-compatible server) in remote/s3, the only package that knows
// minio-go or an S3 error code. S3 settings follow the AWS conventions
// (S3ConfigFromEnv): endpoint, static keys, a profile of the shared
// credentials file, or an IAM role. Redact keeps every credential out of
// what statepack prints.
//
// Backends do one request per call and never retry. Behaviour that every
// backend may want is a wrapper around backend.Backend, in the manner of
// kopia's blob wrappers and restic's backend decorators:
//
//	WithRetry    retries transient failures with backoff, asking the backend
//	             which of its errors are transient (retry.go)
//	NewCounter   counts requests and bytes for push/pull summaries (counting.go)
//	ReadOnly     refuses every write, for verify and the source of a pull (readonly.go)
//	NewFaulty    injects failures before chosen operations, for tests (faults.go)
//
// Every wrapper has an Unwrap method, so that backend.As finds an ability
// (backend.Local, backend.Durable, backend.TransientClassifier,
// backend.RequestCounter) through any stack of them; no caller names a
// concrete backend or wrapper type to find one.
//
// Open puts these together for the CLI: it parses a remote URL and returns
// the matching backend, wrapped with retries.
package remote
