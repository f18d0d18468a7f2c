package output

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/schollz/progressbar/v3"

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
		return &bars{w: w, color: color}
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

// bars shows one progressbar per phase: bytes done of the total with
// throughput and time left, and files done of the total in the
// description. Every call is serialised, so the bar is never drawn by two
// goroutines at once.
type bars struct {
	mu    sync.Mutex
	w     io.Writer
	color bool

	bar        *progressbar.ProgressBar
	name       string
	files      int64
	totalFiles int64
	byBytes    bool
}

// Phase finishes the bar of the previous phase and starts one for name.
func (b *bars) Phase(name string, files, bytes int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.finishLocked()
	b.name, b.files, b.totalFiles = name, 0, files
	switch {
	case bytes > 0:
		b.byBytes = true
		b.bar = b.newBar(bytes)
	case files > 0:
		b.byBytes = false
		b.bar = b.newBar(files)
	}
}

func (b *bars) describe() string {
	name := fmt.Sprintf("%-8s", b.name)
	if b.color {
		name = "[cyan]" + name + "[reset]"
	}
	if !b.byBytes {
		return name
	}
	return fmt.Sprintf("%s %d/%d %s", name, b.files, b.totalFiles, unitOf(b.name))
}

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

func (b *bars) newBar(max int64) *progressbar.ProgressBar {
	theme := progressbar.Theme{Saucer: "=", SaucerHead: ">", SaucerPadding: " ", BarStart: "[", BarEnd: "]"}
	if b.color {
		theme.Saucer, theme.SaucerHead = "[green]=[reset]", "[green]>[reset]"
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(b.w),
		progressbar.OptionSetDescription(b.describe()),
		progressbar.OptionSetWidth(30),
		progressbar.OptionSetTheme(theme),
		progressbar.OptionEnableColorCodes(b.color),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetRenderBlankState(true),
	}
	if b.byBytes {
		opts = append(opts, progressbar.OptionShowBytes(true), progressbar.OptionUseIECUnits(true), progressbar.OptionShowCount())
	} else {
		opts = append(opts, progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString(unitOf(b.name)))
	}
	return progressbar.NewOptions64(max, opts...)
}

// Add advances the bar.
func (b *bars) Add(files, bytes int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.files += files
	if b.bar == nil {
		return
	}
	if b.byBytes {
		if files > 0 {
			b.bar.Describe(b.describe())
		}
		_ = b.bar.Add64(bytes) // past the total (a file grew) is not an error worth showing
		return
	}
	_ = b.bar.Add64(files)
}

// Warn clears the bar, prints the warning, and lets the bar redraw below.
func (b *bars) Warn(msg string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bar != nil {
		_ = b.bar.Clear()
	}
	fmt.Fprintf(b.w, "statepack: warning: %s\n", Safe(msg)) // warnings name paths
}

// Close finishes and clears the bar.
func (b *bars) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.finishLocked()
}

func (b *bars) finishLocked() {
	if b.bar != nil {
		_ = b.bar.Finish()
		_ = b.bar.Clear()
		b.bar = nil
	}
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
