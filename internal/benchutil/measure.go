// Package benchutil holds the measuring pieces of the benchmark suite
// (internal/cmd/statepack-bench): running a child process and reading its wall
// time, CPU time and peak memory, medians over runs, the size of a
// directory, the pages a mutation changed, and aligned tables.
package benchutil

import (
	"bytes"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Sample is one measured run of a command.
type Sample struct {
	Wall time.Duration `json:"wall_ns"`
	// CPU is user plus system time of the process and of the children it
	// waited for (tar counts the zstd it runs).
	CPU time.Duration `json:"cpu_ns"`
	// MaxRSS is the peak resident set in bytes: the largest of the process
	// and its waited-for children, not their sum.
	MaxRSS int64 `json:"max_rss_bytes"`
}

// Run runs cmd, which must not have been started, and measures it (call
// Settle first). It returns what the command wrote to standard output; on
// failure the error quotes the end of standard error.
func Run(cmd *exec.Cmd) (Sample, []byte, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return Sample{}, nil, fmt.Errorf("%s: %v: %s", strings.Join(cmd.Args, " "), err, lastLines(stderr.String(), 5))
	}
	s := Sample{Wall: wall}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		s.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		s.MaxRSS = ru.Maxrss << 10 // Linux reports KiB
	}
	return s, stdout.Bytes(), nil
}

// lastLines returns at most n final lines of s, trimmed.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// Series is the samples of one operation over several runs.
type Series struct {
	Samples []Sample `json:"samples"`
}

// Add appends a sample.
func (s *Series) Add(x Sample) { s.Samples = append(s.Samples, x) }

// Summary condenses a series: the median wall and CPU time, and the
// highest peak RSS of any run.
type Summary struct {
	Runs   int           `json:"runs"`
	Wall   time.Duration `json:"wall_ns"`
	MinW   time.Duration `json:"wall_min_ns"`
	MaxW   time.Duration `json:"wall_max_ns"`
	CPU    time.Duration `json:"cpu_ns"`
	MaxRSS int64         `json:"max_rss_bytes"`
}

// Summary returns the series' summary; the zero Summary when it is empty.
func (s *Series) Summary() Summary {
	if s == nil || len(s.Samples) == 0 {
		return Summary{}
	}
	walls := make([]time.Duration, len(s.Samples))
	cpus := make([]time.Duration, len(s.Samples))
	var rss int64
	for i, x := range s.Samples {
		walls[i], cpus[i] = x.Wall, x.CPU
		rss = max(rss, x.MaxRSS)
	}
	return Summary{Runs: len(walls), Wall: Median(walls), MinW: slices.Min(walls), MaxW: slices.Max(walls),
		CPU: Median(cpus), MaxRSS: rss}
}

// Median returns the middle value of ds (the mean of the two middle ones
// for an even count); zero for none.
func Median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(ds))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// MedianInt returns the middle value of xs (the lower of the two middle
// ones for an even count); zero for none.
func MedianInt(xs []int64) int64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	return s[(len(s)-1)/2]
}
