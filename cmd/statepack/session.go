package main

import (
	"context"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/statepack/statepack/internal/output"
)

// session is one run of the program: where output goes, the settings
// resolved from flags, environment and defaults, and what is being done
// (for the error message).
type session struct {
	stdout, stderr *os.File
	set            settings
	cmdline        map[string]bool // global flags given on the command line
	silentSignals  atomic.Bool     // --json or --quiet: no interrupt notice
	cancel         context.CancelFunc
	what           string // "save orders-e2e": what failed, for errors
	cmdName        string // the command's name, for hints
	onRemote       bool   // the command works on the remote
}

func newSession(stdout, stderr *os.File) *session {
	return &session{stdout: stdout, stderr: stderr, cmdline: map[string]bool{}}
}

// before resolves the settings once the global flags are parsed, and
// applies --timeout to the context every command receives.
func (s *session) before(c *cli.Context) error {
	set, err := resolveSettings(c, s.cmdline)
	if err != nil {
		return err
	}
	s.set = set
	s.silentSignals.Store(set.JSON || set.Quiet)
	if set.Timeout > 0 {
		c.Context, s.cancel = context.WithTimeout(c.Context, set.Timeout)
	}
	return nil
}

func (s *session) cancelTimeout() {
	if s.cancel != nil {
		s.cancel()
	}
}

// action wraps a command's action: it records what is being done for the
// error message and checks the number of arguments.
func (s *session) action(minArgs, maxArgs int, fn cli.ActionFunc) cli.ActionFunc {
	return func(c *cli.Context) error {
		s.cmdName = c.Command.Name
		s.what = strings.TrimSpace(c.Command.Name + " " + strings.Join(c.Args().Slice(), " "))
		n := c.Args().Len()
		switch {
		case n < minArgs:
			return usagef("missing %s", c.Command.ArgsUsage)
		case maxArgs >= 0 && n > maxArgs:
			return usagef("too many arguments (%s); want %s", strings.Join(c.Args().Slice()[minArgs:], " "), c.Command.ArgsUsage)
		}
		return fn(c)
	}
}

// emit prints a command's result: the JSON document with --json, the human
// form otherwise, nothing with --quiet. The human form passes through
// output.SafeWriter: whatever a command prints from a repository, no
// control character or bidi override reaches the terminal raw.
func (s *session) emit(doc any, human func(w io.Writer)) error {
	switch {
	case s.set.JSON:
		return output.WriteJSON(s.stdout, doc)
	case s.set.Quiet:
		return nil
	}
	w := output.NewSafeWriter(s.stdout)
	human(w)
	return w.Flush()
}

// progress returns the sink for the core: bars on a terminal, a line
// every few seconds otherwise, nothing with --quiet or --json.
func (s *session) progress() output.Progress {
	mode := output.ChooseMode(s.stderr, s.set.JSON || s.set.Quiet)
	return output.NewProgress(s.stderr, mode, output.ColorEnabled())
}

// seconds is a duration for duration_s fields.
func seconds(d time.Duration) float64 { return output.Seconds(d) }
