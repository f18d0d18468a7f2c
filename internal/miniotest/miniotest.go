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
// To run the same tests against another server, set
// STATEPACK_TEST_S3_ENDPOINT, STATEPACK_TEST_S3_ACCESS_KEY and
// STATEPACK_TEST_S3_SECRET_KEY (and STATEPACK_TEST_S3_REGION if needed).
// With STATEPACK_TEST_S3_BUCKET set, every NewBucket returns that bucket
// and tests keep apart by key prefix; without it, buckets are created per
// test and removed afterwards.
package miniotest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
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
	bin, err := findMinIO()
	if err != nil {
		return nil, err
	}
	return startMinIO(ctx, bin)
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
	s.client, err = minio.New(u.Host, &minio.Options{
		Creds:  credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Secure: u.Scheme == "https",
		Region: s.Region,
	})
	return err
}

// Client returns a minio-go client with the server's root credentials,
// for tests that look at a bucket behind the back of the code under test.
func (s *Server) Client() *minio.Client { return s.client }

// External reports whether the server is an external endpoint.
func (s *Server) External() bool { return s.proc == nil }

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

// RandomHex returns 2n random hex digits, for names that must not clash.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// shared is the server of one test binary, started by the first Get.
var shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// Get returns the test binary's shared server, starting it on first use.
// When no server can be had the test is skipped, or, with CI=true, fails:
// CI must never skip the S3 tests silently. In -short mode it skips.
func Get(t testing.TB) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("S3 test against MinIO skipped in -short mode")
	}
	shared.once.Do(func() {
		shared.srv, shared.err = Start(context.Background())
	})
	if shared.err != nil {
		if InCI() {
			t.Fatalf("CI=true and no S3 server for the tests: %v", shared.err)
		}
		t.Skipf("no S3 server for the tests (set %s, or CI=true to make this fatal): %v", EnvMinIO, shared.err)
	}
	return shared.srv
}

// Main runs the tests of a package that uses Get and stops the shared
// server afterwards. Call it from TestMain: os.Exit(miniotest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if shared.srv != nil {
		shared.srv.Stop()
	}
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
