package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/maintain"
	"github.com/statepack/statepack/internal/output"
)

// verifyOutput is `verify --json`.
//
//	location   the store or remote verified
//	read_data  whether every block was read and re-hashed
//	ok         true when no problem was found
//	states, snapshots, indexes, packs, blocks  what was checked
//	bytes_read  pack bytes read (with read_data)
//	problems   [{object, error, snapshots: [ids it affects]}]
//	repair     null, or with --repair what the rebuild did before the check:
//	           {packs_read, packs_damaged, blocks_kept, blocks_lost,
//	           blocks_salvaged, indexes_replaced,
//	           snapshots_damaged: [{snapshot, state, error, files}]}
//	duration_s  seconds taken
type verifyOutput struct {
	Location              string                 `json:"location"`
	ReadData              bool                   `json:"read_data"`
	OK                    bool                   `json:"ok"`
	maintain.VerifyReport                        // states ... problems, flattened
	Repair                *maintain.RepairReport `json:"repair"`
	DurationS             float64                `json:"duration_s"`
}

func (s *session) verifyCommand() *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "check that every state, snapshot, index and pack is intact",
		ArgsUsage: " ",
		Description: "Checks that every state resolves, every snapshot decodes and names only indexed\n" +
			"blocks, and every pack matches the index. --read-data also reads every pack and\n" +
			"re-hashes every block. Exits 1 when it finds a problem. --repair first rebuilds the\n" +
			"index from the packs themselves (every block re-hashed), keeps what verifies and\n" +
			"drops damaged packs and unreadable snapshots, under the exclusive lock.\n\n" +
			"Example:\n\n   statepack verify --read-data\n   statepack verify --remote\n   statepack verify --repair",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "read-data", Usage: "read every pack and re-hash every block"},
			&cli.BoolFlag{Name: "repair", Usage: "rebuild the index from the packs first, dropping what is damaged"},
			onRemoteFlag("verify"),
		},
		Action: s.action(0, 0, s.runVerify),
	}
}

func (s *session) runVerify(c *cli.Context) error {
	open := s.openRepoReading
	if c.Bool("repair") {
		open = s.openRepo
	}
	repo, err := open(c.Context, c.Bool("remote"))
	if err != nil {
		return err
	}
	p := s.progress()
	start := time.Now()
	var repaired *maintain.RepairReport
	if c.Bool("repair") {
		if repaired, err = maintain.Repair(c.Context, repo, p, s.set.LockWait); err != nil {
			p.Close()
			return err
		}
	}
	rep, err := maintain.Verify(c.Context, repo, maintain.VerifyOptions{ReadData: c.Bool("read-data"), Progress: p})
	p.Close()
	if err != nil {
		return err
	}
	report := *rep
	report.Problems = nonNil(rep.Problems)
	out := verifyOutput{Location: repo.Location(), ReadData: c.Bool("read-data"), OK: rep.OK(), VerifyReport: report,
		Repair: repaired, DurationS: seconds(time.Since(start))}
	if err := s.emit(out, out.print); err != nil {
		return err
	}
	if !rep.OK() {
		return fmt.Errorf("%s found in %s (%w)", output.Plural(int64(len(rep.Problems)), "problem", "problems"), repo.Location(), format.ErrCorrupt)
	}
	return nil
}

func (o verifyOutput) print(w io.Writer) {
	if r := o.Repair; r != nil {
		fmt.Fprintf(w, "repaired the index: read %s (%d damaged), kept %d blocks, salvaged %d, lost %d, replaced %s\n",
			output.Plural(int64(r.PacksRead), "pack", "packs"), len(r.PacksDamaged), r.BlocksKept, r.BlocksSalvage, r.BlocksLost,
			output.Plural(int64(r.IndexesBefore), "index object", "index objects"))
		for _, l := range r.Snapshots {
			fmt.Fprintf(w, "damaged: snapshot %s of %s: %s\n", l.Snapshot[:min(8, len(l.Snapshot))], output.Safe(orDash(l.State)), output.Safe(lossText(l)))
		}
	}
	read := ""
	if o.ReadData {
		read = fmt.Sprintf(", read %s", output.Bytes(o.BytesRead))
	}
	fmt.Fprintf(w, "verified %s: %s, %s, %s, %s%s in %s\n", o.Location, output.Plural(int64(o.States), "state", "states"),
		output.Plural(int64(o.Snapshots), "snapshot", "snapshots"), output.Plural(int64(o.Packs), "pack", "packs"),
		output.Plural(int64(o.Blocks), "block", "blocks"), read, output.Duration(time.Duration(o.DurationS*float64(time.Second))))
	if o.OK {
		fmt.Fprintln(w, "no problems found")
		return
	}
	for _, p := range o.Problems {
		fmt.Fprintf(w, "problem: %s: %s\n", output.Safe(p.Object), output.Safe(p.Error)) // Safe: one line each
		for _, id := range p.Snapshots {
			fmt.Fprintf(w, "  affects snapshot %s\n", id[:min(8, len(id))])
		}
	}
}

func lossText(l maintain.SnapshotLoss) string {
	if l.Error != "" {
		return l.Error
	}
	return fmt.Sprintf("%s lost content (%s)", output.Plural(int64(len(l.Files)), "file", "files"), strings.Join(l.Files[:min(5, len(l.Files))], ", "))
}

// forgetOutput is `forget --json`.
//
//	location  the store or remote
//	state     the state
//	all       true when the whole state was removed
//	kept      ids of the versions kept, newest first
//	removed   ids of the versions removed (their space returns with prune)
type forgetOutput struct {
	Location string   `json:"location"`
	State    string   `json:"state"`
	All      bool     `json:"all"`
	Kept     []string `json:"kept"`
	Removed  []string `json:"removed"`
}

func (s *session) forgetCommand() *cli.Command {
	return &cli.Command{
		Name:         "forget",
		Usage:        "drop older versions of STATE (prune then reclaims their space)",
		ArgsUsage:    "STATE",
		BashComplete: completeStates,
		Description: "Keeps the newest --keep-last N versions, and with --keep-within also those newer\n" +
			"than DURATION (the newest version is always kept); --all removes the state. Blocks\n" +
			"stay until `statepack prune`.\n\n" +
			"Example:\n\n   statepack forget orders-e2e --keep-last 5\n   statepack forget pr-1234 --all --remote",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "keep-last", Usage: "keep the newest `N` versions"},
			&cli.DurationFlag{Name: "keep-within", Usage: "keep versions newer than `DURATION` (e.g. 72h)"},
			&cli.BoolFlag{Name: "all", Usage: "remove the state and all its versions"},
			onRemoteFlag("forget on"),
		},
		Action: s.action(1, 1, s.runForget),
	}
}

func (s *session) runForget(c *cli.Context) error {
	state, err := stateName(c.Args().First())
	if err != nil {
		return err
	}
	o := maintain.ForgetOptions{KeepLast: c.Int("keep-last"), KeepWithin: c.Duration("keep-within"), All: c.Bool("all"), LockWait: s.set.LockWait}
	switch {
	case o.KeepLast < 0 || o.KeepWithin < 0:
		return usagef("--keep-last and --keep-within must not be negative")
	case o.All && (o.KeepLast > 0 || o.KeepWithin > 0):
		return usagef("--all removes every version; it does not go with --keep-last or --keep-within")
	case !o.All && o.KeepLast == 0 && o.KeepWithin == 0:
		return usagef("forget needs --keep-last N, --keep-within DURATION or --all")
	case !o.All && o.KeepLast == 0:
		o.KeepLast = 1 // the head is never forgotten without --all
	}
	repo, err := s.openRepo(c.Context, c.Bool("remote"))
	if err != nil {
		return err
	}
	res, err := maintain.Forget(c.Context, repo, state, o)
	if err != nil {
		return err
	}
	out := forgetOutput{Location: repo.Location(), State: state, All: o.All, Kept: idStrings(res.Kept), Removed: idStrings(res.Removed)}
	return s.emit(out, func(w io.Writer) {
		prune := "`statepack prune" + s.remoteFlag() + "` reclaims their space"
		switch {
		case o.All:
			fmt.Fprintf(w, "forgot the state %s (%s); %s\n", state, output.Plural(int64(len(out.Removed)), "version", "versions"), prune)
		case len(out.Removed) == 0:
			fmt.Fprintf(w, "nothing to forget: %s has %s\n", state, output.Plural(int64(len(out.Kept)), "version", "versions"))
		default:
			fmt.Fprintf(w, "forgot %s of %s, kept %d; %s\n", output.Plural(int64(len(out.Removed)), "version", "versions"), state, len(out.Kept), prune)
		}
	})
}

func idStrings(ids []format.ID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}

// pruneOutput is `prune --json`.
//
//	location           the store or remote
//	snapshots_removed  snapshots no state reaches any more
//	packs_removed      packs deleted
//	packs_repacked     packs whose live blocks were copied to new packs
//	packs_written      new packs written by repacking
//	bytes_freed        bytes of packs deleted
//	blocks_kept        blocks still referenced
//	duration_s         seconds taken
type pruneOutput struct {
	Location string `json:"location"`
	maintain.PruneResult
	DurationS float64 `json:"duration_s"`
}

func (s *session) pruneCommand() *cli.Command {
	return &cli.Command{
		Name:      "prune",
		Usage:     "reclaim the space of forgotten versions, under the exclusive lock",
		ArgsUsage: " ",
		Description: "Removes snapshots no state reaches and blocks only they used, repacking packs that are\n" +
			"mostly garbage. While a save or push holds its lock, prune fails at once, or waits up to --lock-wait.\n\n" +
			"Example:\n\n   statepack forget orders-e2e --keep-last 5 && statepack prune",
		Flags:  []cli.Flag{onRemoteFlag("prune")},
		Action: s.action(0, 0, s.runPrune),
	}
}

func (s *session) runPrune(c *cli.Context) error {
	repo, err := s.openRepo(c.Context, c.Bool("remote"))
	if err != nil {
		return err
	}
	p := s.progress()
	start := time.Now()
	res, err := maintain.Prune(c.Context, repo, maintain.PruneOptions{Progress: p, LockWait: s.set.LockWait})
	p.Close()
	if err != nil {
		return err
	}
	out := pruneOutput{Location: repo.Location(), PruneResult: *res, DurationS: seconds(time.Since(start))}
	return s.emit(out, func(w io.Writer) {
		fmt.Fprintf(w, "pruned %s: removed %s and %s, repacked %d into %d, freed %s in %s\n", out.Location,
			output.Plural(int64(res.SnapshotsRemoved), "snapshot", "snapshots"), output.Plural(int64(res.PacksRemoved), "pack", "packs"),
			res.PacksRepacked, res.PacksWritten, output.Bytes(res.BytesFreed), output.Duration(time.Since(start)))
	})
}

// unlockOutput is `unlock --json`.
//
//	location   the store or remote
//	removed    the locks removed: [{id, exclusive, host, pid, command, time}]
//	remaining  locks still held (by live processes)
type unlockOutput struct {
	Location  string       `json:"location"`
	Removed   []lockOutput `json:"removed"`
	Remaining int          `json:"remaining"`
}

// lockOutput is one lock in `unlock --json`.
type lockOutput struct {
	ID        string    `json:"id"`
	Exclusive bool      `json:"exclusive"`
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	Command   string    `json:"command"`
	Time      time.Time `json:"time"`
}

func (s *session) unlockCommand() *cli.Command {
	return &cli.Command{
		Name:      "unlock",
		Usage:     "remove stale locks (left by processes that are gone); --all removes every lock",
		ArgsUsage: " ",
		Description: "A lock is stale when its process is gone (same host) or it has not been refreshed\n" +
			"for a while (other hosts). --all also removes locks of running processes: use it only\n" +
			"when you know they are gone.\n\nExample:\n\n   statepack unlock --remote",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Usage: "remove every lock, stale or not"},
			onRemoteFlag("unlock"),
		},
		Action: s.action(0, 0, s.runUnlock),
	}
}

func (s *session) runUnlock(c *cli.Context) error {
	repo, err := s.openRepo(c.Context, c.Bool("remote"))
	if err != nil {
		return err
	}
	removed, err := repo.RemoveLocks(c.Context, c.Bool("all"))
	if err != nil {
		return err
	}
	left, err := repo.Locks(c.Context)
	if err != nil {
		return err
	}
	out := unlockOutput{Location: repo.Location(), Removed: []lockOutput{}, Remaining: len(left)}
	for _, l := range removed {
		out.Removed = append(out.Removed, lockOutput{ID: l.ID, Exclusive: l.Exclusive, Host: l.Host, PID: l.PID, Command: l.Command, Time: l.Time})
	}
	return s.emit(out, out.print)
}

func (o unlockOutput) print(w io.Writer) {
	if len(o.Removed) == 0 {
		fmt.Fprintf(w, "no stale locks in %s\n", o.Location)
	}
	now := time.Now()
	for _, l := range o.Removed {
		kind := "shared"
		if l.Exclusive {
			kind = "exclusive"
		}
		fmt.Fprintf(w, "removed the %s lock of `%s` (PID %d on %s, taken %s)\n", kind, output.Safe(l.Command), l.PID, output.Safe(l.Host), output.Age(l.Time, now))
	}
	if o.Remaining > 0 {
		fmt.Fprintf(w, "%s still held by running processes; --all removes them too\n", output.Plural(int64(o.Remaining), "lock is", "locks are"))
	}
}
