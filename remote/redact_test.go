package remote

import (
	"strings"
	"testing"
)

// TestRedactURL: the userinfo of a URL is masked wherever the URL stands
// in a text, whatever the secret holds ("/", "@", "+"); paths and URLs
// without userinfo are left alone.
func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"s3://KEY:SECRET@bucket/prefix", "s3://****@bucket/prefix"},
		{"S3://KEY:SECRET@bucket", "S3://****@bucket"},
		{"s3://KEY@bucket/p", "s3://****@bucket/p"},
		{"s3://KEY:wJalr/K7MD+ENG@bucket/p", "s3://****@bucket/p"},
		{"s3://KEY:p@ss@bucket/p", "s3://****@bucket/p"},
		{"s3:KEY:SECRET@bucket/p", "s3:****@bucket/p"},
		{"file://user:pw@host/x", "file://****@host/x"},
		{"https://user:pw@minio.local:9000", "https://****@minio.local:9000"},
		{`invalid remote "s3://K:S@b/p": x; also http://u:p@h/ and s3://b/ok`, `invalid remote "s3://****@b/p": x; also http://****@h/ and s3://b/ok`},
		{"s3://bucket/team@ci/prefix", "s3://bucket/team@ci/prefix"},
		{"s3://abc/team:ci/x", "s3://abc/team:ci/x"},
		{"/home/me@host/states", "/home/me@host/states"},
		{"http://127.0.0.1:9000", "http://127.0.0.1:9000"},
		{"mail me at a@b.c", "mail me at a@b.c"},
	}
	for _, tc := range tests {
		if got := RedactURL(tc.in); got != tc.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestParseURLCredentials: a URL with credentials is refused, and the
// error does not hold them.
func TestParseURLCredentials(t *testing.T) {
	for _, in := range []string{
		"s3://AKIAEXAMPLE:SuperSecretValue1@bucket/prefix",
		"s3://AKIAEXAMPLE:Super/SecretValue1@bucket/prefix",
		"s3:AKIAEXAMPLE:SuperSecretValue1@bucket",
		"file://AKIAEXAMPLE:SuperSecretValue1@localhost/x",
		"https://AKIAEXAMPLE:SuperSecretValue1@s3.amazonaws.com/bucket",
	} {
		_, err := ParseURL(in)
		if err == nil {
			t.Errorf("ParseURL(%q) accepted credentials", in)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, "Secret") || strings.Contains(msg, "AKIAEXAMPLE") {
			t.Errorf("ParseURL(%q): the error shows the credentials: %s", in, msg)
		}
	}
	if _, err := ParseURL("s3://AKIAEXAMPLE:SuperSecretValue1@bucket/p"); err == nil || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Errorf("no hint where credentials belong: %v", err)
	}
}

// TestParseURLWhiteSpace: white space around a remote, or a control
// character in it, is refused instead of naming a directory " s3:" in the
// working directory.
func TestParseURLWhiteSpace(t *testing.T) {
	for _, in := range []string{" s3://bucket/p", "s3://bucket/p ", " /srv/x", "/srv/x\n", "\t/srv/x", "/srv/a\x1bb", "/srv/a\u0085",
		"file:///srv/x%20", "file:///srv/x%0a", "/srv/x /", "s3://bucket/a /b"} {
		if u, err := ParseURL(in); err == nil {
			t.Errorf("ParseURL(%q) = %+v, want an error", in, u)
		}
	}
	for _, in := range []string{"/srv/state pack", "s3://bucket/my prefix/x"} {
		if _, err := ParseURL(in); err != nil {
			t.Errorf("ParseURL(%q): %v", in, err)
		}
	}
}
