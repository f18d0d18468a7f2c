package s3

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7/pkg/credentials"
)

// TestRedactProfileSecrets: a session token read from a shared
// credentials file is masked by Redact once the chain has handed it out,
// as the same token from the environment is.
func TestRedactProfileSecrets(t *testing.T) {
	const token, secret = "ProfileSessionToken1234567890", "ProfileSecretKey1234567890"
	file := filepath.Join(t.TempDir(), "credentials")
	ini := "[p]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = " + secret + "\naws_session_token = " + token + "\n"
	if err := os.WriteFile(file, []byte(ini), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_SESSION_TOKEN", "EnvironmentSessionToken123")
	creds, err := Config{CredentialsFile: file, Profile: "p"}.credentials()
	if err != nil {
		t.Fatal(err)
	}
	v, err := creds.GetWithContext(&credentials.CredContext{})
	if err != nil || v.SessionToken != token {
		t.Fatalf("credentials from the profile: %+v, %v", v, err)
	}
	msg := Redact("server said: token " + token + " and key " + secret + " and EnvironmentSessionToken123 are wrong")
	for _, s := range []string{token, secret, "EnvironmentSessionToken123"} {
		if strings.Contains(msg, s) {
			t.Errorf("Redact left %q in %q", s, msg)
		}
	}
	if !strings.Contains(msg, "server said: token <redacted>") {
		t.Errorf("Redact: %q", msg)
	}
}
