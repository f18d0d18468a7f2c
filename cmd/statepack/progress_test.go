package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/statepack/statepack/internal/treetest"
)

// runOnTerminal runs statepack with a pseudo-terminal as its stderr and
// returns what the terminal received and stdout.
func runOnTerminal(t *testing.T, e *env, args ...string) (term, stdout string) {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	cmd := e.Command(args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, tty
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	var got bytes.Buffer
	done := make(chan struct{})
	go func() { _, _ = io.Copy(&got, ptmx); close(done) }() // ends with EIO when the child exits
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%v: %v\nterminal: %q", args, err, got.String())
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("terminal never closed")
	}
	return got.String(), out.String()
}

// bigTree is enough content for a bar to be drawn.
func bigTree() map[string]treetest.Spec {
	tree := sampleTree()
	tree["s3/bucket/large.bin"] = treetest.Spec{Content: strings.Repeat("0123456789abcdef", 1<<16)}
	return tree
}

// TestProgressTerminal: on a terminal save draws a bar (files and bytes of
// the total), in colour unless NO_COLOR is set; the summary goes to stdout.
func TestProgressTerminal(t *testing.T) {
	tests := []struct {
		name    string
		noColor bool
	}{
		{"colour", false},
		{"NO_COLOR", true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.write(bigTree())
			if tc.noColor {
				e.Env["NO_COLOR"] = "1"
			}
			term, stdout := runOnTerminal(t, e, "save", "main")
			for _, want := range []string{"save", "/7 files", "MiB", "%"} {
				if !strings.Contains(term, want) {
					t.Errorf("terminal lacks %q: %q", want, term)
				}
			}
			if !strings.HasPrefix(stdout, "saved main as ") {
				t.Errorf("stdout: %q", stdout)
			}
			if hasColour := strings.Contains(term, "\x1b["); hasColour == tc.noColor {
				t.Errorf("case %d: escape codes present %v with NO_COLOR %v: %q", i, hasColour, tc.noColor, term)
			}
		})
	}
}

// TestProgressNotTerminal: without a terminal there are no bars, and with
// --json or --quiet nothing on a terminal either.
func TestProgressNotTerminal(t *testing.T) {
	e := newEnv(t)
	e.write(bigTree())
	res := e.MustRun("save", "main")
	if res.Stderr != "" || strings.Contains(res.Stdout, "\r") {
		t.Errorf("progress without a terminal:\n%s", res)
	}
	for _, args := range [][]string{{"--json", "restore", "main~0"}, {"-q", "verify", "--read-data"}} {
		if term, _ := runOnTerminal(t, e, args...); term != "" {
			t.Errorf("%v drew on the terminal: %q", args, term)
		}
	}
}
