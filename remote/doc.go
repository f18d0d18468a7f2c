// Package remote holds what it takes to reach a repository that is not the
// local store: the storage backends, remote URLs and credentials, the
// wrappers that add one behaviour around any backend, and push and pull,
// which copy snapshots between two repositories.
//
// A remote is named by a URL (see ParseURL):
//
//	s3://bucket/some/prefix   an S3 bucket, every object under the prefix
//	file:///srv/statepack     a plain directory, such as a mounted share
//	/srv/statepack, ./remote  the same, as a path
//
// Both kinds implement archive.Backend: a directory through
// archive.DirBackend, S3 (AWS or any S3-compatible server) through
// S3Backend, built on minio-go. S3 settings follow the AWS conventions
// (S3ConfigFromEnv): endpoint, static keys, a profile of the shared
// credentials file, or an IAM role.
//
// Backends do one request per call and never retry. Behaviour that every
// backend may want is a wrapper around archive.Backend, in the manner of
// kopia's blob wrappers and restic's backend decorators:
//
//	WithRetry    retries transient failures with backoff (retry.go)
//	NewCounter   counts requests and bytes for push/pull summaries (counting.go)
//	NewFaulty    injects failures before chosen operations, for tests (faults.go)
//
// Open puts these together for the CLI: it parses a remote URL and returns
// the matching backend, wrapped with retries.
package remote
