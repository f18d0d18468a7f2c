package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/statepack/statepack/archive/format"
)

// TestReportIsSafe: whatever an error holds (a path from a hostile
// manifest with escape sequences and a newline, a URL with credentials, a
// secret from the environment), report prints it escaped and masked, as
// one line, in every form: plain, --debug and --json.
func TestReportIsSafe(t *testing.T) {
	const secret = "EnvironmentSecret0123456789"
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	path := "dir\x1b]52;c;SGVsbG8=\x07\u202e\nforged"
	err := fmt.Errorf("restore: create %s on s3://AKID:UrlSecret0123456789@bucket/p (server said %s): %w", path, secret, format.ErrCorrupt)
	err = fmt.Errorf("wrapped: %w", errors.Join(err, errors.New("second")))
	for _, tc := range []struct {
		name        string
		json, debug bool
	}{
		{"plain", false, false}, {"debug", false, true}, {"json", true, false}, {"json debug", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, ferr := os.Create(filepath.Join(t.TempDir(), "stderr"))
			if ferr != nil {
				t.Fatal(ferr)
			}
			s := newSession(f, f)
			s.set.JSON, s.set.Debug = tc.json, tc.debug
			if code := s.report(err); code != exitFailure {
				t.Errorf("exit %d", code)
			}
			data, _ := os.ReadFile(f.Name())
			out := string(data)
			if strings.ContainsAny(out, "\x1b\x07\u202e") || strings.Contains(out, "\nforged") {
				t.Errorf("raw control characters or a forged line:\n%q", out)
			}
			if strings.Contains(out, secret) || strings.Contains(out, "UrlSecret") {
				t.Errorf("a secret is shown:\n%s", out)
			}
			if !strings.Contains(out, `dir\x1b]52;c;SGVsbG8=\x07\u202e\nforged`) && !strings.Contains(out, `dir\\x1b]52;c;SGVsbG8=\\x07\\u202e\\nforged`) {
				t.Errorf("the path is not recognisable:\n%s", out)
			}
			if !tc.json && !tc.debug && strings.Count(out, "\n") != 1 {
				t.Errorf("not one line:\n%s", out)
			}
		})
	}
}
