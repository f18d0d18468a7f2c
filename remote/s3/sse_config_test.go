package s3_test

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/statepack/statepack/internal/miniotest"
	"github.com/statepack/statepack/remote"
	"github.com/statepack/statepack/remote/s3"
)

// TestSSESettings: every valid combination makes a backend; every
// invalid one is refused in one line that names what to change and never
// shows a key.
func TestSSESettings(t *testing.T) {
	dir := t.TempDir()
	file := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rawFile := file("raw", customerKey)
	b64File := file("b64", []byte(customerKeyB64+"\n"))
	shortFile := file("short", []byte(base64.StdEncoding.EncodeToString(customerKey[:16])))
	short := base64.StdEncoding.EncodeToString(customerKey[:31])

	valid := []s3.SSE{
		{},
		{Mode: "none"},
		{Mode: "AES256"},
		{Mode: "sse-s3"},
		{Mode: "aws:kms"},
		{Mode: "AWS:KMS", KMSKeyID: "arn:aws:kms:eu-west-1:111122223333:key/1234abcd"},
		{Mode: "SSE-KMS", KMSKeyID: "alias/statepack"},
		{Mode: "SSE-C", CustomerKey: customerKeyB64},
		{Mode: "sse-c", CustomerKey: " " + customerKeyB64 + "\n"},
		{Mode: "SSE-C", CustomerKeyFile: rawFile},
		{Mode: "SSE-C", CustomerKeyFile: b64File},
	}
	for _, sse := range valid {
		cfg := s3.Config{Endpoint: "https://127.0.0.1:1", AccessKeyID: "k", SecretAccessKey: plantedSecret, SSE: sse}
		if _, err := s3.New("bucket", "p", cfg); err != nil {
			t.Errorf("%v: %v", sse, err)
		}
	}

	invalid := []struct {
		sse  s3.SSE
		want []string
	}{
		{s3.SSE{Mode: "aes"}, []string{`STATEPACK_S3_SSE="aes"`, "AES256", "aws:kms", "SSE-C"}},
		{s3.SSE{Mode: customerKeyB64}, []string{"STATEPACK_S3_SSE is not a server-side encryption mode"}},
		{s3.SSE{KMSKeyID: "k1"}, []string{"STATEPACK_S3_SSE_KMS_KEY_ID is set", "STATEPACK_S3_SSE=aws:kms"}},
		{s3.SSE{Mode: "AES256", KMSKeyID: "k1"}, []string{"STATEPACK_S3_SSE_KMS_KEY_ID is set"}},
		{s3.SSE{Mode: "SSE-C", KMSKeyID: "k1", CustomerKey: customerKeyB64}, []string{"STATEPACK_S3_SSE_KMS_KEY_ID is set"}},
		{s3.SSE{CustomerKey: customerKeyB64}, []string{"STATEPACK_S3_SSE_C_KEY is set", "STATEPACK_S3_SSE=SSE-C"}},
		{s3.SSE{Mode: "aws:kms", CustomerKeyFile: rawFile}, []string{"STATEPACK_S3_SSE_C_KEY_FILE is set"}},
		{s3.SSE{Mode: "SSE-C"}, []string{"needs the key", "STATEPACK_S3_SSE_C_KEY", "STATEPACK_S3_SSE_C_KEY_FILE"}},
		{s3.SSE{Mode: "SSE-C", CustomerKey: customerKeyB64, CustomerKeyFile: rawFile}, []string{"both", "one of them"}},
		{s3.SSE{Mode: "SSE-C", CustomerKey: short}, []string{"STATEPACK_S3_SSE_C_KEY:", "32 bytes"}},
		{s3.SSE{Mode: "SSE-C", CustomerKey: "not base64!" + customerKeyB64}, []string{"32 bytes"}},
		{s3.SSE{Mode: "SSE-C", CustomerKeyFile: shortFile}, []string{"STATEPACK_S3_SSE_C_KEY_FILE", shortFile, "32 bytes"}},
		{s3.SSE{Mode: "SSE-C", CustomerKeyFile: filepath.Join(dir, "missing")}, []string{"STATEPACK_S3_SSE_C_KEY_FILE", "missing", "no such file"}},
	}
	for _, c := range invalid {
		cfg := s3.Config{Endpoint: "https://127.0.0.1:1", AccessKeyID: "k", SecretAccessKey: plantedSecret, SSE: c.sse}
		_, err := s3.New("bucket", "p", cfg)
		if err == nil {
			t.Errorf("%v: no error", c.sse)
			continue
		}
		msg := err.Error()
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%v: %q does not say %q", c.sse, msg, w)
			}
		}
		if strings.Contains(msg, "\n") || strings.Contains(msg, customerKeyB64) || strings.Contains(msg, short) {
			t.Errorf("%v: message is not one line, or shows the key: %q", c.sse, msg)
		}
	}
}

// TestSSECNeedsHTTPS: an SSE-C key goes with every request, so a plain
// HTTP endpoint is refused before any request is made.
func TestSSECNeedsHTTPS(t *testing.T) {
	cfg := s3.Config{Endpoint: "http://127.0.0.1:1", AccessKeyID: "k", SecretAccessKey: plantedSecret,
		SSE: s3.SSE{Mode: "SSE-C", CustomerKey: customerKeyB64}}
	_, err := s3.New("bucket", "p", cfg)
	if err == nil || !strings.Contains(err.Error(), "HTTPS") || strings.Contains(err.Error(), customerKeyB64) {
		t.Errorf("SSE-C over HTTP: %v, want a refusal that names HTTPS", err)
	}
	cfg.SSE = s3.SSE{Mode: "AES256"}
	if _, err := s3.New("bucket", "p", cfg); err != nil {
		t.Errorf("SSE-S3 over HTTP: %v, want it allowed (no key is sent)", err)
	}
}

// TestSSEKeyNeverPrinted: printing a configuration or an SSE setting in
// any form never shows the customer key, and Redact masks it wherever it
// comes from.
func TestSSEKeyNeverPrinted(t *testing.T) {
	cfg := s3.Config{Endpoint: "https://h", SSE: s3.SSE{Mode: "SSE-C", CustomerKey: customerKeyB64, CustomerKeyFile: "/run/secrets/k"}}
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v %#v", cfg, cfg), fmt.Sprintf("%v %+v %#v", cfg.SSE, cfg.SSE, cfg.SSE)} {
		if strings.Contains(s, customerKeyB64) {
			t.Errorf("printed config shows the key: %s", s)
		}
		if !strings.Contains(s, "SSE-C") || !strings.Contains(s, "/run/secrets/k") {
			t.Errorf("printed config hides the mode or the key file's name: %s", s)
		}
	}

	t.Setenv("STATEPACK_S3_SSE_C_KEY", otherCustomerKey)
	if msg := s3.Redact("server said " + otherCustomerKey); strings.Contains(msg, otherCustomerKey) {
		t.Errorf("Redact leaves the key of STATEPACK_S3_SSE_C_KEY: %s", msg)
	}
	// A key read from a file is masked once a backend was made with it.
	key := []byte("0123456789abcdef0123456789ABCDEF")
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg = s3.Config{Endpoint: "https://h", SSE: s3.SSE{Mode: "SSE-C", CustomerKeyFile: keyFile}}
	if _, err := s3.New("bucket", "p", cfg); err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString(key)
	if msg := s3.Redact("header " + b64); strings.Contains(msg, b64) {
		t.Errorf("Redact leaves the key read from a file: %s", msg)
	}
}

// TestS3CABundle: an HTTPS endpoint signed by a private CA is refused
// unless AWS_CA_BUNDLE names that CA; then it serves.
func TestS3CABundle(t *testing.T) {
	srv := miniotest.GetSSE(t)
	bucket := srv.NewBucket(t.Context(), t)
	clearAWSEnv(t)
	t.Setenv("AWS_ENDPOINT_URL", srv.Endpoint)
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	t.Setenv("AWS_REGION", "us-east-1")
	if _, err := s3.Open(t.Context(), bucket, "p", remote.S3ConfigFromEnv()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("private CA without AWS_CA_BUNDLE: %v, want a certificate error", err)
	}
	t.Setenv("AWS_CA_BUNDLE", srv.CAFile)
	if _, err := s3.Open(t.Context(), bucket, "p", remote.S3ConfigFromEnv()); err != nil {
		t.Errorf("AWS_CA_BUNDLE=%s: %v", srv.CAFile, err)
	}

	notPEM := filepath.Join(t.TempDir(), "bundle.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, bundle := range []string{notPEM, filepath.Join(t.TempDir(), "missing.pem")} {
		t.Setenv("AWS_CA_BUNDLE", bundle)
		if _, err := s3.New(bucket, "p", remote.S3ConfigFromEnv()); err == nil || !strings.Contains(err.Error(), "AWS_CA_BUNDLE") {
			t.Errorf("AWS_CA_BUNDLE=%s: %v, want an error naming AWS_CA_BUNDLE", bundle, err)
		}
	}
}
