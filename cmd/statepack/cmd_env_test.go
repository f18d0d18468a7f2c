package main

import (
	"strings"
	"testing"

	"github.com/statepack/statepack/internal/testbin"
)

// TestEnvCommandSSE: `statepack env` shows the S3 server-side encryption
// settings and the CA bundle, the SSE-C key only as ****; no command
// shows the key, not even when the settings are refused.
func TestEnvCommandSSE(t *testing.T) {
	const key = "c3NlLWMta2V5LW5ldmVyLXByaW50ZWQtNDRjaGFycyE="
	e := newEnv(t)
	e.Env["STATEPACK_S3_SSE"] = "SSE-C"
	e.Env["STATEPACK_S3_SSE_C_KEY"] = key
	e.Env["AWS_CA_BUNDLE"] = "/etc/ssl/company-ca.pem"
	var out envOutput
	e.runJSON(&out, "env")
	got := map[string]settingOutput{}
	for _, s := range out.Settings {
		got[s.Name] = s
	}
	want := map[string][2]string{
		"STATEPACK_S3_SSE": {"SSE-C", "env"}, "STATEPACK_S3_SSE_C_KEY": {"****", "env"},
		"STATEPACK_S3_SSE_KMS_KEY_ID": {"", "unset"}, "STATEPACK_S3_SSE_C_KEY_FILE": {"", "unset"},
		"AWS_CA_BUNDLE": {"/etc/ssl/company-ca.pem", "env"},
	}
	for name, w := range want {
		if g := got[name]; g.Value != w[0] || g.Source != w[1] {
			t.Errorf("%s = %+v, want value %q from %s", name, g, w[0], w[1])
		}
	}

	// SSE-C over plain HTTP is refused; so is a key with another mode.
	e.Env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:1"
	refused := e.Run("--timeout", "3s", "list", "--remote", "s3://bucket/prefix")
	e.Env["STATEPACK_S3_SSE"] = "AES256"
	wrongMode := e.Run("--debug", "--timeout", "3s", "list", "--remote", "s3://bucket/prefix")
	for r, want := range map[*testbin.Result]string{&refused: "HTTPS", &wrongMode: "STATEPACK_S3_SSE_C_KEY is set"} {
		if r.Code == 0 || !strings.Contains(r.Stderr, want) {
			t.Errorf("want a failure saying %q:\n%s", want, r)
		}
	}
	runs := []testbin.Result{refused, wrongMode, e.Run("env"), e.Run("--debug", "env")}
	for _, r := range runs {
		if strings.Contains(r.Stdout+r.Stderr, key) {
			t.Errorf("the SSE-C key leaked:\n%s", r)
		}
	}
}
