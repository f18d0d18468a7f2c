package s3_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/statepack/statepack/internal/miniotest"
	"github.com/statepack/statepack/remote"
	"github.com/statepack/statepack/remote/backend"
	"github.com/statepack/statepack/remote/s3"
)

// awsEnv lists every variable S3ConfigFromEnv or the credentials chain
// reads, so a test can start from a clean environment.
var awsEnv = []string{
	"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
	"AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE",
	"AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_CA_BUNDLE",
	"STATEPACK_S3_SSE", "STATEPACK_S3_SSE_KMS_KEY_ID", "STATEPACK_S3_SSE_C_KEY", "STATEPACK_S3_SSE_C_KEY_FILE",
}

func clearAWSEnv(t *testing.T) {
	for _, k := range awsEnv {
		t.Setenv(k, "")
	}
	t.Setenv("HOME", t.TempDir()) // no ~/.aws of the user's
}

func TestS3IncompleteKeys(t *testing.T) {
	cfg := s3.Config{Endpoint: "http://127.0.0.1:1", AccessKeyID: "AKID"}
	_, err := s3.Open(t.Context(), "bucket", "", cfg)
	if err == nil || !strings.Contains(err.Error(), "AWS_SECRET_ACCESS_KEY") {
		t.Errorf("access key without secret: %v, want an error naming AWS_SECRET_ACCESS_KEY", err)
	}
}

// TestS3SharedCredentialsFile: without static keys, credentials come from
// the profile of the shared credentials file, wherever
// AWS_SHARED_CREDENTIALS_FILE points.
func TestS3SharedCredentialsFile(t *testing.T) {
	srv := miniotest.Get(t)
	bucket := srv.NewBucket(t.Context(), t)
	clearAWSEnv(t)
	file := filepath.Join(t.TempDir(), "credentials")
	ini := fmt.Sprintf("[default]\naws_access_key_id = nobody\naws_secret_access_key = %s\n\n"+
		"[statepack]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
		plantedSecret, srv.AccessKey, srv.SecretKey)
	if err := os.WriteFile(file, []byte(ini), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", file)
	cfg := s3.Config{Endpoint: srv.Endpoint, Region: srv.Region, Profile: "statepack"}
	if _, err := s3.Open(t.Context(), bucket, "p", cfg); err != nil {
		t.Errorf("profile statepack: %v", err)
	}
	t.Setenv("AWS_PROFILE", "statepack")
	cfg.Profile = ""
	if _, err := s3.Open(t.Context(), bucket, "p", cfg); err != nil {
		t.Errorf("AWS_PROFILE=statepack: %v", err)
	}
	t.Setenv("AWS_PROFILE", "")
	_, err := s3.Open(t.Context(), bucket, "p", cfg)
	if !errors.Is(err, backend.ErrAccessDenied) {
		t.Errorf("default profile with wrong keys: %v, want ErrAccessDenied", err)
	}
	if err != nil {
		assertNoSecrets(t, err.Error())
	}
}

// TestS3StalledTransfer: a server that sends the headers of an object and
// then stops sending fails the read after the idle timeout, instead of
// hanging. (A real MinIO cannot be made to stall, hence the stub.)
func TestS3StalledTransfer(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead { // BucketExists
			return
		}
		w.Header().Set("Content-Length", "1000")
		w.Header().Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
		_, _ = w.Write([]byte("first bytes"))
		w.(http.Flusher).Flush()
		<-release
	}))
	defer srv.Close()
	defer close(release)
	cfg := s3.Config{Endpoint: srv.URL, Region: "us-east-1", AccessKeyID: "k", SecretAccessKey: plantedSecret,
		Timeouts: s3.Timeouts{Idle: 300 * time.Millisecond}}
	b, err := s3.Open(t.Context(), "bucket", "", cfg)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := b.Get(t.Context(), "packs/00/x")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	start := time.Now()
	_, err = io.ReadAll(rc)
	if err == nil || time.Since(start) > failFast {
		t.Fatalf("read of a stalled body: %v after %v", err, time.Since(start))
	}
	if !strings.Contains(err.Error(), "packs/00/x") || !remote.IsTransient(err) {
		t.Errorf("error %v: want it to name the object and be transient", err)
	}
	assertNoSecrets(t, err.Error())
}
