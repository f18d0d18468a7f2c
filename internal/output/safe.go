package output

import (
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Strings from a repository (a snapshot's message, labels, host, user,
// tool, paths and symlink targets, a lock's holder) are written by whoever
// could write to the remote. Shown raw, an escape sequence among them
// drives the user's terminal: OSC 52 writes the clipboard, CSI sequences
// clear the screen or hide text, and bidi overrides reorder what is shown.
// Every string a human sees therefore passes through Safe (one field, on
// one line) or SafeWriter (whole human output), which write the dangerous
// characters the way Go writes them in a quoted string.
//
// Escaped: C0 controls and DEL ("\x1b", "\t", "\n"), C1 controls
// ("\u009b"), Unicode format characters, among them the bidi overrides
// and isolates U+202A-U+202E and U+2066-U+2069 ("\u202e") and zero-width
// characters, the line and paragraph separators U+2028 and U+2029, and
// each byte of invalid UTF-8 ("\xff"). A backslash is left as it is, so a
// name holding a literal `\x1b` looks like one holding ESC; the exact
// value is in --json.

// Safe returns s with every character that could control a terminal, or
// break a line or a table cell, escaped. Text without such characters is
// returned unchanged.
func Safe(s string) string {
	return escape(s, false)
}

// SafeLines is Safe for multi-line text: newlines and tabs are kept.
func SafeLines(s string) string {
	return escape(s, true)
}

func escape(s string, keepLayout bool) string {
	i := firstUnsafe(s, keepLayout)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unsafeRune(r, keepLayout):
			b.WriteString(quoteRune(r))
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// firstUnsafe is the byte offset of the first character Safe escapes, or
// -1: the common case, plain text, is scanned once and not copied.
func firstUnsafe(s string, keepLayout bool) int {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(s[i:]); n == 1 {
				return i
			}
		}
		if unsafeRune(r, keepLayout) {
			return i
		}
	}
	return -1
}

// unsafeRune reports whether r must not reach a terminal as it is.
func unsafeRune(r rune, keepLayout bool) bool {
	switch {
	case r >= 0x20 && r < 0x7f:
		return false
	case keepLayout && (r == '\n' || r == '\t'):
		return false
	case r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0:
		return true // C0, DEL, C1
	case r == 0x2028 || r == 0x2029:
		return true
	}
	return unicode.Is(unicode.Cf, r) // bidi controls, zero-width characters, BOM
}

func quoteRune(r rune) string {
	switch r {
	case '\t':
		return `\t`
	case '\n':
		return `\n`
	case '\r':
		return `\r`
	}
	switch {
	case r < 0x80:
		return fmt.Sprintf(`\x%02x`, r)
	case r <= 0xffff:
		return fmt.Sprintf(`\u%04x`, r)
	}
	return fmt.Sprintf(`\U%08x`, r)
}

// SafeWriter passes text to w with SafeLines applied, so that a command's
// whole human output is safe whatever it prints. A UTF-8 sequence split
// across two writes is held back until it is complete (or Flush).
type SafeWriter struct {
	w       io.Writer
	pending []byte // the start of an incomplete UTF-8 sequence
}

// NewSafeWriter returns a SafeWriter writing to w.
func NewSafeWriter(w io.Writer) *SafeWriter { return &SafeWriter{w: w} }

// Write implements io.Writer. It reports len(p) when the escaped text was
// written in full.
func (s *SafeWriter) Write(p []byte) (int, error) {
	data := p
	if len(s.pending) > 0 {
		data = append(s.pending, p...)
		s.pending = nil
	}
	cut := incompleteTail(data)
	if cut < len(data) {
		s.pending = append([]byte(nil), data[cut:]...)
		data = data[:cut]
	}
	if _, err := io.WriteString(s.w, SafeLines(string(data))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes out a held-back incomplete sequence, escaped.
func (s *SafeWriter) Flush() error {
	if len(s.pending) == 0 {
		return nil
	}
	_, err := io.WriteString(s.w, SafeLines(string(s.pending)))
	s.pending = nil
	return err
}

// incompleteTail is where a UTF-8 sequence that may still be completed by
// the next write starts at the end of b; len(b) when there is none.
func incompleteTail(b []byte) int {
	for back := 1; back <= utf8.UTFMax-1 && back <= len(b); back++ {
		i := len(b) - back
		if !utf8.RuneStart(b[i]) {
			continue
		}
		if !utf8.FullRune(b[i:]) {
			return i
		}
		break
	}
	return len(b)
}
