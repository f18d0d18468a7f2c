package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/restorer"
	"github.com/statepack/statepack/archive/scan"
	"github.com/statepack/statepack/archive/transfer"
	"github.com/statepack/statepack/internal/output"
	"github.com/statepack/statepack/remote"
)

// syncOutput is `push --json` and `pull --json`.
//
//	state           the state moved (for pull: the one found, after fallbacks)
//	requested       the state asked for
//	fallback        true when pull took one of --fallback
//	snapshot        the id of the head sent or received
//	remote          the remote
//	up_to_date      true when the other side already had it
//	blocks, bytes   blocks and stored bytes sent (push) or received (pull)
//	skipped_blocks, skipped_bytes  blocks (and their raw bytes) already there
//	packs           packs written on the receiving side
//	requests        requests made to the remote
//	lookup_published  push only: it uploaded its lookup cache as the remote's lookup table
//	duration_s      seconds taken
//	replaced        with --force: the receiving side's previous head, when the new one does not
//	                contain it (nothing refers to it any more: the next prune there deletes it); else ""
//	restore         pull --restore only: the restore, as `restore --json` prints it; else null
type syncOutput struct {
	State         string         `json:"state"`
	Requested     string         `json:"requested"`
	Fallback      bool           `json:"fallback"`
	Snapshot      string         `json:"snapshot"`
	Remote        string         `json:"remote"`
	UpToDate      bool           `json:"up_to_date"`
	Blocks        int64          `json:"blocks"`
	Bytes         int64          `json:"bytes"`
	SkippedBlocks int64          `json:"skipped_blocks"`
	SkippedBytes  int64          `json:"skipped_bytes"`
	Packs         int            `json:"packs"`
	Requests      int64          `json:"requests"`
	LookupPub     bool           `json:"lookup_published"`
	DurationS     float64        `json:"duration_s"`
	Replaced      string         `json:"replaced"`
	Restore       *restoreOutput `json:"restore"`
}

func syncOutputOf(res *transfer.Result, requested, location string) syncOutput {
	return syncOutput{State: res.State, Requested: requested, Fallback: res.State != requested, Snapshot: res.Snapshot.String(),
		Remote: location, UpToDate: res.UpToDate, Blocks: res.Blocks, Bytes: res.Bytes, SkippedBlocks: res.SkippedBlocks,
		SkippedBytes: res.SkippedBytes, Packs: res.Packs, Requests: res.Requests, LookupPub: res.LookupPublished, DurationS: seconds(res.Duration),
		Replaced: idString(res.Replaced)}
}

func jobsFlag() cli.Flag {
	return &cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Value: transfer.DefaultJobs, Usage: "move `N` packs at once"}
}

func (s *session) pushCommand() *cli.Command {
	return &cli.Command{
		Name:         "push",
		Usage:        "send the newest version of STATE to the remote",
		ArgsUsage:    "STATE",
		BashComplete: completeStates,
		Description: "Only blocks the remote lacks are sent, as they are stored (no recompression). The\n" +
			"remote state moves only forward: when it has versions the local state lacks, push\n" +
			"refuses unless --force. A push cut off anywhere can simply be run again.\n\n" +
			"Example:\n\n   statepack push orders-e2e --remote s3://team-states/localstack",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "force", Usage: "replace the remote state even when it is not an ancestor of the local one"},
			jobsFlag(),
		},
		Action: s.action(1, 1, s.runPush),
	}
}

// syncArgs checks what push and pull share: the state (and fallbacks),
// --jobs and the remote.
func (s *session) syncArgs(c *cli.Context) (string, error) {
	state, err := stateName(c.Args().First())
	if err != nil {
		return "", err
	}
	for _, f := range c.StringSlice("fallback") {
		if _, err := stateName(f); err != nil {
			return "", err
		}
	}
	if c.Int("jobs") < 1 {
		return "", usagef("--jobs must be at least 1")
	}
	_, err = s.remoteURL()
	return state, err
}

func (s *session) runPush(c *cli.Context) error {
	state, err := s.syncArgs(c)
	if err != nil {
		return err
	}
	local, err := s.openStore(c.Context)
	if err != nil {
		return err
	}
	rem, err := s.openRemote(c.Context, remote.InitIfEmpty(local), remote.WithIndexCache(s.set.cacheDir()))
	if err != nil {
		return err
	}
	p := s.progress()
	res, err := transfer.Push(c.Context, local, rem, transfer.PushOptions{State: state, Force: c.Bool("force"), Jobs: c.Int("jobs"), Progress: p, LockWait: s.set.LockWait})
	p.Close()
	if err != nil {
		return err
	}
	out := syncOutputOf(res, state, rem.Location())
	return s.emit(out, func(w io.Writer) { out.print(w, true) })
}

// print writes the summary of a push (push set) or a pull.
func (o syncOutput) print(w io.Writer, push bool) {
	took := output.Duration(time.Duration(o.DurationS * float64(time.Second)))
	verb, dir, moved, where := "pulled", "from", "received", "the local store"
	if push {
		verb, dir, moved, where = "pushed", "to", "sent", o.Remote
	}
	fallback := ""
	if o.Fallback {
		fallback = fmt.Sprintf(" (fallback: %s is not there)", o.Requested)
	}
	if o.UpToDate {
		fmt.Fprintf(w, "%s already has %s (%s)%s: nothing to do (%s in %s)\n", where, o.State, o.Snapshot[:8], fallback, output.Plural(o.Requests, "request", "requests"), took)
		return
	}
	fmt.Fprintf(w, "%s %s (%s) %s %s%s: %s, %s %s; %s (%s) already there; %s, %d requests in %s\n",
		verb, o.State, o.Snapshot[:8], dir, o.Remote, fallback, output.Plural(o.Blocks, "block", "blocks"), output.Bytes(o.Bytes), moved,
		output.Plural(o.SkippedBlocks, "block", "blocks"), output.Bytes(o.SkippedBytes), output.Plural(int64(o.Packs), "pack", "packs"), o.Requests, took)
	o.printReplaced(w, push)
}

// printReplaced names the head a --force dropped and how to get it back
// before a prune deletes it.
func (o syncOutput) printReplaced(w io.Writer, push bool) {
	if o.Replaced == "" {
		return
	}
	id := o.Replaced[:8]
	if push {
		fmt.Fprintf(w, "--force replaced %s's head on %s, %s, which the pushed one does not contain; "+
			"no state there refers to it now, and the next `statepack prune --remote` deletes it\n", o.State, o.Remote, id)
		return
	}
	fmt.Fprintf(w, "--force replaced %s's local head, %s, which the pulled one does not contain; "+
		"`statepack restore %s` brings it back, until the next `statepack prune` deletes it\n", o.State, id, id)
}

func (s *session) pullCommand() *cli.Command {
	return &cli.Command{
		Name:         "pull",
		Usage:        "fetch the newest version of STATE (or of a fallback) from the remote",
		ArgsUsage:    "STATE",
		BashComplete: completeStates,
		Description: "Only blocks the local store lacks are fetched, each verified. --fallback names states\n" +
			"to try in order when STATE is not on the remote, like CI cache restore keys; when none\n" +
			"is there, pull exits with status 3. --restore restores what was pulled into DATA_DIR;\n" +
			"into a missing or empty DATA_DIR (a fresh CI runner) it writes each block into the files\n" +
			"as it arrives, so every block is decoded and verified once. An interrupted pull --restore\n" +
			"is shown by status and completed by running it again. A non-empty DATA_DIR that statepack\n" +
			"never saved or restored is refused, before anything is fetched, unless --overwrite.\n\n" +
			"Example:\n\n   statepack pull pr-1234 --fallback main --restore",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "fallback", Usage: "try `STATE` when the one asked for is absent (repeatable, in order)"},
			&cli.BoolFlag{Name: "restore", Usage: "restore the pulled snapshot into DATA_DIR"},
			&cli.BoolFlag{Name: "force", Usage: "replace the local state even when it is not an ancestor of the remote one"},
			&cli.BoolFlag{Name: "overwrite", Usage: "with --restore: restore even into a non-empty DATA_DIR statepack never saved or restored (what it holds is saved first)"},
			keepSetuidFlag(),
			jobsFlag(),
		},
		Action: s.action(1, 1, s.runPull),
	}
}

func (s *session) runPull(c *cli.Context) error {
	state, err := s.syncArgs(c)
	if err != nil {
		return err
	}
	dataDir := ""
	if c.Bool("restore") {
		if dataDir, err = s.dataDir(); err != nil {
			return err
		}
	} else if c.Bool("overwrite") || c.Bool("keep-setuid") {
		return usagef("--overwrite and --keep-setuid apply to --restore")
	}
	local, err := s.openStore(c.Context)
	if err != nil {
		return err
	}
	if c.Bool("restore") {
		// Refused before anything is fetched, not after the pull.
		err := restorer.CheckRestore(local, s.restoreOptions(format.ID{}, dataDir, scan.Filter{}, restoreFlagsOf(c), nil))
		if errors.Is(err, restorer.ErrUnknownDataDir) {
			return withHint(err, s.unknownDataDirHint())
		}
		if err != nil {
			return err
		}
	}
	rem, err := s.openRemote(c.Context, remote.ForReading(), remote.WithIndexCache(s.set.cacheDir()))
	var empty *remote.EmptyRemoteError
	switch {
	case errors.As(err, &empty) && empty.Missing:
		// Not a cache miss: a mistyped path would have a CI job start
		// empty, quietly, on every run.
		return withHint(fmt.Errorf("remote directory %s does not exist", empty.Location),
			"check --remote or STATEPACK_REMOTE; `statepack init --remote` or a first push creates a remote")
	case errors.As(err, &empty):
		// Nothing was ever pushed there: for CI this is a cache miss.
		return &archive.NotFoundError{What: fmt.Sprintf("state '%s'", state), Where: empty.Location + " (nothing was pushed there yet)"}
	}
	if err != nil {
		return err
	}
	p := s.progress()
	po := transfer.PullOptions{State: state, Fallbacks: c.StringSlice("fallback"), Force: c.Bool("force"), Jobs: c.Int("jobs"), Progress: p, LockWait: s.set.LockWait}
	var res *transfer.Result
	if c.Bool("restore") {
		ro := s.restoreOptions(format.ID{}, dataDir, scan.Filter{}, restoreFlagsOf(c), p)
		res, err = transfer.PullAndRestore(c.Context, local, rem, po, ro)
	} else {
		res, err = transfer.Pull(c.Context, local, rem, po)
	}
	p.Close()
	var failed *transfer.RestoreFailedError
	if errors.As(err, &failed) {
		s.onRemote = false // DATA_DIR's problem, not the remote's
		if errors.Is(err, restorer.ErrUnknownDataDir) {
			return withHint(err, s.unknownDataDirHint())
		}
	}
	if err != nil {
		return err
	}
	out := syncOutputOf(res, state, rem.Location())
	if res.Restore != nil {
		out.Restore = restoreOutputOf(res.State, dataDir, res.Restore, res.RestoreDuration)
	}
	return s.emit(out, func(w io.Writer) {
		out.print(w, false)
		if out.Restore != nil {
			out.Restore.print(w)
		}
	})
}
