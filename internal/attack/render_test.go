package attack

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/statepack/statepack/archive"
)

// Issue 15, item 6: strings a remote controls (a snapshot's message,
// labels, host, user, tool, paths, symlink targets, a lock's holder) must
// not reach the user's terminal raw. An OSC 52 sequence writes the
// clipboard, CSI 2J clears the screen, U+202E reverses what follows, an
// 8-bit CSI (U+009B, or the lone byte 0x9b) works on some terminals too.

const (
	osc52   = "\x1b]52;c;SGVsbG8=\x07"
	clear2J = "\x1b[2J"
	rlo     = "\u202e"
	csi8    = "\u009b"
)

// hostileText holds every sequence; hostileTextEscaped is how a terminal
// must show it.
var (
	hostileText        = "x" + osc52 + clear2J + rlo + csi8 + "y"
	hostileTextEscaped = `x\x1b]52;c;SGVsbG8=\x07\x1b[2J\u202e\u009by`
)

// rawControl returns the first character of out that could drive a
// terminal, described, or "" when there is none. Newlines and tabs are
// layout.
func rawControl(out string) string {
	for i, r := range out {
		switch {
		case r == utf8.RuneError:
			if _, n := utf8.DecodeRuneInString(out[i:]); n == 1 {
				return fmt.Sprintf("invalid UTF-8 byte %#x at %d", out[i], i)
			}
		case r == '\n' || r == '\t':
		case r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 || unicode.Is(unicode.Cf, r):
			return fmt.Sprintf("raw %U at %d in %q", r, i, out[max(0, i-40):min(len(out), i+40)])
		}
	}
	return ""
}

// renderSafely runs args on e and checks that nothing in its output,
// stdout and stderr, could drive a terminal, and that each of want is
// there (escaped). It returns the run.
func renderSafely(t *testing.T, e *env, wantCode int, args []string, want ...string) result {
	t.Helper()
	r := e.run(args...)
	if r.code != wantCode {
		t.Fatalf("want exit %d:\n%s", wantCode, r)
	}
	if bad := rawControl(r.stdout + r.stderr); bad != "" {
		t.Errorf("statepack %s: %s", strings.Join(args, " "), bad)
	}
	for _, w := range want {
		if !strings.Contains(r.stdout+r.stderr, w) {
			t.Errorf("statepack %s does not show %q:\n%s", strings.Join(args, " "), w, r)
		}
	}
	return r
}

// TestHostileTerminalEscapes publishes a snapshot whose every free text
// field, a path and a symlink target hold escape sequences, and runs the
// commands that show them: list, log, show --files, pull, diff (two
// snapshots and DATA_DIR), restore and status, each as a human would
// and with --json.
func TestHostileTerminalEscapes(t *testing.T) {
	forEachRemote(t, func(t *testing.T, h *hostile) {
		m := manifest(
			dirEntry("dir"+hostileText),
			fileEntry("dir"+hostileText+"/file", h.payload),
			linkEntry("link", "target"+hostileText),
		)
		m.Message = "message " + hostileText + "\x9b" // a lone 8-bit CSI: invalid UTF-8
		m.Host, m.User, m.Tool = "host"+hostileText, "user"+hostileText, "tool"+hostileText
		m.Labels = map[string]string{"key" + hostileText: "value" + hostileText}
		id := h.publish("evil", archive.EncodeManifest(m))
		v := h.victim

		renderSafely(t, v, 0, []string{"list", "--remote"}, "host"+hostileTextEscaped)
		renderSafely(t, v, 0, []string{"log", "evil", "--remote"}, "message "+hostileTextEscaped+`\x9b`,
			"key"+hostileTextEscaped+"=value"+hostileTextEscaped)
		renderSafely(t, v, 0, []string{"show", "evil", "--remote", "--files"}, "dir"+hostileTextEscaped+"/file",
			"target"+hostileTextEscaped, "user"+hostileTextEscaped, "tool"+hostileTextEscaped)
		renderSafely(t, v, 0, []string{"pull", "evil"})
		renderSafely(t, v, 0, []string{"list"}, "host"+hostileTextEscaped)
		renderSafely(t, v, 0, []string{"diff", "mine", "evil"}, "+ dir"+hostileTextEscaped+"/file", "+ link")
		renderSafely(t, v, 0, []string{"restore", "evil"})
		if err := os.WriteFile(filepath.Join(v.data, "dir"+hostileText, "file"), []byte("changed"), 0o644); err != nil {
			t.Fatal(err)
		}
		renderSafely(t, v, 0, []string{"diff", "evil"}, "M dir"+hostileTextEscaped+"/file")
		renderSafely(t, v, 0, []string{"status"})

		// --json is for programs: it must be valid JSON holding the exact
		// strings, and still safe on a terminal.
		for _, args := range [][]string{{"show", id.String(), "--files"}, {"log", "evil"}, {"list"}, {"diff", "evil"}} {
			r := renderSafely(t, v, 0, append([]string{"--json"}, args...))
			var doc any
			if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
				t.Errorf("%v --json: %v\n%s", args, err, r.stdout)
			}
			if !strings.Contains(fmt.Sprint(doc), "dir"+hostileText) && args[0] != "log" && args[0] != "list" {
				t.Errorf("%v --json does not hold the exact path", args)
			}
		}
	})
}

// TestHostileTerminalEscapesInErrors: the lines statepack prints when it
// refuses something name what a remote wrote (a lock's host and command);
// they are escaped too, in the one line and in --debug's error chain.
func TestHostileTerminalEscapesInErrors(t *testing.T) {
	forEachRemote(t, func(t *testing.T, h *hostile) {
		lock, err := json.Marshal(map[string]any{"exclusive": true, "host": "host" + hostileText, "pid": 1,
			"command": "cmd" + hostileText, "time": time.Now().UTC()})
		if err != nil {
			t.Fatal(err)
		}
		h.put("locks/feedfacefeedface", lock)
		v := h.victim
		renderSafely(t, v, 1, []string{"push", "mine"}, "host"+hostileTextEscaped, "cmd"+hostileTextEscaped)
		renderSafely(t, v, 1, []string{"--debug", "push", "mine"}, "host"+hostileTextEscaped)
		renderSafely(t, v, 1, []string{"--json", "push", "mine"})
		renderSafely(t, v, 0, []string{"unlock", "--remote", "--all"}, "host"+hostileTextEscaped)
	})
}
