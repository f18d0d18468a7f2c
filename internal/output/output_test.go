package output

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestFormats(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct{ got, want string }{
		{Bytes(0), "0 B"},
		{Bytes(1536), "1.5 KiB"},
		{Bytes(1288490189), "1.2 GiB"},
		{Age(now.Add(-3*time.Minute), now), "3 minutes ago"},
		{Age(time.Time{}, now), "never"},
		{Duration(1300 * time.Millisecond), "1.3s"},
		{Duration(85 * time.Millisecond), "85ms"},
		{Duration(125 * time.Second), "2m5s"},
		{Plural(1, "file", "files"), "1 file"},
		{Plural(3, "file", "files"), "3 files"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestTable(t *testing.T) {
	var b bytes.Buffer
	tb := NewTable(&b, "NAME", "SIZE")
	tb.Row("orders-e2e", "1.2 GiB")
	tb.Row("a\tb", "1 B")
	_ = tb.Flush()
	want := "NAME        SIZE\norders-e2e  1.2 GiB\na\\tb        1 B\n"
	if b.String() != want {
		t.Errorf("table:\n%q\nwant\n%q", b.String(), want)
	}
}

func TestWriteError(t *testing.T) {
	var b bytes.Buffer
	_ = WriteError(&b, ErrorBody{Code: CodeNotFound, Message: "state 'x' not found"})
	if got := strings.Join(strings.Fields(b.String()), " "); got != `{ "error": { "code": "not_found", "message": "state 'x' not found" } }` {
		t.Errorf("error document: %s", got)
	}
}

// TestLines: at most one line per interval, with counts of the total,
// throughput and time left; warnings always.
func TestLines(t *testing.T) {
	var b bytes.Buffer
	now := time.Unix(0, 0)
	clock := func() time.Time { return now }
	l := NewLines(&b, 5*time.Second, clock)
	l.Phase("save", 10, 100<<20)
	for i := 0; i < 4; i++ {
		now = now.Add(time.Second)
		l.Add(1, 10<<20)
	}
	if b.Len() != 0 {
		t.Fatalf("a line before the interval: %q", b.String())
	}
	now = now.Add(time.Second)
	l.Add(1, 10<<20)
	want := "statepack: save: 5/10 files, 50 MiB of 100 MiB (50%), 10 MiB/s, about 5s left\n"
	if b.String() != want {
		t.Fatalf("got %q, want %q", b.String(), want)
	}
	l.Add(1, 1)
	l.Warn("skipped socket s")
	if !strings.HasSuffix(b.String(), "statepack: warning: skipped socket s\n") || strings.Count(b.String(), "\n") != 2 {
		t.Errorf("after a warning: %q", b.String())
	}
	l.Phase("verify", 3, 0)
	now = now.Add(6 * time.Second)
	l.Add(1, 0)
	if !strings.Contains(b.String(), "statepack: verify: 1/3 packs, 0 B\n") {
		t.Errorf("verify line: %q", b.String())
	}
}

// TestBars: the terminal sink draws a bar per phase and clears it; colour
// codes only when allowed; nothing at all in ModeNone.
func TestBars(t *testing.T) {
	for _, color := range []bool{false, true} {
		var b bytes.Buffer
		p := NewProgress(&b, ModeBars, color)
		p.Phase("save", 2, 1000)
		p.Add(1, 500)
		p.Warn("careful")
		p.Add(1, 500)
		p.Close()
		out := b.String()
		if !strings.Contains(out, "save") || !strings.Contains(out, "/2 files") || !strings.Contains(out, "statepack: warning: careful\n") {
			t.Errorf("color %v: %q", color, out)
		}
		if strings.Contains(out, "\x1b[") != color {
			t.Errorf("color %v: escape codes %v: %q", color, strings.Contains(out, "\x1b["), out)
		}
	}
	var b bytes.Buffer
	p := NewProgress(&b, ModeNone, true)
	p.Phase("save", 1, 1)
	p.Add(1, 1)
	p.Warn("x")
	p.Close()
	if b.Len() != 0 {
		t.Errorf("ModeNone wrote %q", b.String())
	}
}
