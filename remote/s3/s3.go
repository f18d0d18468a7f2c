package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/encrypt"

	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/remote/backend"
)

// Sizes that shape S3 uploads.
const (
	// singlePutMax is the largest object sent as one PUT request: a pack
	// (about 16 MiB) is always one request. Larger objects go multipart.
	singlePutMax = 64 << 20
	// partSize is the multipart part size; minio-go buffers one part at a
	// time for readers that are not io.ReaderAt.
	partSize = 16 << 20
	// maxVersionedSize bounds what GetVersioned reads into memory (the
	// contract's bound: see backend.MaxVersionedSize).
	maxVersionedSize = backend.MaxVersionedSize
)

// Backend is a backend.Backend on an S3 bucket (AWS or any S3-compatible
// server), every object stored under a key prefix.
//
// Writes are atomic by S3's nature: an object becomes visible only when
// its PUT (or multipart completion) succeeds. PutIf uses S3 conditional
// writes (If-None-Match: * to create, If-Match: <etag> to replace); its
// version tags are ETags. The backend makes one request per call and never
// retries (see remote.WithRetry), but it tells a retrying wrapper which of
// its errors are worth another try (Transient).
type Backend struct {
	client   *minio.Client
	core     minio.Core
	bucket   string
	prefix   string // "" or ending in "/"
	region   string
	endpoint endpoint
	secrets  []string
	sse      encrypt.ServerSide // nil: the bucket's default encryption
	sseMode  string             // SSES3, SSEKMS or SSEC when sse is set, for messages
	kmsKeyID string             // SSEKMS's key, for messages
}

var (
	_ backend.Backend             = (*Backend)(nil)
	_ backend.TransientClassifier = (*Backend)(nil)
)

// Open connects to bucket and checks that it exists, so that a wrong
// bucket or wrong credentials fail here rather than at the first object.
// A missing bucket is an error matching ErrNoBucket: the bucket is never
// created here (see CreateBucket). Wrong credentials give an error
// matching backend.ErrAccessDenied.
func Open(ctx context.Context, bucket, prefix string, cfg Config) (*Backend, error) {
	b, err := New(bucket, prefix, cfg)
	if err != nil {
		return nil, err
	}
	if err := b.CheckBucket(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

// New builds the backend for the objects under prefix in bucket without
// a request, for a caller that makes the first request itself (remote.Open
// retries CheckBucket, and creates the bucket when asked to). The bucket
// name must follow S3's rules (CheckBucketName); the prefix is cleaned as
// CleanPrefix does.
func New(bucket, prefix string, cfg Config) (*Backend, error) {
	if err := CheckBucketName(bucket); err != nil {
		return nil, err
	}
	prefix, err := CleanPrefix(prefix)
	if err != nil {
		return nil, err
	}
	if prefix != "" {
		prefix += "/"
	}
	sse, err := cfg.SSE.serverSide()
	if err != nil {
		return nil, fmt.Errorf("invalid S3 server-side encryption: %w", err)
	}
	client, ep, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	if sse != nil && sse.Type() == encrypt.SSEC && !ep.secure {
		return nil, fmt.Errorf("invalid S3 server-side encryption: %s=SSE-C needs an https:// endpoint, since the key goes with every request and S3 takes it only over HTTPS (the endpoint is %s)", EnvSSE, ep)
	}
	mode, _ := cfg.SSE.mode()
	return &Backend{
		client:   client,
		core:     minio.Core{Client: client},
		bucket:   bucket,
		prefix:   prefix,
		region:   cfg.Region,
		endpoint: ep,
		secrets:  cfg.secrets(),
		sse:      sse,
		sseMode:  mode,
		kmsKeyID: cfg.SSE.KMSKeyID,
	}, nil
}

// CheckBucket fails unless the bucket exists and the credentials may
// reach it: an error matching ErrNoBucket, or backend.ErrAccessDenied.
func (b *Backend) CheckBucket(ctx context.Context) error {
	ok, err := b.client.BucketExists(ctx, b.bucket)
	if err != nil {
		return b.fail("open bucket", "", err)
	}
	if !ok {
		return b.failAs("open bucket", "", errors.New("bucket does not exist"), ErrNoBucket)
	}
	return nil
}

// CreateBucket creates the bucket, in the configured region. A bucket that
// already exists and is ours is not an error.
func (b *Backend) CreateBucket(ctx context.Context) error {
	err := b.client.MakeBucket(ctx, b.bucket, minio.MakeBucketOptions{Region: b.region})
	if err != nil && minio.ToErrorResponse(err).Code != "BucketAlreadyOwnedByYou" {
		return b.fail("create bucket", "", err)
	}
	return nil
}

// Location implements backend.Backend: s3://bucket/prefix, as
// remote.ParseURL reads it.
func (b *Backend) Location() string {
	if b.prefix == "" {
		return "s3://" + b.bucket
	}
	return "s3://" + b.bucket + "/" + strings.TrimSuffix(b.prefix, "/")
}

func (b *Backend) objectURL(name string) string {
	if name == "" {
		return b.Location()
	}
	return "s3://" + b.bucket + "/" + b.prefix + name
}

// key maps an object name to its S3 key. Names follow the same rules as
// the directory backend's (clean relative slash paths, no dot segments, no
// hidden segments), so both backends accept exactly the same names.
func (b *Backend) key(name string) (string, error) {
	if !validName(name) {
		return "", fmt.Errorf("invalid object name %q", name)
	}
	return b.prefix + name, nil
}

func validName(name string) bool {
	if name == "" || strings.HasPrefix(name, "/") || path.Clean(name) != name ||
		!utf8.ValidString(name) || strings.ContainsRune(name, 0) {
		return false
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || strings.HasPrefix(seg, ".") {
			return false
		}
	}
	return true
}

// Get implements backend.Backend.
func (b *Backend) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	key, err := b.key(name)
	if err != nil {
		return nil, err
	}
	body, _, _, err := b.core.GetObject(ctx, b.bucket, key, b.readOptions())
	if err != nil {
		return nil, b.fail("get", name, err)
	}
	return &s3Body{ReadCloser: body, b: b, name: name}, nil
}

// GetRange implements backend.Backend. It sends a Range header and checks
// the Content-Range of the answer, so a server that ignores or shortens
// the range is an error rather than wrong bytes.
func (b *Backend) GetRange(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	key, err := b.key(name)
	if err != nil {
		return nil, err
	}
	if offset < 0 || length < 0 || offset > offset+length {
		return nil, fmt.Errorf("%s: invalid range %d+%d", b.objectURL(name), offset, length)
	}
	if length == 0 {
		return b.emptyRange(ctx, name, offset)
	}
	opts := b.readOptions()
	if err := opts.SetRange(offset, offset+length-1); err != nil {
		return nil, err
	}
	body, info, h, err := b.core.GetObject(ctx, b.bucket, key, opts)
	if err != nil {
		if minio.ToErrorResponse(err).StatusCode == http.StatusRequestedRangeNotSatisfiable {
			return nil, b.fail("get", name, fmt.Errorf("range %d+%d: %w", offset, length, backend.ErrOutOfRange))
		}
		return nil, b.fail("get", name, err)
	}
	if err := checkContentRange(h.Get("Content-Range"), info.Size, offset, length); err != nil {
		body.Close()
		return nil, b.fail("get", name, err)
	}
	return &s3Body{ReadCloser: body, b: b, name: name}, nil
}

// emptyRange serves a zero-length range, which HTTP cannot express: the
// object must exist and the offset must lie within it.
func (b *Backend) emptyRange(ctx context.Context, name string, offset int64) (io.ReadCloser, error) {
	info, err := b.Stat(ctx, name)
	if err != nil {
		return nil, err
	}
	if offset > info.Size {
		return nil, b.fail("get", name, fmt.Errorf("range %d+0 of an object of %d bytes: %w", offset, info.Size, backend.ErrOutOfRange))
	}
	return io.NopCloser(bytes.NewReader(nil)), nil
}

// checkContentRange verifies "bytes first-last/total" against the request.
// A server may answer a range covering the whole object with the whole
// object and no Content-Range; then n, the body's length, must match.
func checkContentRange(cr string, n, offset, length int64) error {
	if cr == "" && offset == 0 && n == length {
		return nil
	}
	spec, ok := strings.CutPrefix(cr, "bytes ")
	rng, total, ok2 := strings.Cut(spec, "/")
	first, last, ok3 := strings.Cut(rng, "-")
	f, err1 := strconv.ParseInt(first, 10, 64)
	l, err2 := strconv.ParseInt(last, 10, 64)
	if !ok || !ok2 || !ok3 || err1 != nil || err2 != nil {
		return fmt.Errorf("server answered range %d+%d with Content-Range %q", offset, length, cr)
	}
	if f != offset || l != offset+length-1 {
		return fmt.Errorf("range %d+%d of an object of %s bytes: %w", offset, length, total, backend.ErrOutOfRange)
	}
	return nil
}

// s3Body names the object in errors that happen while reading it.
type s3Body struct {
	io.ReadCloser
	b    *Backend
	name string
}

func (r *s3Body) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = r.b.fail("read", r.name, err)
	}
	return n, err
}

// Put implements backend.Backend. The object streams from r: up to
// singlePutMax bytes as one PUT, larger objects as a multipart upload with
// partSize parts. Either way S3 shows nothing under name until the upload
// completes, and an interrupted upload is aborted.
func (b *Backend) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	key, err := b.key(name)
	if err != nil {
		return err
	}
	opts := minio.PutObjectOptions{
		ContentType:          "application/octet-stream",
		PartSize:             partSize,
		DisableMultipart:     size >= 0 && size <= singlePutMax,
		ServerSideEncryption: b.sse,
	}
	if _, err := b.client.PutObject(ctx, b.bucket, key, hideCloser(r), size, opts); err != nil {
		return b.fail("put", name, err)
	}
	return nil
}

// hideCloser keeps minio-go from closing the caller's reader (it closes
// request bodies that are io.Closers) while keeping io.Seeker and
// io.ReaderAt, which let it upload without buffering.
func hideCloser(r io.Reader) io.Reader {
	if _, ok := r.(io.Closer); !ok {
		return r
	}
	if rsa, ok := r.(readSeekerAt); ok {
		return struct{ readSeekerAt }{rsa}
	}
	if rs, ok := r.(io.ReadSeeker); ok {
		return struct{ io.ReadSeeker }{rs}
	}
	return struct{ io.Reader }{r}
}

type readSeekerAt interface {
	io.ReadSeeker
	io.ReaderAt
}

// Stat implements backend.Backend.
func (b *Backend) Stat(ctx context.Context, name string) (backend.ObjectInfo, error) {
	key, err := b.key(name)
	if err != nil {
		return backend.ObjectInfo{}, err
	}
	info, err := b.client.StatObject(ctx, b.bucket, key, b.readOptions())
	if err != nil {
		return backend.ObjectInfo{}, b.fail("stat", name, err)
	}
	return backend.ObjectInfo{Name: name, Size: info.Size, ModTime: info.LastModified}, nil
}

// List implements backend.Backend. Names are relative to the backend's
// prefix; keys that are not valid object names (folder markers such as
// "packs/", hidden names) are skipped.
func (b *Backend) List(ctx context.Context, prefix string, fn func(backend.ObjectInfo) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops minio-go's listing goroutine when fn fails
	opts := minio.ListObjectsOptions{Prefix: b.prefix + prefix, Recursive: true}
	for obj := range b.client.ListObjectsIter(ctx, b.bucket, opts) {
		if obj.Err != nil {
			return b.fail("list", prefix+"*", obj.Err)
		}
		name := strings.TrimPrefix(obj.Key, b.prefix)
		if !validName(name) {
			continue
		}
		if err := fn(backend.ObjectInfo{Name: name, Size: obj.Size, ModTime: obj.LastModified}); err != nil {
			return err
		}
	}
	// A cancelled listing ends its channel without an error: without this
	// check a partial listing would pass for the whole one.
	return ctx.Err()
}

// Delete implements backend.Backend; S3 reports success for a missing key.
func (b *Backend) Delete(ctx context.Context, name string) error {
	key, err := b.key(name)
	if err != nil {
		return err
	}
	if err := b.client.RemoveObject(ctx, b.bucket, key, minio.RemoveObjectOptions{}); err != nil {
		return b.fail("delete", name, err)
	}
	return nil
}

// GetVersioned implements backend.Backend. The tag is the object's ETag,
// read in the same response as the content.
func (b *Backend) GetVersioned(ctx context.Context, name string) ([]byte, string, error) {
	key, err := b.key(name)
	if err != nil {
		return nil, "", err
	}
	body, info, _, err := b.core.GetObject(ctx, b.bucket, key, b.readOptions())
	if err != nil {
		return nil, "", b.fail("get", name, err)
	}
	defer body.Close()
	if info.Size > maxVersionedSize {
		return nil, "", b.fail("get", name, fmt.Errorf("object of %d bytes is too large for a ref or lock: %w", info.Size, format.ErrCorrupt))
	}
	data, err := io.ReadAll(io.LimitReader(body, maxVersionedSize))
	if err != nil {
		return nil, "", b.fail("read", name, err)
	}
	if info.ETag == "" {
		return nil, "", b.fail("get", name, errors.New("server sent no ETag"))
	}
	return data, info.ETag, nil
}

// PutIf implements backend.Backend with an S3 conditional write: header
// If-None-Match: * when ifMatch is empty (create only), If-Match: "<etag>"
// otherwise. The server answers 412 PreconditionFailed (or 409
// ConditionalRequestConflict while another conditional write to the same
// key is in flight on AWS) when the condition fails; AWS answers 404
// NoSuchKey to If-Match on a missing key. All three mean ErrConflict.
func (b *Backend) PutIf(ctx context.Context, name string, data []byte, ifMatch string) (string, error) {
	key, err := b.key(name)
	if err != nil {
		return "", err
	}
	opts := minio.PutObjectOptions{ContentType: "application/octet-stream", DisableMultipart: true, ServerSideEncryption: b.sse}
	if ifMatch == "" {
		opts.SetMatchETagExcept("*")
	} else {
		opts.SetMatchETag(ifMatch)
	}
	info, err := b.client.PutObject(ctx, b.bucket, key, bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		sentinel := s3Sentinel(err)
		if sentinel == backend.ErrNotFound && ifMatch != "" {
			sentinel = backend.ErrConflict
		}
		return "", b.failAs("conditional put", name, err, sentinel)
	}
	if info.ETag == "" {
		return "", b.fail("conditional put", name, errors.New("server sent no ETag"))
	}
	return info.ETag, nil
}
