package output

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBarLineWidths: at any terminal width the line stays short of the
// last column (a terminal wraps there), a bar is either drawn at least
// barMin wide or not at all (never "[]"), and at 80 and 60 columns the
// bar, the counts and the time left are all there.
func TestBarLineWidths(t *testing.T) {
	t0 := time.Unix(0, 0)
	states := map[string]barState{
		"bytes": {name: "restore", unit: "files", files: 1200, totalFiles: 34000, bytes: 12 << 20, totalBytes: 3 << 30, start: t0},
		"count": {name: "verify", unit: "packs", files: 3, totalFiles: 10, start: t0},
	}
	bar := regexp.MustCompile(`\[[=> ]*\]`)
	for name, st := range states {
		for _, elapsed := range []time.Duration{0, 7 * time.Second, 2*time.Hour + 3*time.Minute} {
			for width := 1; width <= 200; width++ {
				plain, colored := barLine(st, t0.Add(elapsed), width, true)
				if len(plain) > max(width-1, 0) {
					t.Fatalf("%s, %d columns: %d wide: %q", name, width, len(plain), plain)
				}
				if strings.Contains(plain, "[]") {
					t.Fatalf("%s, %d columns: an empty bar: %q", name, width, plain)
				}
				if m := bar.FindString(plain); m != "" && len(m) < barMin+2 {
					t.Fatalf("%s, %d columns: a bar %d wide: %q", name, width, len(m), plain)
				}
				if got := regexp.MustCompile("\x1b\\[[0-9;]*m").ReplaceAllString(colored, ""); got != plain {
					t.Fatalf("%s, %d columns: colour changes the text:\n%q\n%q", name, width, got, plain)
				}
			}
		}
		for _, width := range []int{80, 60} {
			plain, _ := barLine(st, t0.Add(7*time.Second), width, false)
			for _, want := range []string{st.name, "/" + strconv.FormatInt(st.totalFiles, 10) + " " + st.unit, "%", " left"} {
				if !strings.Contains(plain, want) {
					t.Errorf("%s at %d columns lacks %q: %q", name, width, want, plain)
				}
			}
			if !bar.MatchString(plain) {
				t.Errorf("%s at %d columns has no bar: %q", name, width, plain)
			}
		}
	}
}

// TestBarLineTime: the time reads as words, elapsed and, once a rate is
// known, what is left; never progressbar's "[0s:0s]".
func TestBarLineTime(t *testing.T) {
	t0 := time.Unix(0, 0)
	st := barState{name: "save", unit: "files", files: 2, totalFiles: 10, bytes: 10 << 20, totalBytes: 40 << 20, start: t0}
	tests := []struct {
		elapsed time.Duration
		want    string
	}{
		{0, "10 MiB/40 MiB"},
		{800 * time.Millisecond, "10 MiB/40 MiB"}, // too early to say anything about time
		{5 * time.Second, "5s elapsed, 15s left"},
		{125 * time.Second, "2m5s elapsed, 6m15s left"},
	}
	for _, tc := range tests {
		plain, _ := barLine(st, t0.Add(tc.elapsed), 200, false)
		if !strings.HasSuffix(plain, " "+tc.want) {
			t.Errorf("after %s: %q, want it to end in %q", tc.elapsed, plain, tc.want)
		}
		if regexp.MustCompile(`\[\d+s:\d+s\]`).MatchString(plain) {
			t.Errorf("after %s: %q", tc.elapsed, plain)
		}
	}
	done := st
	done.bytes = done.totalBytes
	if plain, _ := barLine(done, t0.Add(5*time.Second), 200, false); strings.Contains(plain, "left") || !strings.Contains(plain, "100%") {
		t.Errorf("finished: %q", plain)
	}
}

// TestBarsNarrowTerminal: on a 60-column terminal every redraw fits, and
// Close leaves the line blank for the summary.
func TestBarsNarrowTerminal(t *testing.T) {
	var b bytes.Buffer
	now := time.Unix(0, 0)
	p := &bars{w: &b, width: func() int { return 60 }, now: func() time.Time { return now }}
	p.Phase("restore", 340, 3<<30)
	for i := 0; i < 40; i++ {
		now = now.Add(time.Second)
		p.Add(7, 60<<20)
	}
	p.Close()
	for _, line := range strings.Split(b.String(), "\r") {
		if len(line) > 59 {
			t.Errorf("a redraw %d wide on 60 columns: %q", len(line), line)
		}
	}
	if !strings.HasSuffix(b.String(), "\r") || !strings.Contains(b.String(), "/340 files") {
		t.Errorf("output: %q", b.String())
	}
}
