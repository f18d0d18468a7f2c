// Package output holds what the statepack command line shares to show
// results: human sizes, ages and durations, aligned tables, the JSON
// documents and error envelope of --json, and the three ways progress is
// shown (bars on a terminal, a periodic line in a CI log, nothing).
//
// The core (archive, remote) never prints; it reports to a progress.Sink,
// and the CLI picks the Sink from this package that fits where its output
// goes.
package output

import (
	"fmt"
	"time"

	"github.com/dustin/go-humanize"
)

// Bytes renders a size in IEC units: "0 B", "1.2 KiB", "3.4 GiB".
func Bytes(n int64) string {
	if n < 0 {
		return "-" + humanize.IBytes(uint64(-n))
	}
	return humanize.IBytes(uint64(n))
}

// Age renders how long ago t was, relative to now: "3 minutes ago".
func Age(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	if t.After(now) {
		return "just now"
	}
	return humanize.RelTime(t, now, "ago", "from now")
}

// Duration renders an elapsed time for a summary line: "85ms", "1.3s",
// "2m5s".
func Duration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// Seconds is a duration as float seconds, the unit of every duration_s
// field in JSON output.
func Seconds(d time.Duration) float64 { return d.Seconds() }

// Timestamp renders a time for tables, in the local zone to the second.
func Timestamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// Plural renders a count with its noun: "1 file", "3 files".
func Plural(n int64, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
