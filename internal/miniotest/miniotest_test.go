package miniotest

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/encrypt"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// TestServer: the shared server serves, hands out empty buckets, and
// accepts the credentials it advertises.
func TestServer(t *testing.T) {
	srv := Get(t)
	ctx := t.Context()
	a, b := srv.NewBucket(ctx, t), srv.NewBucket(ctx, t)
	if a == b && !srv.External() {
		t.Errorf("NewBucket returned %s twice", a)
	}
	if !srv.External() {
		for obj := range srv.Client().ListObjects(ctx, a, minio.ListObjectsOptions{Recursive: true}) {
			t.Errorf("new bucket holds %+v", obj)
		}
	}
	if srv.Endpoint == "" || srv.AccessKey == "" || srv.SecretKey == "" {
		t.Errorf("server lacks endpoint or credentials: %+v", srv)
	}
}

// TestStartStop: a server of its own stops for good and leaves no data.
func TestStartStop(t *testing.T) {
	Get(t) // skips (or fails in CI) like the others when MinIO is missing
	if os.Getenv(EnvEndpoint) != "" {
		t.Skip("external server: nothing to start")
	}
	srv, err := Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	dir := srv.proc.dir
	srv.Stop()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data directory %s survives Stop: %v", dir, err)
	}
	if resp, err := http.Get(srv.Endpoint + "/minio/health/live"); err == nil {
		resp.Body.Close()
		t.Errorf("server still answers after Stop")
	}
}

// TestHelperGet is run by TestMissingMinIO in a child process.
func TestHelperGet(t *testing.T) {
	if os.Getenv("MINIOTEST_HELPER") == "" {
		t.Skip("helper for TestMissingMinIO")
	}
	Get(t)
	t.Log("got a server")
}

// TestMissingMinIO: without MinIO the tests skip, except under CI=true,
// where they fail: a broken setup must never pass as a skip.
func TestMissingMinIO(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child test process")
	}
	run := func(ci string) (string, error) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperGet$", "-test.v")
		cmd.Env = append(os.Environ(), "MINIOTEST_HELPER=1", "CI="+ci,
			EnvMinIO+"=/nonexistent/minio", EnvEndpoint+"=")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("")
	if err != nil || !strings.Contains(out, "SKIP") {
		t.Errorf("without CI: %v, want a skip; output:\n%s", err, out)
	}
	out, err = run("true")
	if err == nil || !strings.Contains(out, "FAIL") || !strings.Contains(out, "/nonexistent/minio") {
		t.Errorf("with CI=true: %v, want a failure naming the binary; output:\n%s", err, out)
	}
}

// TestSSEServer: GetSSE's server is another one than Get's, serves HTTPS
// with a certificate its CAFile vouches for, and has a KMS, so it takes
// each of S3's server-side encryption modes.
func TestSSEServer(t *testing.T) {
	srv := GetSSE(t)
	if plain := Get(t); plain == srv || !strings.HasPrefix(plain.Endpoint, "http://") {
		t.Errorf("Get's server is %s, want a plain HTTP one apart from GetSSE's", plain.Endpoint)
	}
	if !strings.HasPrefix(srv.Endpoint, "https://") || srv.CAFile == "" || srv.KMSKeyID != SSEKeyName {
		t.Fatalf("GetSSE: endpoint %s, CA file %q, KMS key %q", srv.Endpoint, srv.CAFile, srv.KMSKeyID)
	}
	ctx := t.Context()
	bucket := srv.NewBucket(ctx, t)
	kms, err := encrypt.NewSSEKMS(srv.KMSKeyID, nil)
	if err != nil {
		t.Fatal(err)
	}
	ssec, err := encrypt.NewSSEC(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	content := "content-" + RandomHex(8)
	for name, sse := range map[string]encrypt.ServerSide{"plain": nil, "SSE-S3": encrypt.NewSSE(), "SSE-KMS": kms, "SSE-C": ssec} {
		opts := minio.PutObjectOptions{ServerSideEncryption: sse}
		if _, err := srv.Client().PutObject(ctx, bucket, name, strings.NewReader(content), int64(len(content)), opts); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		// OnDisk sees the content of the plain object only.
		if found, err := srv.OnDisk(bucket, name, []byte(content)); err != nil || found != (sse == nil) {
			t.Errorf("%s: OnDisk = %v, %v", name, found, err)
		}
	}

	// Without the CA, the certificate is not trusted.
	resp, err := http.Get(srv.Endpoint + "/minio/health/live")
	if err == nil {
		resp.Body.Close()
		t.Errorf("the default client trusts the test server's certificate")
	}
}
