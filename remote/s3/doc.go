// Package s3 is the backend.Backend on an S3 bucket (AWS or any
// S3-compatible server, such as MinIO), built on minio-go. Everything
// that is particular to S3 lives here and nowhere else: the client and
// its transport timeouts, the credentials chain (static keys, a profile of
// the shared credentials file, an IAM role), S3's naming rules for
// buckets and key prefixes, server-side encryption, the mapping of S3
// error codes to the contract's sentinels, ErrNoBucket, and which of S3's
// answers are worth a retry (Backend.Transient, which remote.WithRetry
// asks through the backend.TransientClassifier ability).
//
// It knows nothing of URLs, the environment or retries: remote parses
// s3://bucket/prefix, reads the AWS environment into a Config
// (remote.S3ConfigFromEnv), opens the backend and wraps it. Every error
// it returns names the operation, the object and the endpoint, and never a
// secret (Redact).
//
// # Server-side encryption
//
// For users whose policy requires it, Config.SSE makes S3 encrypt every
// object at rest, set the way the AWS CLI sets it for `aws s3 cp`:
//
//	STATEPACK_S3_SSE=AES256        SSE-S3 (--sse AES256): S3 manages the key
//	STATEPACK_S3_SSE=aws:kms       SSE-KMS (--sse aws:kms): under a KMS key,
//	STATEPACK_S3_SSE_KMS_KEY_ID    the key (--sse-kms-key-id); unset: aws/s3
//	STATEPACK_S3_SSE=SSE-C         SSE-C (--sse-c AES256): a key of the user's,
//	STATEPACK_S3_SSE_C_KEY         base64 of 32 bytes (--sse-c-key), or
//	STATEPACK_S3_SSE_C_KEY_FILE    a file holding it, raw or base64
//
// Every write carries it: Put (single and multipart) and PutIf, so packs,
// indexes, manifests, refs and locks alike. SSE-S3 and SSE-KMS need
// nothing to read; SSE-C needs the key for every read too (Get, GetRange,
// Stat, GetVersioned), since S3 keeps only its hash. Listing and Delete
// need nothing. An SSE-C key is sent with every request, so SSE-C refuses
// a plain-HTTP endpoint (S3 would refuse it too). A read of an SSE-C
// object without the key, or with a key of an object written without
// one, fails with an error matching ErrCustomerKey that says what to set.
// The key is a secret like AWS_SECRET_ACCESS_KEY: Config.String and every
// message mask it.
//
// Server-side encryption protects the stored bytes from S3's disks and
// staff, and under SSE-KMS puts reads under the KMS key's policy; it does
// not hide the objects from whoever may read the bucket, since S3 decrypts
// for every authorised reader (and, for SSE-C, whoever holds the key).
// Object names and sizes stay visible. statepack's own encryption of a
// repository is separate, and may be used with it.
//
// An HTTPS endpoint signed by a private CA is trusted through
// Config.CABundle, a PEM file added to the system's CAs; the AWS CLI and
// SDKs, and remote.S3ConfigFromEnv, read it from AWS_CA_BUNDLE.
//
// It imports the contract (remote/backend) and, for the ErrCorrupt
// sentinel the contract shares, archive/format. It must not import
// archive or any other of its packages, which stand above the backends,
// nor remote, which imports it.
package s3
