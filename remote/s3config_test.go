package remote_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/statepack/statepack/remote"
	"github.com/statepack/statepack/remote/s3"
)

// Secrets planted in configurations to check that no message shows them.
const (
	plantedSecret = "SECRET-must-never-print-5e1f0c"
	plantedToken  = "TOKEN-must-never-print-9a7b2d"
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

func TestS3ConfigFromEnv(t *testing.T) {
	clearAWSEnv(t)
	t.Setenv("AWS_ENDPOINT_URL", "http://generic:1")
	t.Setenv("AWS_DEFAULT_REGION", "eu-central-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKID")
	t.Setenv("AWS_SECRET_ACCESS_KEY", plantedSecret)
	t.Setenv("AWS_SESSION_TOKEN", plantedToken)
	t.Setenv("AWS_PROFILE", "ci")
	want := s3.Config{
		Endpoint: "http://generic:1", Region: "eu-central-1", AccessKeyID: "AKID",
		SecretAccessKey: plantedSecret, SessionToken: plantedToken, Profile: "ci",
	}
	if got := remote.S3ConfigFromEnv(); got != want {
		t.Errorf("S3ConfigFromEnv() = %v, want %v", got, want)
	}

	// The S3-specific endpoint and AWS_REGION take precedence.
	t.Setenv("AWS_ENDPOINT_URL_S3", "http://s3-only:2")
	t.Setenv("AWS_REGION", "us-west-2")
	got := remote.S3ConfigFromEnv()
	if got.Endpoint != "http://s3-only:2" || got.Region != "us-west-2" {
		t.Errorf("S3ConfigFromEnv() = %v: want AWS_ENDPOINT_URL_S3 and AWS_REGION to win", got)
	}
	if s := fmt.Sprintf("%v %+v %#v", got, got, got); strings.Contains(s, plantedSecret) || strings.Contains(s, plantedToken) {
		t.Errorf("printed config shows a secret: %s", s)
	}
}

// TestS3ConfigFromEnvSSE: server-side encryption and the CA bundle come
// from their variables, and a printed configuration never shows the
// customer key.
func TestS3ConfigFromEnvSSE(t *testing.T) {
	clearAWSEnv(t)
	const key = "XFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFw="
	t.Setenv("AWS_CA_BUNDLE", "/etc/ssl/company-ca.pem")
	t.Setenv("STATEPACK_S3_SSE", "SSE-C")
	t.Setenv("STATEPACK_S3_SSE_C_KEY", key)
	t.Setenv("STATEPACK_S3_SSE_C_KEY_FILE", "/run/secrets/sse-c")
	t.Setenv("STATEPACK_S3_SSE_KMS_KEY_ID", "alias/statepack")
	got := remote.S3ConfigFromEnv()
	want := s3.SSE{Mode: "SSE-C", KMSKeyID: "alias/statepack", CustomerKey: key, CustomerKeyFile: "/run/secrets/sse-c"}
	if got.SSE != want || got.CABundle != "/etc/ssl/company-ca.pem" {
		t.Errorf("S3ConfigFromEnv() = %v, want SSE %v and the CA bundle", got, want)
	}
	if s := fmt.Sprintf("%v %+v %#v", got, got, got); strings.Contains(s, key) {
		t.Errorf("printed config shows the SSE-C key: %s", s)
	}
	// The combination is wrong (a KMS key id with SSE-C, and two keys):
	// opening the remote says so in one line.
	_, err := remote.Open(t.Context(), "s3://bucket/p", got, false)
	if err == nil || !strings.Contains(err.Error(), "STATEPACK_S3_SSE_KMS_KEY_ID") || strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), key) {
		t.Errorf("Open with a KMS key id and SSE-C: %v, want one line naming STATEPACK_S3_SSE_KMS_KEY_ID", err)
	}
}
