package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/restorer"
	"github.com/statepack/statepack/internal/output"
)

// diffOutput is `diff --json`.
//
//	from      the first snapshot's id
//	to        the second snapshot's id; "" when comparing with DATA_DIR
//	data_dir  DATA_DIR when comparing with it; "" otherwise
//	added, removed, modified  counts of paths
//	changes   one object per path that differs, by path:
//	          {path, kind: added|removed|modified, type: file|dir|symlink,
//	          old_size, new_size, what: [content, type, mode, owner, mtime, target]}
type diffOutput struct {
	From     string            `json:"from"`
	To       string            `json:"to"`
	DataDir  string            `json:"data_dir"`
	Added    int               `json:"added"`
	Removed  int               `json:"removed"`
	Modified int               `json:"modified"`
	Changes  []restorer.Change `json:"changes"`
}

func (s *session) diffCommand() *cli.Command {
	return &cli.Command{
		Name:         "diff",
		Usage:        "compare two snapshots, or a snapshot with DATA_DIR",
		ArgsUsage:    "A [B]",
		BashComplete: completeStates,
		Description: "With two snapshots, lists what changed from A to B. With one, compares A with\n" +
			"DATA_DIR as it is on disk now (files whose metadata changed are read and compared).\n\n" +
			"Example:\n\n   statepack diff orders-e2e~1 orders-e2e\n   statepack diff orders-e2e",
		Action: s.action(1, 2, s.runDiff),
	}
}

func (s *session) runDiff(c *cli.Context) error {
	a, b := c.Args().Get(0), c.Args().Get(1)
	for _, spec := range []string{a, b} {
		if _, err := snapshotName(spec); spec != "" && err != nil {
			return err
		}
	}
	dataDir := ""
	if b == "" {
		var err error
		if dataDir, err = s.existingDataDir(); err != nil {
			return err
		}
	}
	repo, err := s.openStore(c.Context)
	if err != nil {
		return err
	}
	from, err := resolve(c.Context, repo, a)
	if err != nil {
		return err
	}
	out := diffOutput{From: from.String(), DataDir: dataDir}
	if b == "" {
		out.Changes, err = restorer.DiffDataDir(c.Context, repo, from, dataDir, s.set.cacheDir())
	} else {
		var to format.ID
		if to, err = resolve(c.Context, repo, b); err != nil {
			return err
		}
		out.To = to.String()
		out.Changes, err = restorer.Diff(c.Context, repo, from, to)
	}
	if err != nil {
		return err
	}
	out.Changes = nonNil(out.Changes)
	out.Added, out.Removed, out.Modified = restorer.CountChanges(out.Changes)
	return s.emit(out, out.print)
}

// print writes a line per change. A path may hold a newline, which would
// forge a line of its own: output.Safe escapes it (and any control
// character) with the rest.
func (o diffOutput) print(w io.Writer) {
	for _, ch := range o.Changes {
		path := output.Safe(ch.Path)
		switch ch.Kind {
		case restorer.Added:
			fmt.Fprintf(w, "+ %s  (%s)\n", path, sizeOf(ch.Type, ch.NewSize))
		case restorer.Removed:
			fmt.Fprintf(w, "- %s  (%s)\n", path, sizeOf(ch.Type, ch.OldSize))
		default:
			detail := strings.Join(ch.What, ", ")
			if ch.OldSize != ch.NewSize {
				detail += fmt.Sprintf("; %s -> %s", output.Bytes(ch.OldSize), output.Bytes(ch.NewSize))
			}
			fmt.Fprintf(w, "M %s  (%s)\n", path, detail)
		}
	}
	if len(o.Changes) == 0 {
		fmt.Fprintln(w, "no differences")
		return
	}
	fmt.Fprintf(w, "%d added, %d removed, %d modified\n", o.Added, o.Removed, o.Modified)
}

func sizeOf(typ string, n int64) string {
	if typ != "file" {
		return typ
	}
	return output.Bytes(n)
}
