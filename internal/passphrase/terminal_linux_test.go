package passphrase

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// These tests type on a real pseudo-terminal and read its echo flag with
// Linux's TCGETS.

// openTerminal gives a Source whose stdin is a real pseudo-terminal, and
// the terminal's other end to type on.
func openTerminal(t *testing.T) (Source, *os.File, *syncBuffer) {
	t.Helper()
	ptm, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { ptm.Close(); tty.Close() })
	s, stderr := source(t, nil)
	s.Stdin = tty
	return s, ptm, stderr
}

// typeWhenEchoOff waits until the terminal stops echoing (the prompt is
// up), then types line on it.
func typeWhenEchoOff(t *testing.T, ptm, tty *os.File, line string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
		if err != nil {
			t.Error(err)
			return
		}
		if st.Lflag&unix.ECHO == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Error("the prompt never turned echo off")
			return
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := ptm.WriteString(line); err != nil {
		t.Error(err)
	}
}

// echoed is what the terminal showed while the passphrase was typed: a
// marker typed after Get returns (echo is back on) ends it.
func echoed(t *testing.T, ptm *os.File) string {
	t.Helper()
	if _, err := ptm.WriteString("END-OF-TEST\n"); err != nil {
		t.Fatal(err)
	}
	var seen []byte
	buf := make([]byte, 4096)
	for !bytes.Contains(seen, []byte("END-OF-TEST")) {
		n, err := ptm.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, buf[:n]...)
	}
	return string(seen)
}

func TestPromptOnTerminal(t *testing.T) {
	s, ptm, stderr := openTerminal(t)
	go typeWhenEchoOff(t, ptm, s.Stdin, secret+"\n")
	got, origin, err := s.Get(context.Background(), "enter passphrase: ")
	if err != nil || got != secret || origin != "terminal" {
		t.Fatalf("got %q from %q, %v", got, origin, err)
	}
	if !strings.HasPrefix(stderr.String(), "enter passphrase: ") {
		t.Errorf("prompt %q", stderr)
	}
	checkNoSecret(t, "the terminal's echo", echoed(t, ptm))
	checkNoSecret(t, "stderr", stderr.String())
}

func TestPromptRefusesEmpty(t *testing.T) {
	s, ptm, _ := openTerminal(t)
	go typeWhenEchoOff(t, ptm, s.Stdin, "\n")
	if got, _, err := s.Get(context.Background(), "enter passphrase: "); !errors.Is(err, ErrEmpty) {
		t.Errorf("an empty line gave %q, %v", got, err)
	}
}

// TestVariablesBeforeTerminal: a variable wins over the prompt even on a
// terminal, as restic's does.
func TestVariablesBeforeTerminal(t *testing.T) {
	s, _, stderr := openTerminal(t)
	s.Getenv = func(k string) string { return map[string]string{EnvPassword: secret}[k] }
	got, origin, err := s.Get(context.Background(), "enter passphrase: ")
	if err != nil || got != secret || origin != EnvPassword {
		t.Errorf("got %q from %q, %v", got, origin, err)
	}
	if stderr.String() != "" {
		t.Errorf("prompted although a variable was set: %q", stderr)
	}
}
