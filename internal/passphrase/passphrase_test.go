package passphrase

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// secret is the passphrase every test uses, so that any error or output
// can be searched for it.
const secret = "hunter2-s3cr3t"

// syncBuffer is a Stderr the test reads while Get writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// source is a Source over env alone, with stdin not a terminal.
func source(t *testing.T, env map[string]string) (Source, *syncBuffer) {
	t.Helper()
	stdin, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close() })
	var stderr syncBuffer
	environ := []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	return Source{
		Getenv:  func(k string) string { return env[k] },
		Environ: func() []string { return environ },
		Stdin:   stdin,
		Stderr:  &stderr,
	}, &stderr
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "passphrase")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkNoSecret fails if the passphrase shows in an error or in what was
// written to stderr.
func checkNoSecret(t *testing.T, what, text string) {
	t.Helper()
	if strings.Contains(text, secret) || strings.Contains(text, "hunter2") {
		t.Errorf("%s shows the passphrase: %q", what, text)
	}
}

func TestSources(t *testing.T) {
	for _, tc := range []struct {
		name       string
		env        map[string]string
		want       string
		wantOrigin string
	}{
		{"variable", map[string]string{EnvPassword: secret}, secret, EnvPassword},
		{"variable kept as is", map[string]string{EnvPassword: " " + secret + "\n"}, " " + secret + "\n", EnvPassword},
		{"file", map[string]string{EnvFile: writeFile(t, secret)}, secret, EnvFile},
		{"file with a newline", map[string]string{EnvFile: writeFile(t, secret+"\n")}, secret, EnvFile},
		{"file with CRLF", map[string]string{EnvFile: writeFile(t, secret+"\r\n")}, secret, EnvFile},
		{"file: one newline only", map[string]string{EnvFile: writeFile(t, secret+"\n\n")}, secret + "\n", EnvFile},
		{"file: spaces kept", map[string]string{EnvFile: writeFile(t, " "+secret+" \n")}, " " + secret + " ", EnvFile},
		{"command", map[string]string{EnvCommand: "echo " + secret}, secret, EnvCommand},
		{"command with quotes", map[string]string{EnvCommand: `sh -c 'printf "%s\n" "` + secret + `"'`}, secret, EnvCommand},
		{"command without a newline", map[string]string{EnvCommand: "printf " + secret}, secret, EnvCommand},
		{"file over variable", map[string]string{EnvFile: writeFile(t, "from-file"), EnvPassword: "from-variable"}, "from-file", EnvFile},
		{"command over variable", map[string]string{EnvCommand: "echo from-command", EnvPassword: "from-variable"}, "from-command", EnvCommand},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, stderr := source(t, tc.env)
			got, origin, err := s.Get(context.Background(), "passphrase: ")
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want || origin != tc.wantOrigin {
				t.Errorf("got %q from %s, want %q from %s", got, origin, tc.want, tc.wantOrigin)
			}
			checkNoSecret(t, "stderr", stderr.String())
		})
	}
}

func TestSourceErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		wantIs  error
		wantMsg string
	}{
		{"nothing set, no terminal", nil, ErrNoSource, EnvPassword},
		{"file and command both", map[string]string{EnvFile: writeFile(t, secret), EnvCommand: "echo " + secret}, nil, "set only one"},
		{"empty variable means unset", map[string]string{EnvPassword: ""}, ErrNoSource, EnvFile},
		{"empty file", map[string]string{EnvFile: writeFile(t, "")}, ErrEmpty, EnvFile},
		{"file of a newline", map[string]string{EnvFile: writeFile(t, "\n")}, ErrEmpty, EnvFile},
		{"missing file", map[string]string{EnvFile: filepath.Join(t.TempDir(), "none")}, os.ErrNotExist, EnvFile},
		{"huge file", map[string]string{EnvFile: writeFile(t, strings.Repeat(secret, MaxSize))}, nil, "over"},
		{"command prints nothing", map[string]string{EnvCommand: "true"}, ErrEmpty, EnvCommand},
		{"command prints a newline", map[string]string{EnvCommand: "echo"}, ErrEmpty, EnvCommand},
		{"command not found", map[string]string{EnvCommand: "statepack-no-such-program " + secret}, nil, "statepack-no-such-program"},
		{"command floods", map[string]string{EnvCommand: "yes " + secret}, nil, "over"},
		{"unterminated quote", map[string]string{EnvCommand: `echo "` + secret}, nil, "not terminated"},
		{"blank command", map[string]string{EnvCommand: "   "}, nil, "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, stderr := source(t, tc.env)
			got, _, err := s.Get(context.Background(), "passphrase: ")
			if err == nil {
				t.Fatalf("got %q, want an error", got)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error %v, want %v", err, tc.wantIs)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q does not say %q", err, tc.wantMsg)
			}
			checkNoSecret(t, "error", err.Error())
			checkNoSecret(t, "stderr", stderr.String())
		})
	}
}

// TestFailingCommand: a password command that prints the passphrase and
// then fails shows its stderr to the user, and neither that nor the error
// holds the passphrase or the command line (which holds it here).
func TestFailingCommand(t *testing.T) {
	s, stderr := source(t, map[string]string{
		EnvCommand: `sh -c 'echo ` + secret + `; echo "gpg: decryption failed" >&2; exit 3'`,
	})
	_, _, err := s.Get(context.Background(), "passphrase: ")
	if err == nil {
		t.Fatal("a failing command gave a passphrase")
	}
	if !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), EnvCommand) {
		t.Errorf("error %q does not say what failed", err)
	}
	if !strings.Contains(stderr.String(), "gpg: decryption failed") {
		t.Errorf("the command's stderr was not shown: %q", stderr)
	}
	checkNoSecret(t, "error", err.Error())
	checkNoSecret(t, "stderr", stderr.String())
}

// TestCommandEnvironment: the command does not inherit STATEPACK_PASSWORD
// (set alongside, or left over in a CI job), and ctx ends it.
func TestCommandEnvironment(t *testing.T) {
	s, _ := source(t, map[string]string{
		EnvCommand:  `sh -c 'echo "[$STATEPACK_PASSWORD]"'`,
		EnvPassword: secret,
	})
	got, _, err := s.Get(context.Background(), "")
	if err != nil || got != "[]" {
		t.Errorf("the command saw STATEPACK_PASSWORD as %q (%v)", got, err)
	}

	s, _ = source(t, map[string]string{EnvCommand: "sleep 30"})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, _, err := s.Get(ctx, ""); err == nil || time.Since(start) > 10*time.Second {
		t.Errorf("a cancelled command: %v after %v", err, time.Since(start))
	}
}

func TestSplitCommand(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"pass show statepack", []string{"pass", "show", "statepack"}},
		{"  pass\tshow  x ", []string{"pass", "show", "x"}},
		{`sh -c "systemd-ask-password < /dev/tty"`, []string{"sh", "-c", "systemd-ask-password < /dev/tty"}},
		{`cat '/secrets/my pass'`, []string{"cat", "/secrets/my pass"}},
		{`cat /secrets/my\ pass`, []string{"cat", "/secrets/my pass"}},
		{`echo 'it''s'`, []string{"echo", "its"}},
		{`echo "a \"b\" \\ \n"`, []string{"echo", `a "b" \ \n`}},
		{`echo 'a \ b'`, []string{"echo", `a \ b`}},
		{`echo "" x`, []string{"echo", "", "x"}},
		{`echo $HOME *`, []string{"echo", "$HOME", "*"}},
		{`a"b c"d`, []string{"ab cd"}},
	} {
		got, err := SplitCommand(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("SplitCommand(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "   ", `echo "a`, `echo 'a`, `echo a\`} {
		if got, err := SplitCommand(in); err == nil {
			t.Errorf("SplitCommand(%q) = %q, want an error", in, got)
		}
	}
}
