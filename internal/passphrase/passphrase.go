// Package passphrase finds the passphrase that unlocks an encrypted
// repository's key file: from the environment, a file, a command, or a
// prompt on the terminal, the way restic finds its password. The CLI calls
// it; the repository (archive, archive/seal) never reads the environment.
//
// The passphrase never appears in an error, in the environment of a
// command this package starts, or in anything it prints. It imports only
// the standard library and golang.org/x/term.
package passphrase

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/term"
)

// The environment variables, named as restic's RESTIC_PASSWORD,
// RESTIC_PASSWORD_FILE and RESTIC_PASSWORD_COMMAND are, so that CI
// recipes that feed restic from a secret store carry over.
const (
	EnvPassword = "STATEPACK_PASSWORD"
	EnvFile     = "STATEPACK_PASSWORD_FILE"
	EnvCommand  = "STATEPACK_PASSWORD_COMMAND"
)

// MaxSize bounds a passphrase read from a file or a command's output: a
// path pointing at a large file by mistake fails clearly instead of being
// read whole.
const MaxSize = 64 << 10

// ErrEmpty is the error of a source that yields an empty passphrase: an
// empty passphrase would leave the repository's key unprotected.
var ErrEmpty = errors.New("the passphrase is empty")

// ErrNoSource is the error when no variable is set and stdin is not a
// terminal to prompt on.
var ErrNoSource = fmt.Errorf("no passphrase: set %s (a file holding it), %s (a command printing it) or %s, or run on a terminal to be prompted",
	EnvFile, EnvCommand, EnvPassword)

// Source is where a passphrase may come from. Tests build one by hand;
// the CLI uses FromProcess.
type Source struct {
	// Getenv reads the variables above.
	Getenv func(string) string
	// Environ is the environment a password command inherits, less
	// EnvPassword.
	Environ func() []string
	// Stdin is prompted on when it is a terminal; nil never prompts.
	Stdin *os.File
	// Stderr receives the prompt and a password command's stderr.
	Stderr io.Writer
}

// FromProcess is the Source of the running process: its environment,
// stdin and stderr.
func FromProcess() Source {
	return Source{Getenv: os.Getenv, Environ: os.Environ, Stdin: os.Stdin, Stderr: os.Stderr}
}

// Get returns the passphrase and where it came from (a variable's name or
// "terminal", for messages such as a wrong passphrase's). The order is
// restic's: EnvFile and EnvCommand together are an error; else EnvCommand,
// then EnvFile, then EnvPassword, then a prompt when stdin is a terminal,
// else ErrNoSource. A file's content and a command's output lose one
// trailing newline ("\n" or "\r\n"), nothing else. ctx bounds the command.
func (s Source) Get(ctx context.Context, prompt string) (passphrase, origin string, err error) {
	file, command := s.Getenv(EnvFile), s.Getenv(EnvCommand)
	switch {
	case file != "" && command != "":
		return "", "", fmt.Errorf("both %s and %s are set: set only one", EnvFile, EnvCommand)
	case command != "":
		passphrase, err = s.fromCommand(ctx, command)
		origin = EnvCommand
	case file != "":
		passphrase, err = fromFile(file)
		origin = EnvFile
	case s.Getenv(EnvPassword) != "":
		passphrase, origin = s.Getenv(EnvPassword), EnvPassword
	case s.IsTerminal():
		passphrase, err = s.Prompt(prompt)
		origin = "terminal"
	default:
		return "", "", ErrNoSource
	}
	if err != nil {
		return "", "", err
	}
	if passphrase == "" {
		return "", "", fmt.Errorf("%s: %w", origin, ErrEmpty)
	}
	return passphrase, origin, nil
}

// IsTerminal reports whether Prompt can ask: the CLI asks for a new
// passphrase twice on a terminal (key add, key passwd) and needs to know
// whether it can.
func (s Source) IsTerminal() bool {
	return s.Stdin != nil && term.IsTerminal(int(s.Stdin.Fd()))
}

// Prompt writes prompt to Stderr and reads one line from the terminal
// without echoing it. An empty line is ErrEmpty.
func (s Source) Prompt(prompt string) (string, error) {
	if !s.IsTerminal() {
		return "", errors.New("cannot prompt for a passphrase: stdin is not a terminal")
	}
	fmt.Fprint(s.Stderr, prompt)
	line, err := term.ReadPassword(int(s.Stdin.Fd()))
	fmt.Fprintln(s.Stderr)
	if err != nil {
		return "", fmt.Errorf("reading the passphrase from the terminal: %w", err)
	}
	if len(line) == 0 {
		return "", fmt.Errorf("terminal: %w", ErrEmpty)
	}
	return string(line), nil
}

func fromFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", EnvFile, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return "", fmt.Errorf("%s: %w", EnvFile, err)
	}
	if len(data) > MaxSize {
		return "", fmt.Errorf("%s: %s is over %d bytes: not a passphrase file", EnvFile, path, MaxSize)
	}
	return trimNewline(string(data)), nil
}

// fromCommand runs the command without a shell and returns its output.
// Its stderr goes to the user (a "gpg: decryption failed" is worth
// seeing); its stdout is only ever the passphrase, never in an error. The
// error names the program, not the command line, which may hold a secret.
func (s Source) fromCommand(ctx context.Context, command string) (string, error) {
	args, err := SplitCommand(command)
	if err != nil {
		return "", fmt.Errorf("%s: %w", EnvCommand, err)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = withoutVar(s.Environ(), EnvPassword)
	cmd.Stderr = s.Stderr
	out := &limitedBuffer{max: MaxSize}
	cmd.Stdout = out
	program := filepath.Base(args[0])
	if err := cmd.Run(); err != nil {
		if out.over {
			return "", fmt.Errorf("%s: %s printed over %d bytes: not a passphrase", EnvCommand, program, MaxSize)
		}
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			return "", fmt.Errorf("%s: %s failed: %s", EnvCommand, program, exitErr.ProcessState)
		}
		return "", fmt.Errorf("%s: running %s: %w", EnvCommand, program, err)
	}
	return trimNewline(out.buf.String()), nil
}

// trimNewline drops the one newline that `echo` or an editor leaves at
// the end; any other whitespace is part of the passphrase.
func trimNewline(s string) string {
	if t, ok := strings.CutSuffix(s, "\r\n"); ok {
		return t
	}
	return strings.TrimSuffix(s, "\n")
}

func withoutVar(env []string, name string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// limitedBuffer keeps up to max bytes and fails the write past them, which
// ends the command's output copy.
type limitedBuffer struct {
	buf  bytes.Buffer
	max  int
	over bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.buf.Len()+len(p) > b.max {
		b.over = true
		return 0, errors.New("output too long")
	}
	return b.buf.Write(p)
}
