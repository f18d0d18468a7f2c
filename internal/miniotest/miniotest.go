// Package miniotest gives tests a real S3 server: a MinIO started on a
// free loopback port with a temporary data directory and random root
// credentials, or an external endpoint (AWS or any S3 server) named by
// environment variables.
//
// A test package shares one server between its tests:
//
//	func TestMain(m *testing.M) { os.Exit(miniotest.Main(m)) }
//
//	func TestSomething(t *testing.T) {
//		srv := miniotest.Get(t)          // started on first use
//		bucket := srv.NewBucket(ctx, t)  // fresh, empty
//		...
//	}
//
// The MinIO binary is the one STATEPACK_MINIO names, else .tools/bin/minio
// in the module root (where the Makefile installs it), else minio on PATH.
// Without it the S3 tests skip, unless CI=true: in CI a missing or broken
// MinIO fails the tests, so it can never turn into a silent skip. They
// also skip in -short mode.
//
// Tests of S3 server-side encryption need more of the server than the
// shared one offers: SSE-S3 and SSE-KMS need a KMS, and S3 takes
// customer keys (SSE-C) only over HTTPS. GetSSE gives them a second MinIO
// of their own, with a static KMS key (MINIO_KMS_SECRET_KEY) and a
// self-signed certificate made here, so the server the other tests share
// stays a plain HTTP one.
//
// To run the same tests against another server, set
// STATEPACK_TEST_S3_ENDPOINT, STATEPACK_TEST_S3_ACCESS_KEY and
// STATEPACK_TEST_S3_SECRET_KEY (and STATEPACK_TEST_S3_REGION if needed).
// With STATEPACK_TEST_S3_BUCKET set, every NewBucket returns that bucket
// and tests keep apart by key prefix; without it, buckets are created per
// test and removed afterwards.
package miniotest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Environment variables that point the tests at an external S3 server.
const (
	EnvEndpoint  = "STATEPACK_TEST_S3_ENDPOINT"
	EnvAccessKey = "STATEPACK_TEST_S3_ACCESS_KEY"
	EnvSecretKey = "STATEPACK_TEST_S3_SECRET_KEY"
	EnvBucket    = "STATEPACK_TEST_S3_BUCKET"
	EnvRegion    = "STATEPACK_TEST_S3_REGION"
	// EnvMinIO names the MinIO binary to start.
	EnvMinIO = "STATEPACK_MINIO"
)

// Server is a running S3 server for tests.
type Server struct {
	Endpoint  string // "http://127.0.0.1:port", or the external endpoint
	AccessKey string
	SecretKey string
	Region    string // empty for the local MinIO (us-east-1)
	// CAFile is the PEM file of the CA that signed an HTTPS MinIO's
	// certificate (Options.TLS), for clients to trust; "" otherwise.
	CAFile string
	// KMSKeyID names the KMS key of a MinIO started with Options.KMSKey,
	// the key SSE-KMS requests may name; "" otherwise.
	KMSKeyID string

	bucket string // external: the one bucket every test shares
	client *minio.Client
	proc   *process // nil for an external server
}

// Start starts a MinIO, or connects to the external server when
// STATEPACK_TEST_S3_ENDPOINT is set. Stop releases it.
func Start(ctx context.Context) (*Server, error) {
	if os.Getenv(EnvEndpoint) != "" {
		return external()
	}
	return StartWith(ctx, Options{})
}

// Options are what a MinIO of its own serves beyond plain S3. The zero
// value is the server Start starts.
type Options struct {
	// TLS serves HTTPS with a certificate for 127.0.0.1 signed by a CA
	// made for this server alone (Server.CAFile). S3 accepts customer
	// keys (SSE-C) only over HTTPS.
	TLS bool
	// KMSKey, when set, gives MinIO a static KMS key of this name with
	// random key material (MINIO_KMS_SECRET_KEY), which is what it needs
	// to serve SSE-S3 and SSE-KMS.
	KMSKey string
}

// StartWith starts a MinIO with opts, never an external server: the
// options describe how to set the server up, which an external one
// already is. Stop releases it.
func StartWith(ctx context.Context, opts Options) (*Server, error) {
	bin, err := findMinIO()
	if err != nil {
		return nil, err
	}
	return startMinIO(ctx, bin, opts)
}

func external() (*Server, error) {
	s := &Server{
		Endpoint:  os.Getenv(EnvEndpoint),
		AccessKey: os.Getenv(EnvAccessKey),
		SecretKey: os.Getenv(EnvSecretKey),
		Region:    os.Getenv(EnvRegion),
		bucket:    os.Getenv(EnvBucket),
	}
	if s.AccessKey == "" || s.SecretKey == "" {
		return nil, fmt.Errorf("%s is set but %s or %s is not", EnvEndpoint, EnvAccessKey, EnvSecretKey)
	}
	if err := s.connect(); err != nil {
		return nil, err
	}
	return s, nil
}

// connect makes the administrative client tests use for setup.
func (s *Server) connect() error {
	u, err := url.Parse(s.Endpoint)
	if err != nil || u.Host == "" {
		return fmt.Errorf("bad S3 test endpoint %q: want scheme://host[:port]", s.Endpoint)
	}
	opts := &minio.Options{
		Creds:  credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Secure: u.Scheme == "https",
		Region: s.Region,
	}
	if s.CAFile != "" {
		if opts.Transport, err = transport(s.CAFile); err != nil {
			return err
		}
	}
	s.client, err = minio.New(u.Host, opts)
	return err
}

// Client returns a minio-go client with the server's root credentials,
// for tests that look at a bucket behind the back of the code under test.
func (s *Server) Client() *minio.Client { return s.client }

// External reports whether the server is an external endpoint.
func (s *Server) External() bool { return s.proc == nil }

// DataDir is the directory a MinIO of its own keeps its objects in, for
// tests that check what it stores on disk; "" for an external server.
func (s *Server) DataDir() string {
	if s.proc == nil {
		return ""
	}
	return filepath.Join(s.proc.dir, "data")
}

// NewBucket returns an empty bucket for t: a new one (removed when t
// ends, on an external server), or the shared STATEPACK_TEST_S3_BUCKET.
func (s *Server) NewBucket(ctx context.Context, t testing.TB) string {
	t.Helper()
	if s.bucket != "" {
		return s.bucket
	}
	name := "statepack-test-" + RandomHex(6)
	if err := s.client.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: s.Region}); err != nil {
		t.Fatalf("create bucket %s at %s: %v", name, s.Endpoint, err)
	}
	if s.External() {
		t.Cleanup(func() { s.removeBucket(context.WithoutCancel(ctx), name) })
	}
	return name
}

// removeBucket deletes a test bucket and everything in it, best effort.
func (s *Server) removeBucket(ctx context.Context, name string) {
	objs := s.client.ListObjects(ctx, name, minio.ListObjectsOptions{Recursive: true})
	for e := range s.client.RemoveObjects(ctx, name, objs, minio.RemoveObjectsOptions{}) {
		_ = e // best effort
	}
	_ = s.client.RemoveBucket(ctx, name)
}

// Stop stops the MinIO and removes its data. It does nothing for an
// external server.
func (s *Server) Stop() {
	if s.proc != nil {
		s.proc.stop()
	}
}

// OnDisk reports whether any file a MinIO of its own keeps for the
// objects under prefix in bucket holds needle, for tests that check that
// what they stored is not there in the clear. MinIO keeps a directory per
// object: xl.meta, which holds small objects inline, and part files. It
// fails on an external server, whose disk is out of reach.
func (s *Server) OnDisk(bucket, prefix string, needle []byte) (bool, error) {
	if s.proc == nil {
		return false, errors.New("an external server's disk is out of reach")
	}
	found := false
	err := filepath.WalkDir(filepath.Join(s.DataDir(), bucket, prefix), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || found {
			return err
		}
		data, err := os.ReadFile(path)
		found = bytes.Contains(data, needle)
		return err
	})
	return found, err
}

// RandomHex returns 2n random hex digits, for names that must not clash.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// sharedServer is a server of one test binary, started on first use.
type sharedServer struct {
	once sync.Once
	srv  *Server
	err  error
}

// shared is Get's server; sharedSSE is GetSSE's.
var shared, sharedSSE sharedServer

// get starts the server on first use and hands it to t, or skips or
// fails t (see Get) when there is none.
func (sh *sharedServer) get(t testing.TB, start func() (*Server, error)) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("S3 test against MinIO skipped in -short mode")
	}
	sh.once.Do(func() { sh.srv, sh.err = start() })
	if sh.err != nil {
		if InCI() {
			t.Fatalf("CI=true and no S3 server for the tests: %v", sh.err)
		}
		t.Skipf("no S3 server for the tests (set %s, or CI=true to make this fatal): %v", EnvMinIO, sh.err)
	}
	return sh.srv
}

// stop stops the server if it was started.
func (sh *sharedServer) stop() {
	if sh.srv != nil {
		sh.srv.Stop()
	}
}

// Get returns the test binary's shared server, starting it on first use.
// When no server can be had the test is skipped, or, with CI=true, fails:
// CI must never skip the S3 tests silently. In -short mode it skips.
func Get(t testing.TB) *Server {
	t.Helper()
	return shared.get(t, func() (*Server, error) { return Start(context.Background()) })
}

// SSEKeyName is the name of the KMS key of GetSSE's server.
const SSEKeyName = "statepack-test-key"

// GetSSE returns the test binary's server for tests of server-side
// encryption, starting it on first use: a MinIO of its own, apart from
// Get's, serving HTTPS (Server.CAFile) with a static KMS key
// (Server.KMSKeyID). It skips or fails as Get does; with an external
// server configured it skips, since whether that server has a KMS and
// HTTPS is not known here.
func GetSSE(t testing.TB) *Server {
	t.Helper()
	if os.Getenv(EnvEndpoint) != "" {
		t.Skipf("%s is set: the server-side encryption tests need a MinIO of their own", EnvEndpoint)
	}
	return sharedSSE.get(t, func() (*Server, error) {
		return StartWith(context.Background(), Options{TLS: true, KMSKey: SSEKeyName})
	})
}

// Main runs the tests of a package that uses Get or GetSSE and stops the
// shared servers afterwards. Call it from TestMain:
// os.Exit(miniotest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	shared.stop()
	sharedSSE.stop()
	return code
}

// InCI reports whether the tests run in CI (CI=true or CI=1), where
// missing test infrastructure is a failure, not a skip.
func InCI() bool {
	switch strings.ToLower(os.Getenv("CI")) {
	case "true", "1", "yes":
		return true
	}
	return false
}

// errNoMinIO explains where the binary was looked for.
var errNoMinIO = errors.New("MinIO binary not found: set " + EnvMinIO + ", run `make tools`, or put minio on PATH")
