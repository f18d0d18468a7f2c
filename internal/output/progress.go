package output

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
	"golang.org/x/term"

	"github.com/statepack/statepack/internal/progress"
)

// Progress is a progress.Sink for one command. Close ends whatever it
// shows (a bar is cleared) before the command prints its summary.
type Progress interface {
	progress.Sink
	Close()
}

// ProgressMode says how progress is shown.
type ProgressMode int

// Progress modes, chosen by ChooseMode.
const (
	ModeNone  ProgressMode = iota // --quiet or --json: nothing, not even warnings
	ModeLines                     // not a terminal (CI logs): a line every few seconds
	ModeBars                      // a terminal: live bars
)

// LineInterval is the least time between two progress lines in ModeLines.
const LineInterval = 5 * time.Second

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool {
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}

// ColorEnabled reports whether colour may be used: NO_COLOR
// (https://no-color.org) is unset or empty.
func ColorEnabled() bool { return os.Getenv("NO_COLOR") == "" }

// ChooseMode picks the mode for progress written to f.
func ChooseMode(f *os.File, silent bool) ProgressMode {
	switch {
	case silent:
		return ModeNone
	case IsTerminal(f):
		return ModeBars
	}
	return ModeLines
}

// NewProgress returns the sink for mode, writing to w (standard error).
func NewProgress(w io.Writer, mode ProgressMode, color bool) Progress {
	switch mode {
	case ModeBars:
		return newBars(w, color)
	case ModeLines:
		return NewLines(w, LineInterval, time.Now)
	}
	return none{}
}

// none shows nothing, not even warnings (--quiet, --json).
type none struct{}

// Phase implements progress.Sink.
func (none) Phase(string, int64, int64) {}

// Add implements progress.Sink.
func (none) Add(int64, int64) {}

// Warn implements progress.Sink.
func (none) Warn(string) {}

// Close implements Progress.
func (none) Close() {}

// bars shows the current phase as one line redrawn in place (see
// barLine): what it counts done of the total, a bar, bytes, rate and
// time left, fitted to the terminal's width. Every call is serialised,
// so the line is never drawn by two goroutines at once.
type bars struct {
	mu    sync.Mutex
	w     io.Writer
	color bool
	width func() int       // the terminal's columns
	now   func() time.Time // the clock

	state    barState
	active   bool      // a phase with a known total is shown
	drawn    int       // visible width of the line on screen; 0: none
	lastDraw time.Time // when it was drawn
}

// barInterval is the least time between two redraws of the bar.
const barInterval = 100 * time.Millisecond

// newBars returns the terminal sink writing to w.
func newBars(w io.Writer, color bool) *bars {
	return &bars{w: w, color: color, width: func() int { return terminalWidth(w) }, now: time.Now}
}

// terminalWidth is the width of the terminal w writes to; 80 when it
// cannot tell.
func terminalWidth(w io.Writer) int {
	if f, ok := w.(*os.File); ok {
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 0 {
			return cols
		}
	}
	return 80
}

// Phase clears the line of the previous phase and draws the new one.
// A phase without totals shows nothing: there is nothing to measure
// against.
func (b *bars) Phase(name string, files, bytes int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.clearLocked()
	b.state = barState{name: name, unit: unitOf(name), totalFiles: files, totalBytes: bytes, start: b.now()}
	b.active = files > 0 || bytes > 0
	if b.active {
		b.drawLocked(b.state.start)
	}
}

// Add counts what was done and redraws, at most every barInterval.
func (b *bars) Add(files, bytes int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.state.files += files
	b.state.bytes += bytes
	if !b.active {
		return
	}
	if now := b.now(); now.Sub(b.lastDraw) >= barInterval {
		b.drawLocked(now)
	}
}

// Warn clears the line, prints the warning, and lets the line redraw
// below it.
func (b *bars) Warn(msg string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.clearLocked()
	fmt.Fprintf(b.w, "statepack: warning: %s\n", Safe(msg)) // warnings name paths
	if b.active {
		b.drawLocked(b.now())
	}
}

// Close clears the line, so that the command's summary stands alone.
func (b *bars) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.clearLocked()
	b.active = false
}

// drawLocked redraws the line in place: a carriage return, the line, and
// spaces over what a longer previous line left. No escape codes but
// colours (and those only when allowed), so NO_COLOR means plain text.
func (b *bars) drawLocked(now time.Time) {
	width := b.width()
	plain, colored := barLine(b.state, now, width, b.color)
	pad := max(0, min(b.drawn, width-1)-len(plain))
	fmt.Fprintf(b.w, "\r%s%s", colored, strings.Repeat(" ", pad))
	b.drawn, b.lastDraw = len(plain)+pad, now
}

func (b *bars) clearLocked() {
	if b.drawn > 0 {
		fmt.Fprintf(b.w, "\r%s\r", strings.Repeat(" ", b.drawn))
		b.drawn = 0
	}
}

// barState is what the line of one phase shows.
type barState struct {
	name              string
	unit              string // what files counts: files, packs, blocks
	files, totalFiles int64
	bytes, totalBytes int64
	start             time.Time
}

// Bar widths: the bar is drawn this wide when there is room, narrower
// down to barMin, and left out below that.
const (
	barMax = 30
	barMin = 10
)

// barLine renders the line of a phase for a terminal of width columns,
// as plain text (ASCII: its length is its width) and with colour when
// color is set. Everything it can show (the time from the first second,
// what is left once there is a rate):
//
//	restore  120/340 files [=======>       ]  45%  1.2 MiB/3.4 MiB   45 MiB/s 3s elapsed, 12s left
//
// The line never reaches the last column (where a terminal wraps): on a
// narrow terminal the bar narrows first, then the least useful parts go
// (elapsed time, rate, bytes, the bar, time left), and what still does
// not fit is cut.
func barLine(s barState, now time.Time, width int, color bool) (plain, colored string) {
	return partsOf(s, now).fit(width, color)
}

// barParts are the texts of a bar line; "" is a part not shown.
type barParts struct {
	name, count, percent, size, rate, spent, left string
	frac                                          float64 // of the bar filled
}

// partsOf says what the line of s shows at now. Counts are padded to
// the width of their totals, and the rate to a fixed width, so that the
// bar keeps its width as they grow.
func partsOf(s barState, now time.Time) barParts {
	elapsed := max(now.Sub(s.start), 0)
	byBytes := s.totalBytes > 0
	done, total := s.files, s.totalFiles
	if byBytes {
		done, total = s.bytes, s.totalBytes
	}
	p := barParts{name: fmt.Sprintf("%-8s", s.name), count: fmt.Sprintf("%d %s", s.files, s.unit)}
	if total > 0 {
		p.frac = min(float64(done)/float64(total), 1)
	}
	if s.totalFiles > 0 {
		p.count = fmt.Sprintf("%*d/%d %s", len(fmt.Sprint(s.totalFiles)), s.files, s.totalFiles, s.unit)
	}
	p.percent = fmt.Sprintf("%3d%%", int(p.frac*100))
	if byBytes {
		total := Bytes(s.totalBytes)
		p.size = fmt.Sprintf("%*s/%s", max(len(total), len("1023 KiB")), Bytes(s.bytes), total)
	}
	if elapsed < time.Second {
		return p // too early for the time to say anything
	}
	p.spent = clock(elapsed) + " elapsed"
	if done == 0 {
		return p
	}
	perSec := float64(done) / elapsed.Seconds()
	switch {
	case byBytes:
		p.rate = Bytes(int64(perSec)) + "/s"
	case perSec < 10:
		p.rate = fmt.Sprintf("%.1f %s/s", perSec, s.unit)
	default:
		p.rate = fmt.Sprintf("%.0f %s/s", perSec, s.unit)
	}
	p.rate = fmt.Sprintf("%*s", len("1023 MiB/s"), p.rate)
	if done < total {
		p.left = clock(time.Duration(float64(total-done)/perSec*float64(time.Second))) + " left"
	}
	return p
}

// fit lays the parts out in width columns (see barLine).
func (p barParts) fit(width int, color bool) (plain, colored string) {
	optional := []*string{&p.spent, &p.rate, &p.size} // least useful first
	for showBar := true; ; {
		rest := joinParts(p.percent, p.size, p.rate, timeText(p.spent, p.left))
		fixed := joinParts(p.name, p.count, rest)
		if room := width - 1 - len(fixed) - 1; showBar && room >= barMin+2 {
			inner, pad := barFill(p.frac, min(room-2, barMax))
			plain = joinParts(p.name, p.count, "["+inner+pad+"]", rest)
			if !color {
				return plain, plain
			}
			return plain, joinParts(cyan(p.name), p.count, "["+green(inner)+pad+"]", rest)
		}
		switch {
		case len(optional) > 0:
			*optional[0], optional = "", optional[1:]
		case showBar:
			showBar = false
		case p.left != "" && len(fixed) > width-1:
			p.left = ""
		default:
			plain = fixed[:min(len(fixed), max(width-1, 0))]
			if !color || len(plain) < len(p.name) {
				return plain, plain
			}
			return plain, cyan(p.name) + plain[len(p.name):]
		}
	}
}

// barFill draws the inside of a bar n columns wide, frac full:
// "=====>" and the spaces after it.
func barFill(frac float64, n int) (inner, pad string) {
	filled := int(frac * float64(n))
	inner = strings.Repeat("=", filled)
	if filled > 0 && filled < n {
		inner = inner[:filled-1] + ">"
	}
	return inner, strings.Repeat(" ", n-filled)
}

func cyan(s string) string { return "\x1b[36m" + s + "\x1b[0m" }

func green(s string) string {
	if s == "" {
		return ""
	}
	return "\x1b[32m" + s + "\x1b[0m"
}

// timeText is the time part of the bar line: "3s elapsed, 12s left", or
// either alone.
func timeText(spent, left string) string {
	switch {
	case spent == "":
		return left
	case left == "":
		return spent
	}
	return spent + ", " + left
}

// joinParts joins the non-empty parts with spaces.
func joinParts(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		if p == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(p)
	}
	return b.String()
}

// clock renders a duration to the second, for a line that is redrawn
// several times a second: "0s", "42s", "2m5s", "1h2m3s".
func clock(d time.Duration) string { return d.Truncate(time.Second).String() }

// unitOf is what the file count of a phase counts.
func unitOf(phase string) string {
	switch phase {
	case "verify", "prune", "repair":
		return "packs"
	case "transfer":
		return "blocks"
	}
	return "files"
}

// Lines reports progress as a plain line at most once per interval, for
// logs that are not terminals: no escape codes, no carriage returns.
type Lines struct {
	mu    sync.Mutex
	w     io.Writer
	every time.Duration
	now   func() time.Time

	name                  string
	files, bytes          int64
	totalFiles, totalByte int64
	start, last           time.Time
}

// NewLines returns a Lines sink writing to w at most once per every; now
// is the clock (time.Now outside tests).
func NewLines(w io.Writer, every time.Duration, now func() time.Time) *Lines {
	return &Lines{w: w, every: every, now: now}
}

// Phase implements progress.Sink.
func (l *Lines) Phase(name string, files, bytes int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.name, l.files, l.bytes, l.totalFiles, l.totalByte = name, 0, 0, files, bytes
	l.start = l.now()
	l.last = l.start
}

// Add implements progress.Sink.
func (l *Lines) Add(files, bytes int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.files += files
	l.bytes += bytes
	now := l.now()
	if now.Sub(l.last) < l.every {
		return
	}
	l.last = now
	fmt.Fprintln(l.w, l.line(now))
}

// line renders "statepack: save: 12/345 files, 1.2 GiB of 3.4 GiB (35%),
// 120 MiB/s, about 20s left" (packs or blocks instead of files for the
// phases that count those).
func (l *Lines) line(now time.Time) string {
	s := fmt.Sprintf("statepack: %s: %d", l.name, l.files)
	if l.totalFiles > 0 {
		s += fmt.Sprintf("/%d", l.totalFiles)
	}
	s += " " + unitOf(l.name) + ", " + Bytes(l.bytes)
	if l.totalByte > 0 {
		s += fmt.Sprintf(" of %s (%d%%)", Bytes(l.totalByte), l.bytes*100/l.totalByte)
	}
	elapsed := now.Sub(l.start)
	if elapsed > 0 && l.bytes > 0 {
		rate := float64(l.bytes) / elapsed.Seconds()
		s += ", " + Bytes(int64(rate)) + "/s"
		if left := l.totalByte - l.bytes; left > 0 {
			s += ", about " + Duration(time.Duration(float64(left)/rate*float64(time.Second))) + " left"
		}
	}
	return s
}

// Warn implements progress.Sink.
func (l *Lines) Warn(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "statepack: warning: %s\n", Safe(msg))
}

// Close implements Progress; the command prints the final summary.
func (l *Lines) Close() {}
