// Command statepack-datagen generates and mutates deterministic,
// LocalStack-like data directories for statepack's tests, demo and
// benchmarks (see package internal/datagen).
//
//	statepack-datagen generate --dir DIR [--size 64MiB] [--seed 1] [--json]
//	statepack-datagen mutate   --dir DIR [--seed 1] [--step 1] [--json]
//
// Each command prints a one-line summary, or its statistics as JSON with
// --json. Errors are printed as one line on standard error, with exit
// status 1.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/statepack/statepack/internal/datagen"
	"github.com/urfave/cli/v2"
)

func main() {
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintf(os.Stderr, "statepack-datagen: %v\n", err)
		os.Exit(1)
	}
}

// usageError reports a flag error as a plain error, without the help text.
func usageError(_ *cli.Context, err error, _ bool) error { return err }

// newApp builds the command line: the two commands and their flags.
func newApp() *cli.App {
	return &cli.App{
		Name:            "statepack-datagen",
		Usage:           "generate and mutate LocalStack-like data directories",
		HideHelpCommand: true,
		OnUsageError:    usageError,
		Commands:        []*cli.Command{generateCommand(), mutateCommand()},
	}
}

var (
	dirFlag  = &cli.StringFlag{Name: "dir", Usage: "the data directory (`DIR`)"}
	seedFlag = &cli.Int64Flag{Name: "seed", Value: 1, Usage: "the seed that determines the content"}
	jsonFlag = &cli.BoolFlag{Name: "json", Usage: "print the statistics as JSON"}
)

// generateCommand is `generate`: datagen.Generate with a summary.
func generateCommand() *cli.Command {
	return &cli.Command{
		Name:         "generate",
		Usage:        "create DIR and fill it with a LocalStack-like data directory",
		OnUsageError: usageError,
		Flags: []cli.Flag{
			dirFlag,
			&cli.StringFlag{Name: "size", Value: "64MiB", Usage: "approximate total `SIZE` of the files (e.g. 1GiB, 500MB)"},
			seedFlag,
			jsonFlag,
		},
		Action: func(c *cli.Context) error {
			dir, err := requireDir(c)
			if err != nil {
				return err
			}
			size, err := parseSize(c.String("size"))
			if err != nil {
				return err
			}
			start := time.Now()
			st, err := datagen.Generate(dir, datagen.Options{Seed: c.Int64("seed"), Size: size})
			if err != nil {
				return err
			}
			took := time.Since(start)
			if c.Bool("json") {
				return writeJSON(c.App.Writer, st)
			}
			_, err = fmt.Fprintf(c.App.Writer, "generated %s in %s, %s, %s under %s (seed %d) in %s, %s/s\n",
				humanize.IBytes(uint64(st.Bytes)), count(st.Files, "file"), count(st.Dirs, "dir"),
				count(st.Symlinks, "symlink"), dir, c.Int64("seed"), took.Round(time.Millisecond),
				humanize.Bytes(uint64(float64(st.Bytes)/took.Seconds())))
			return err
		},
	}
}

// mutateCommand is `mutate`: datagen.Mutate with a summary.
func mutateCommand() *cli.Command {
	return &cli.Command{
		Name:         "mutate",
		Usage:        "change DIR the way one LocalStack test stage does",
		OnUsageError: usageError,
		Flags: []cli.Flag{
			dirFlag,
			seedFlag,
			&cli.IntFlag{Name: "step", Value: 1, Usage: "the stage number, from 1; each step's changes differ"},
			jsonFlag,
		},
		Action: func(c *cli.Context) error {
			dir, err := requireDir(c)
			if err != nil {
				return err
			}
			st, err := datagen.Mutate(dir, c.Int64("seed"), c.Int("step"))
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return writeJSON(c.App.Writer, st)
			}
			_, err = fmt.Fprintf(c.App.Writer, "mutated %s (seed %d, step %d): %s changed, %d added, %d deleted; %s (%s) changed\n",
				dir, c.Int64("seed"), c.Int("step"), count(st.FilesChanged, "file"), st.FilesAdded, st.FilesDeleted,
				count(st.PagesChanged, "4 KiB page"), humanize.IBytes(uint64(st.ChangedBytes)))
			return err
		},
	}
}

// requireDir returns --dir, which every command needs, and refuses
// positional arguments.
func requireDir(c *cli.Context) (string, error) {
	dir := c.String("dir")
	if dir == "" {
		return "", errors.New("--dir is required")
	}
	if c.NArg() > 0 {
		return "", fmt.Errorf("unexpected argument %q", c.Args().First())
	}
	return dir, nil
}

// parseSize parses a human size such as "64MiB", "1.5GB" or "1000000".
func parseSize(s string) (int64, error) {
	n, err := humanize.ParseBytes(s)
	if err != nil {
		return 0, fmt.Errorf("--size %q: %w", s, err)
	}
	if n > math.MaxInt64 {
		return 0, fmt.Errorf("--size %q: too large", s)
	}
	return int64(n), nil
}

// count formats n things, in the plural unless n is 1.
func count(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// writeJSON prints v as one line of JSON.
func writeJSON(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}
