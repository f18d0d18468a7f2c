package s3_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/statepack/statepack/internal/backendtest"
	"github.com/statepack/statepack/internal/miniotest"
	"github.com/statepack/statepack/remote"
	"github.com/statepack/statepack/remote/backend"
	"github.com/statepack/statepack/remote/s3"
)

func TestMain(m *testing.M) { os.Exit(miniotest.Main(m)) }

// Secrets planted in configurations to check that no message shows them.
const (
	plantedSecret = "SECRET-must-never-print-5e1f0c"
	plantedToken  = "TOKEN-must-never-print-9a7b2d"
)

func s3Config(srv *miniotest.Server) s3.Config {
	return s3.Config{
		Endpoint:        srv.Endpoint,
		Region:          srv.Region,
		AccessKeyID:     srv.AccessKey,
		SecretAccessKey: srv.SecretKey,
	}
}

func newS3(t *testing.T, srv *miniotest.Server, bucket, prefix string) *s3.Backend {
	t.Helper()
	b, err := s3.Open(t.Context(), bucket, prefix, s3Config(srv))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// assertNoSecrets fails the test if msg shows a planted secret.
func assertNoSecrets(t *testing.T, msg string) {
	t.Helper()
	if strings.Contains(msg, plantedSecret) || strings.Contains(msg, plantedToken) {
		t.Errorf("message shows a secret: %s", msg)
	}
}

func TestS3Conformance(t *testing.T) {
	srv := miniotest.Get(t)
	bucket := srv.NewBucket(t.Context(), t)
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		return newS3(t, srv, bucket, "conformance/"+miniotest.RandomHex(6))
	})
}

func TestS3WrongCredentials(t *testing.T) {
	srv := miniotest.Get(t)
	bucket := srv.NewBucket(t.Context(), t)
	cases := map[string]s3.Config{
		"wrong secret":  {AccessKeyID: srv.AccessKey, SecretAccessKey: plantedSecret},
		"unknown key":   {AccessKeyID: "statepack-nobody", SecretAccessKey: plantedSecret},
		"bogus token":   {AccessKeyID: srv.AccessKey, SecretAccessKey: plantedSecret, SessionToken: plantedToken},
		"token, no key": {AccessKeyID: "statepack-nobody", SecretAccessKey: plantedSecret, SessionToken: plantedToken},
	}
	for name, cfg := range cases {
		cfg.Endpoint, cfg.Region = srv.Endpoint, srv.Region
		_, err := s3.Open(t.Context(), bucket, "p", cfg)
		if !errors.Is(err, backend.ErrAccessDenied) {
			t.Errorf("%s: %v, want ErrAccessDenied", name, err)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, bucket) || !strings.Contains(msg, strings.TrimPrefix(srv.Endpoint, "http://")) {
			t.Errorf("%s: message does not name bucket and endpoint: %s", name, msg)
		}
		assertNoSecrets(t, msg)
	}
}

func TestS3NoBucket(t *testing.T) {
	srv := miniotest.Get(t)
	bucket := "statepack-missing-" + miniotest.RandomHex(6)
	_, err := s3.Open(t.Context(), bucket, "p", s3Config(srv))
	if !errors.Is(err, s3.ErrNoBucket) {
		t.Fatalf("s3.Open on a missing bucket: %v, want ErrNoBucket", err)
	}
	if !strings.Contains(err.Error(), "s3://"+bucket) {
		t.Errorf("message does not name the bucket: %v", err)
	}
	exists, err := srv.Client().BucketExists(t.Context(), bucket)
	if err != nil || exists {
		t.Errorf("s3.Open created the bucket (exists %v, %v)", exists, err)
	}
}

func TestS3CreateBucket(t *testing.T) {
	srv := miniotest.Get(t)
	if srv.External() {
		t.Skip("does not create buckets on an external server")
	}
	raw := "s3://statepack-created-" + miniotest.RandomHex(6) + "/team"
	if _, err := remote.Open(t.Context(), raw, s3Config(srv), false); !errors.Is(err, s3.ErrNoBucket) {
		t.Fatalf("Open without create: %v, want ErrNoBucket", err)
	}
	b, err := remote.Open(t.Context(), raw, s3Config(srv), true)
	if err != nil {
		t.Fatalf("Open with create: %v", err)
	}
	if b.Location() != raw {
		t.Errorf("Location() = %q, want %q", b.Location(), raw)
	}
	if _, err := remote.Open(t.Context(), raw, s3Config(srv), true); err != nil {
		t.Errorf("Open with create of an existing bucket: %v", err)
	}
	if _, err := remote.Open(t.Context(), raw, s3Config(srv), false); err != nil {
		t.Errorf("Open of the created bucket: %v", err)
	}
}

// TestS3KeysUnderPrefix lists the whole bucket behind the backend's back:
// every key it wrote lies under its prefix, and nothing else is there.
func TestS3KeysUnderPrefix(t *testing.T) {
	srv := miniotest.Get(t)
	bucket := srv.NewBucket(t.Context(), t)
	root := "keys-" + miniotest.RandomHex(4) // all of the bucket, unless shared
	prefix := root + "/team"
	b := newS3(t, srv, bucket, prefix+"/")
	if want := "s3://" + bucket + "/" + prefix; b.Location() != want {
		t.Errorf("Location() = %q, want %q", b.Location(), want)
	}
	ctx := t.Context()
	names := []string{"config", "packs/ab/abcd", "index/i1", "snapshots/s1"}
	for _, n := range names {
		if err := b.Put(ctx, n, strings.NewReader(n), int64(len(n))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.PutIf(ctx, "refs/main", []byte("s1"), ""); err != nil {
		t.Fatal(err)
	}
	names = append(names, "refs/main")
	var keys []string
	opts := minio.ListObjectsOptions{Recursive: true}
	if srv.External() {
		opts.Prefix = root + "/" // the bucket may be shared with other tests
	}
	for obj := range srv.Client().ListObjects(ctx, bucket, opts) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		keys = append(keys, obj.Key)
	}
	var want []string
	for _, n := range names {
		want = append(want, prefix+"/"+n)
	}
	slices.Sort(keys)
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Errorf("bucket holds %q, want %q", keys, want)
	}
}

// TestS3PutIfTwoMachines: two clients of their own (two machines) move a
// ref from the same version at once; exactly one wins.
func TestS3PutIfTwoMachines(t *testing.T) {
	srv := miniotest.Get(t)
	bucket := srv.NewBucket(t.Context(), t)
	prefix := "race/" + miniotest.RandomHex(4)
	a, b := newS3(t, srv, bucket, prefix), newS3(t, srv, bucket, prefix)
	ctx := t.Context()
	for round := range 10 {
		_, tag, err := a.GetVersioned(ctx, "refs/main")
		if err != nil && !errors.Is(err, backend.ErrNotFound) {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, be := range []*s3.Backend{a, b} {
			wg.Go(func() {
				data := []byte{byte(round), byte(i)}
				_, errs[i] = be.PutIf(ctx, "refs/main", data, tag)
			})
		}
		wg.Wait()
		if (errs[0] == nil) == (errs[1] == nil) {
			t.Fatalf("round %d: errors %v and %v; want exactly one winner", round, errs[0], errs[1])
		}
		for _, err := range errs {
			if err != nil && !errors.Is(err, backend.ErrConflict) {
				t.Fatalf("round %d: loser got %v, want ErrConflict", round, err)
			}
		}
	}
}

// TestS3Multipart sends an object above the single-PUT limit, which goes
// up in parts, and checks that an interrupted one leaves no upload behind.
func TestS3Multipart(t *testing.T) {
	srv := miniotest.Get(t)
	bucket := srv.NewBucket(t.Context(), t)
	prefix := "multipart/" + miniotest.RandomHex(4)
	b := newS3(t, srv, bucket, prefix)
	ctx := t.Context()
	const n = 80 << 20
	if err := b.Put(ctx, "packs/big", plainReader(n, 1), n); err != nil {
		t.Fatalf("Put: %v", err)
	}
	rc, err := b.Get(ctx, "packs/big")
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	got, err := io.Copy(h, rc)
	rc.Close()
	if err != nil || got != n || !bytes.Equal(h.Sum(nil), sum(plainReader(n, 1))) {
		t.Errorf("read back %d bytes (%v), want the %d written", got, err, n)
	}

	cctx, cancel := context.WithCancel(ctx)
	r := &cancelAfter{r: plainReader(n, 2), left: 40 << 20, cancel: cancel}
	if err := b.Put(cctx, "packs/cancelled", r, n); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled multipart Put: %v, want context.Canceled", err)
	}
	if _, err := b.Stat(ctx, "packs/cancelled"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Stat after a cancelled Put: %v, want ErrNotFound", err)
	}
	for up := range srv.Client().ListIncompleteUploads(ctx, bucket, prefix, true) {
		t.Errorf("incomplete upload left behind: %+v", up)
	}
}

// plainReader streams n pseudo-random bytes with no Seek or ReadAt.
func plainReader(n int64, seed byte) io.Reader {
	return struct{ io.Reader }{io.LimitReader(rand.NewChaCha8([32]byte{seed}), n)}
}

func sum(r io.Reader) []byte {
	h := sha256.New()
	_, _ = io.Copy(h, r)
	return h.Sum(nil)
}

// cancelAfter cancels its context once left bytes have been read.
type cancelAfter struct {
	r      io.Reader
	left   int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.left -= int64(n); c.left <= 0 {
		c.cancel()
	}
	return n, err
}

// unreachable cases must fail within this bound, far below the defaults
// an endpoint that hangs would otherwise hit.
const failFast = 5 * time.Second

func TestS3UnreachableEndpoint(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now: connection refused
	cfg := s3.Config{Endpoint: "http://" + addr, AccessKeyID: "k", SecretAccessKey: plantedSecret}
	err = openWithin(t, cfg)
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("message does not name the endpoint %s: %v", addr, err)
	}
	if !remote.IsTransient(err) || !remote.NeverSent(err) {
		t.Errorf("connection refused: IsTransient %v, NeverSent %v; want both", remote.IsTransient(err), remote.NeverSent(err))
	}
}

// TestS3StalledEndpoint: a server that accepts connections and never
// answers, over HTTP and over HTTPS.
func TestS3StalledEndpoint(t *testing.T) {
	addr := stallingListener(t)
	short := s3.Timeouts{TLSHandshake: 300 * time.Millisecond, ResponseHeader: 300 * time.Millisecond}
	for _, scheme := range []string{"http://", "https://"} {
		cfg := s3.Config{Endpoint: scheme + addr, AccessKeyID: "k", SecretAccessKey: plantedSecret, SessionToken: plantedToken, Timeouts: short}
		err := openWithin(t, cfg)
		if !strings.Contains(err.Error(), addr) {
			t.Errorf("%s: message does not name the endpoint: %v", scheme, err)
		}
		if !remote.IsTransient(err) || remote.NeverSent(err) {
			t.Errorf("%s: IsTransient %v, NeverSent %v; want a transient error that may have been sent", scheme, remote.IsTransient(err), remote.NeverSent(err))
		}
	}
}

// openWithin opens an S3 remote that must fail, within failFast, without
// showing a secret.
func openWithin(t *testing.T, cfg s3.Config) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	start := time.Now()
	_, err := s3.Open(ctx, "bucket", "p", cfg)
	if took := time.Since(start); took > failFast {
		t.Errorf("failed after %v, want under %v", took, failFast)
	}
	if err == nil {
		t.Fatal("s3.Open succeeded")
	}
	if ctx.Err() != nil {
		t.Errorf("only the test's deadline stopped it: %v", err)
	}
	assertNoSecrets(t, err.Error())
	return err
}

// stallingListener accepts connections and reads them, never answering.
func stallingListener(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// TestS3PutStreams: a 48 MiB single-request Put from a plain reader never
// holds the object in memory (peak heap growth stays far below its size).
func TestS3PutStreams(t *testing.T) {
	srv := miniotest.Get(t)
	b := newS3(t, srv, srv.NewBucket(t.Context(), t), "stream/"+miniotest.RandomHex(4))
	const n = 48 << 20
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		var m runtime.MemStats
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak.Load() {
				peak.Store(m.HeapAlloc)
			}
		}
	}()
	err := b.Put(t.Context(), "packs/00/stream", plainReader(n, 3), n)
	close(done)
	if err != nil {
		t.Fatal(err)
	}
	if grew := int64(peak.Load()) - int64(base.HeapAlloc); grew > n/2 {
		t.Errorf("heap grew by %d MiB during a %d MiB Put: the object was buffered", grew>>20, n>>20)
	} else {
		t.Logf("peak heap growth %.1f MiB for a %d MiB Put", float64(grew)/(1<<20), n>>20)
	}
}
