package output

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestSafe: each class of character that can drive a terminal is escaped
// as Go writes it; plain text, including non-Latin scripts and emoji, is
// left alone.
func TestSafe(t *testing.T) {
	tests := []struct{ name, in, want, lines string }{
		{"plain", "orders-e2e/db.sqlite", "orders-e2e/db.sqlite", ""},
		{"unicode text", "données/日本語 😀", "données/日本語 😀", ""},
		{"OSC 52", "\x1b]52;c;SGVsbG8=\x07", `\x1b]52;c;SGVsbG8=\x07`, ""},
		{"CSI", "a\x1b[2Jb", `a\x1b[2Jb`, ""},
		{"layout", "a\tb\nc\rd", `a\tb\nc\rd`, "a\tb\nc\\rd"},
		{"DEL", "a\x7f", `a\x7f`, ""},
		{"C1 CSI", "a\u009b31m", `a\u009b31m`, ""},
		{"bidi override", "evil\u202etxt.exe", `evil\u202etxt.exe`, ""},
		{"bidi isolate", "\u2066x\u2069", `\u2066x\u2069`, ""},
		{"zero width", "a\u200bb\ufeff", `a\u200bb\ufeff`, ""},
		{"line separator", "a\u2028b", `a\u2028b`, ""},
		{"format above the BMP", "a\U000e0001", `a\U000e0001`, ""},
		{"invalid UTF-8", "a\xffb\x9b", `a\xffb\x9b`, ""},
		{"truncated sequence", "a\xe2\x80", `a\xe2\x80`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Safe(tc.in); got != tc.want {
				t.Errorf("Safe(%q) = %q, want %q", tc.in, got, tc.want)
			}
			lines := tc.lines
			if lines == "" {
				lines = tc.want
			}
			if got := SafeLines(tc.in); got != lines {
				t.Errorf("SafeLines(%q) = %q, want %q", tc.in, got, lines)
			}
		})
	}
}

// TestSafeWriter: output written in pieces, with a UTF-8 sequence split
// between two writes, comes out as SafeLines of the whole.
func TestSafeWriter(t *testing.T) {
	in := "ok é\u202e\n\x1b[2J日本\xff\u009b"
	for split := 0; split <= len(in); split++ {
		var b bytes.Buffer
		w := NewSafeWriter(&b)
		for _, part := range []string{in[:split], in[split:]} {
			if n, err := w.Write([]byte(part)); err != nil || n != len(part) {
				t.Fatalf("Write = %d, %v", n, err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if got, want := b.String(), SafeLines(in); got != want {
			t.Errorf("split at %d: %q, want %q", split, got, want)
		}
	}
	var b bytes.Buffer
	w := NewSafeWriter(&b)
	_, _ = w.Write([]byte("a\xe2\x80"))
	_ = w.Flush()
	if b.String() != `a\xe2\x80` {
		t.Errorf("an incomplete sequence at the end: %q", b.String())
	}
}

// TestWriteJSONEscapes: the JSON document holds the exact strings for a
// reader, but no raw DEL, C1 or bidi character for a terminal.
func TestWriteJSONEscapes(t *testing.T) {
	in := map[string]string{"s": "a\x1b\x7f\u009b\u202e\U000e0001 é\u2028z"}
	var b bytes.Buffer
	if err := WriteJSON(&b, in); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(b.String(), "\x1b\x7f\u009b\u202e\U000e0001\u2028") {
		t.Errorf("raw control characters in %q", b.String())
	}
	if !strings.Contains(b.String(), `\u007f\u009b\u202e\udb40\udc01 é`) {
		t.Errorf("escapes: %s", b.String())
	}
	var out map[string]string
	if err := json.Unmarshal(b.Bytes(), &out); err != nil || out["s"] != in["s"] {
		t.Errorf("round trip: %q, %v", out["s"], err)
	}
}
