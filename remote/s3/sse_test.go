package s3_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/encrypt"

	"github.com/statepack/statepack/internal/backendtest"
	"github.com/statepack/statepack/internal/miniotest"
	"github.com/statepack/statepack/remote/backend"
	"github.com/statepack/statepack/remote/s3"
)

// Customer keys of the SSE-C tests, base64 as STATEPACK_S3_SSE_C_KEY
// takes them.
var (
	customerKey      = bytes.Repeat([]byte{0x5c}, 32)
	customerKeyB64   = base64.StdEncoding.EncodeToString(customerKey)
	otherCustomerKey = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xa3}, 32))
)

// sseConfig is the configuration of GetSSE's server: HTTPS, trusted
// through CABundle, with the encryption given.
func sseConfig(srv *miniotest.Server, sse s3.SSE) s3.Config {
	cfg := s3Config(srv)
	cfg.CABundle = srv.CAFile
	cfg.SSE = sse
	return cfg
}

func newSSE(t *testing.T, srv *miniotest.Server, bucket, prefix string, sse s3.SSE) *s3.Backend {
	t.Helper()
	b, err := s3.Open(t.Context(), bucket, prefix, sseConfig(srv, sse))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sseModes are the three modes, each with what MinIO must report for an
// object written with it.
func sseModes(srv *miniotest.Server) []struct {
	name   string
	sse    s3.SSE
	header string // the metadata that shows the object is encrypted so
	want   string
} {
	return []struct {
		name   string
		sse    s3.SSE
		header string
		want   string
	}{
		{"SSE-S3", s3.SSE{Mode: "AES256"}, "X-Amz-Server-Side-Encryption", "AES256"},
		{"SSE-KMS", s3.SSE{Mode: "aws:kms", KMSKeyID: srv.KMSKeyID}, "X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id", srv.KMSKeyID},
		{"SSE-C", s3.SSE{Mode: "SSE-C", CustomerKey: customerKeyB64}, "X-Amz-Server-Side-Encryption-Customer-Algorithm", "AES256"},
	}
}

// TestS3SSEConformance: the backend keeps the whole contract in each
// server-side encryption mode (reads, ranges, sizes in listings,
// conditional writes and their ETags).
func TestS3SSEConformance(t *testing.T) {
	srv := miniotest.GetSSE(t)
	bucket := srv.NewBucket(t.Context(), t)
	for _, m := range sseModes(srv) {
		t.Run(m.name, func(t *testing.T) {
			backendtest.Run(t, func(t *testing.T) backend.Backend {
				return newSSE(t, srv, bucket, "conformance/"+miniotest.RandomHex(6), m.sse)
			})
		})
	}
}

// TestS3SSEStoresEncrypted: every kind of object the backend writes (one
// PUT, a multipart upload, a conditional create and replace) is stored
// encrypted in the mode asked for, as MinIO reports it and as its disk
// shows it, and reads back whole and in ranges.
func TestS3SSEStoresEncrypted(t *testing.T) {
	srv := miniotest.GetSSE(t)
	ctx := t.Context()
	bucket := srv.NewBucket(ctx, t)
	ssec, err := encrypt.NewSSEC(customerKey)
	if err != nil {
		t.Fatal(err)
	}

	// The control: without SSE the marker is on MinIO's disk in the clear,
	// so the check below can see plaintext when there is some.
	plain := newS3Over(t, srv, bucket, "plain")
	marker := "plaintext-marker-" + miniotest.RandomHex(8)
	if err := plain.Put(ctx, "config", strings.NewReader(strings.Repeat(marker, 64)), int64(64*len(marker))); err != nil {
		t.Fatal(err)
	}
	if !onDisk(t, srv, bucket, "plain", marker) {
		t.Fatalf("an unencrypted object's content is not found on MinIO's disk: the check cannot work")
	}

	for _, m := range sseModes(srv) {
		t.Run(m.name, func(t *testing.T) {
			b := newSSE(t, srv, bucket, m.name, m.sse)
			marker := "secret-marker-" + miniotest.RandomHex(8)
			content := func(n int) []byte { return bytes.Repeat([]byte(marker), n/len(marker)+1)[:n] }
			objects := map[string][]byte{
				"config":        content(300),
				"packs/ab/ab01": content(1 << 20),
				"index/i1":      content(4000),
				"packs/ab/big":  content(17 << 20), // unknown size: multipart, two parts
				"refs/main":     content(200),
				"locks/l1":      content(100),
			}
			for _, name := range []string{"config", "packs/ab/ab01", "index/i1"} {
				if err := b.Put(ctx, name, bytes.NewReader(objects[name]), int64(len(objects[name]))); err != nil {
					t.Fatalf("Put %s: %v", name, err)
				}
			}
			if err := b.Put(ctx, "packs/ab/big", struct{ io.Reader }{bytes.NewReader(objects["packs/ab/big"])}, -1); err != nil {
				t.Fatalf("multipart Put: %v", err)
			}
			tag, err := b.PutIf(ctx, "refs/main", []byte("first"), "")
			if err != nil {
				t.Fatalf("PutIf create: %v", err)
			}
			if _, err := b.PutIf(ctx, "refs/main", objects["refs/main"], tag); err != nil {
				t.Fatalf("PutIf replace: %v", err)
			}
			if _, err := b.PutIf(ctx, "locks/l1", objects["locks/l1"], ""); err != nil {
				t.Fatalf("PutIf lock: %v", err)
			}

			var statOpts minio.StatObjectOptions
			if m.sse.Mode == "SSE-C" {
				statOpts.ServerSideEncryption = ssec
			}
			for name, want := range objects {
				info, err := srv.Client().StatObject(ctx, bucket, m.name+"/"+name, statOpts)
				if err != nil {
					t.Fatalf("StatObject %s: %v", name, err)
				}
				if got := info.Metadata.Get(m.header); !strings.Contains(got, m.want) {
					t.Errorf("%s: %s = %q, want %q (metadata %v)", name, m.header, got, m.want, info.Metadata)
				}
				if got := body(t)(b.Get(ctx, name)); !bytes.Equal(got, want) {
					t.Errorf("%s: read back %d bytes, not the %d written", name, len(got), len(want))
				}
				off, n := int64(len(want)/3), int64(len(want)/2)
				if got := body(t)(b.GetRange(ctx, name, off, n)); !bytes.Equal(got, want[off:off+n]) {
					t.Errorf("%s: range %d+%d differs", name, off, n)
				}
				if st, err := b.Stat(ctx, name); err != nil || st.Size != int64(len(want)) {
					t.Errorf("%s: Stat = %+v, %v; want size %d", name, st, err, len(want))
				}
			}
			if data, _, err := b.GetVersioned(ctx, "refs/main"); err != nil || !bytes.Equal(data, objects["refs/main"]) {
				t.Errorf("GetVersioned: %q, %v", data, err)
			}
			if onDisk(t, srv, bucket, m.name, marker) {
				t.Errorf("the content is on MinIO's disk in the clear")
			}
		})
	}
}

// TestS3SSECWithoutKey: an object written with a customer key cannot be
// read without it, nor with another; each failure says what to set, and
// no message shows a key.
func TestS3SSECWithoutKey(t *testing.T) {
	srv := miniotest.GetSSE(t)
	ctx := t.Context()
	bucket := srv.NewBucket(ctx, t)
	enc := newSSE(t, srv, bucket, "p", s3.SSE{Mode: "SSE-C", CustomerKey: customerKeyB64})
	data := bytes.Repeat([]byte("x"), 1000)
	if err := enc.Put(ctx, "packs/ab/ab01", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if _, err := enc.PutIf(ctx, "refs/main", data, ""); err != nil {
		t.Fatal(err)
	}

	reads := func(b *s3.Backend) map[string]error {
		_, getErr := b.Get(ctx, "packs/ab/ab01")
		_, rangeErr := b.GetRange(ctx, "packs/ab/ab01", 10, 20)
		_, statErr := b.Stat(ctx, "packs/ab/ab01")
		_, _, versionedErr := b.GetVersioned(ctx, "refs/main")
		return map[string]error{"Get": getErr, "GetRange": rangeErr, "Stat": statErr, "GetVersioned": versionedErr}
	}
	check := func(what string, err error, sentinel error, want ...string) {
		t.Helper()
		if err == nil {
			t.Errorf("%s: no error", what)
			return
		}
		msg := err.Error()
		if sentinel != nil && !errors.Is(err, sentinel) {
			t.Errorf("%s: %v, want it to match %v", what, err, sentinel)
		}
		for _, w := range want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: %q does not say %q", what, msg, w)
			}
		}
		if strings.Contains(msg, "\n") || strings.Contains(msg, customerKeyB64) || strings.Contains(msg, otherCustomerKey) {
			t.Errorf("%s: message is not one line, or shows a key: %s", what, msg)
		}
		if transient, _ := enc.Transient(err); transient {
			t.Errorf("%s: %v is transient, want it permanent", what, err)
		}
	}

	noKey := newS3Over(t, srv, bucket, "p")
	for op, err := range reads(noKey) {
		check("without the key: "+op, err, s3.ErrCustomerKey, "encrypted with a customer key", "STATEPACK_S3_SSE=SSE-C", "STATEPACK_S3_SSE_C_KEY")
	}
	// Listing needs no key.
	if err := noKey.List(ctx, "", func(backend.ObjectInfo) error { return nil }); err != nil {
		t.Errorf("List without the key: %v", err)
	}

	otherKey := newSSE(t, srv, bucket, "p", s3.SSE{Mode: "SSE-C", CustomerKey: otherCustomerKey})
	for op, err := range reads(otherKey) {
		check("with another key: "+op, err, backend.ErrAccessDenied, "not the one the object was written with")
	}

	// The other way round: a key given for objects written without one.
	plain := newS3Over(t, srv, bucket, "q")
	if err := plain.Put(ctx, "packs/ab/ab01", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if _, err := plain.PutIf(ctx, "refs/main", data, ""); err != nil {
		t.Fatal(err)
	}
	for op, err := range reads(newSSE(t, srv, bucket, "q", s3.SSE{Mode: "SSE-C", CustomerKey: customerKeyB64})) {
		check("key for plain objects: "+op, err, s3.ErrCustomerKey, "not encrypted with a customer key", "unset STATEPACK_S3_SSE")
	}
}

// TestS3SSEKMSUnknownKey: a write under a KMS key the server does not have
// fails for good, naming the variable to check.
func TestS3SSEKMSUnknownKey(t *testing.T) {
	srv := miniotest.GetSSE(t)
	bucket := srv.NewBucket(t.Context(), t)
	b := newSSE(t, srv, bucket, "p", s3.SSE{Mode: "aws:kms", KMSKeyID: "no-such-key"})
	_, err := b.PutIf(t.Context(), "refs/main", []byte("x"), "")
	if err == nil || !strings.Contains(err.Error(), "STATEPACK_S3_SSE_KMS_KEY_ID") || !strings.Contains(err.Error(), "no-such-key") {
		t.Fatalf("PutIf under a missing KMS key: %v, want an error naming STATEPACK_S3_SSE_KMS_KEY_ID", err)
	}
	if transient, _ := b.Transient(err); transient {
		t.Errorf("%v is transient, want it permanent", err)
	}
}

// TestS3SSEWithoutKMS: a server without a KMS cannot serve SSE-S3; the
// error says so, and is not retried.
func TestS3SSEWithoutKMS(t *testing.T) {
	srv := miniotest.Get(t)
	if srv.External() {
		t.Skip("whether an external server has a KMS is not known")
	}
	bucket := srv.NewBucket(t.Context(), t)
	cfg := s3Config(srv)
	cfg.SSE = s3.SSE{Mode: "AES256"}
	b, err := s3.Open(t.Context(), bucket, "p", cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = b.Put(t.Context(), "config", strings.NewReader("x"), 1)
	if err == nil || !strings.Contains(err.Error(), "does not serve STATEPACK_S3_SSE=AES256") {
		t.Fatalf("Put with SSE-S3 on a server without a KMS: %v", err)
	}
	if transient, _ := b.Transient(err); transient {
		t.Errorf("%v is transient, want it permanent", err)
	}
}

// newS3Over is a backend on GetSSE's server without server-side
// encryption.
func newS3Over(t *testing.T, srv *miniotest.Server, bucket, prefix string) *s3.Backend {
	t.Helper()
	return newSSE(t, srv, bucket, prefix, s3.SSE{})
}

// body reads the whole of a Get or GetRange, or fails the test.
func body(t *testing.T) func(io.ReadCloser, error) []byte {
	return func(rc io.ReadCloser, err error) []byte {
		t.Helper()
		if err == nil {
			defer rc.Close()
			var data []byte
			if data, err = io.ReadAll(rc); err == nil {
				return data
			}
		}
		t.Fatal(err)
		return nil
	}
}

// onDisk reports whether MinIO's disk holds marker in the clear for an
// object under prefix in bucket.
func onDisk(t *testing.T, srv *miniotest.Server, bucket, prefix, marker string) bool {
	t.Helper()
	found, err := srv.OnDisk(bucket, prefix, []byte(marker))
	if err != nil {
		t.Fatal(err)
	}
	return found
}
