package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/restorer"
	"github.com/statepack/statepack/archive/scan"
	"github.com/statepack/statepack/internal/output"
	"github.com/statepack/statepack/internal/progress"
)

// restoreOutput is `restore --json`, and the `restore` object of
// `pull --restore --json`.
//
//	name           the snapshot as named on the command line (or the state pulled)
//	snapshot       its id
//	data_dir       the directory restored into
//	files_written, bytes_written  files (re)written and their size
//	bytes_reused   of bytes_written, copied from the files they replaced
//	               (blocks that did not change between the versions)
//	files_skipped  files already identical, left alone
//	removed        paths removed because the snapshot does not have them
//	resumed        true when this finished an interrupted restore
//	backup         null, or the version that saved DATA_DIR's unsaved content
//	               first: {state, snapshot, files, bytes}
//	localstack     null, or what LocalStack answered when asked to load the
//	               state after (--localstack): {url, services: [...]}
//	duration_s     seconds taken
type restoreOutput struct {
	Name         string            `json:"name"`
	Snapshot     string            `json:"snapshot"`
	DataDir      string            `json:"data_dir"`
	FilesWritten int               `json:"files_written"`
	BytesWritten int64             `json:"bytes_written"`
	BytesReused  int64             `json:"bytes_reused"`
	FilesSkipped int               `json:"files_skipped"`
	Removed      int               `json:"removed"`
	Resumed      bool              `json:"resumed"`
	Backup       *backupOutput     `json:"backup"`
	LocalStack   *localstackOutput `json:"localstack"`
	DurationS    float64           `json:"duration_s"`
}

// backupOutput is the version restore saved before overwriting DATA_DIR.
//
//	state, snapshot  where it went
//	files, bytes     what it holds
type backupOutput struct {
	State    string `json:"state"`
	Snapshot string `json:"snapshot"`
	Files    int    `json:"files"`
	Bytes    int64  `json:"bytes"`
}

func (s *session) restoreCommand() *cli.Command {
	return &cli.Command{
		Name:         "restore",
		Usage:        "make DATA_DIR exactly a saved snapshot",
		ArgsUsage:    "SNAPSHOT",
		BashComplete: completeStates,
		Description: "SNAPSHOT is STATE (its newest version), STATE~N (N versions back) or an id prefix.\n" +
			"Files already identical are left alone; files not in the snapshot are removed. When\n" +
			"DATA_DIR holds content no snapshot has, it is saved first as a version of the state\n" +
			"'" + restorer.DefaultBackupState + "' (unless --no-backup). --only restores matching paths and leaves\n" +
			"the rest of DATA_DIR alone. A non-empty DATA_DIR that statepack never saved or restored\n" +
			"is refused unless --force. Files lose their setuid and setgid bits unless --keep-setuid.\n" +
			"With --localstack, a running LocalStack is asked to load the state once the files are in\n" +
			"place; when it does not answer, restore changes nothing. Should LocalStack fail to load,\n" +
			"DATA_DIR stays restored and restore exits with status 4. --services names services\n" +
			"instead of --only globs.\n\n" +
			"Example:\n\n   statepack restore orders-e2e~1\n   statepack restore orders-e2e --only 'api_states/sqs/**'\n" +
			"   statepack restore orders-e2e --services sqs --localstack",
		Flags: append([]cli.Flag{
			&cli.StringSliceFlag{Name: "only", Usage: "restore only paths matching `GLOB` (repeatable)"},
			&cli.BoolFlag{Name: "no-backup", Usage: "do not save DATA_DIR's unsaved content first"},
			&cli.BoolFlag{Name: "force", Aliases: []string{"overwrite"}, Usage: "restore even into a non-empty DATA_DIR statepack never saved or restored (what it holds is saved first unless --no-backup)"},
			keepSetuidFlag(),
		}, localstackFlags("load")...),
		Action: s.action(1, 1, s.runRestore),
	}
}

func (s *session) runRestore(c *cli.Context) error {
	spec, err := snapshotName(c.Args().First())
	if err != nil {
		return err
	}
	services, paths, err := servicePaths(c)
	if err != nil {
		return err
	}
	only, err := filterOf(append(c.StringSlice("only"), paths...), nil)
	if err != nil {
		return err
	}
	dataDir, err := s.dataDir()
	if err != nil {
		return err
	}
	if err := pingLocalStack(c.Context, c); err != nil {
		return err
	}
	repo, err := s.openStore(c.Context)
	if err != nil {
		return err
	}
	id, err := resolve(c.Context, repo, spec)
	if err != nil {
		return err
	}
	out, err := s.restore(c.Context, repo, spec, id, dataDir, only, restoreFlagsOf(c))
	if err != nil {
		return err
	}
	if out.LocalStack, err = callLocalStack(c.Context, c, "load", services); err != nil {
		return &notLoadedError{restore: out, err: err}
	}
	return s.emit(out, out.print)
}

// restoreFlags are the choices a user makes about a restore.
type restoreFlags struct {
	noBackup   bool
	force      bool // into a DATA_DIR statepack has no record of
	keepSetuid bool
}

// restoreFlagsOf reads restore's flags (pull has all but --no-backup, and
// calls --force --overwrite, since its --force is about refs).
func restoreFlagsOf(c *cli.Context) restoreFlags {
	force := c.Bool("force")
	if c.Command.Name == "pull" {
		force = c.Bool("overwrite")
	}
	return restoreFlags{noBackup: c.Bool("no-backup"), force: force, keepSetuid: c.Bool("keep-setuid")}
}

// keepSetuidFlag is --keep-setuid of restore and pull.
func keepSetuidFlag() cli.Flag {
	return &cli.BoolFlag{Name: "keep-setuid", Usage: "keep the setuid and setgid bits of restored files (cleared by default, as a remote may be hostile)"}
}

// unknownDataDirHint names the flag that restores into a DATA_DIR
// statepack has no record of.
func (s *session) unknownDataDirHint() string {
	flag := "--force"
	if s.cmdName == "pull" {
		flag = "--overwrite"
	}
	return fmt.Sprintf("check that DATA_DIR is the right directory; %s restores anyway, saving what it holds first as a version of '%s' (unless --no-backup)",
		flag, restorer.DefaultBackupState)
}

// restore restores id into dataDir, with progress.
func (s *session) restore(ctx context.Context, repo *archive.Repository, name string, id format.ID, dataDir string, only scan.Filter, f restoreFlags) (*restoreOutput, error) {
	p := s.progress()
	start := time.Now()
	res, err := restorer.Restore(ctx, repo, s.restoreOptions(id, dataDir, only, f, p))
	p.Close()
	if errors.Is(err, restorer.ErrUnknownDataDir) {
		return nil, withHint(err, s.unknownDataDirHint())
	}
	if err != nil {
		return nil, err
	}
	return restoreOutputOf(name, dataDir, res, time.Since(start)), nil
}

// restoreOptions are the options of a full restore of id into dataDir.
func (s *session) restoreOptions(id format.ID, dataDir string, only scan.Filter, f restoreFlags, p progress.Sink) restorer.Options {
	who := whoAmI()
	return restorer.Options{DataDir: dataDir, Snapshot: id, Only: only, NoBackup: f.noBackup, Force: f.force, KeepSetuid: f.keepSetuid,
		CacheDir: s.set.cacheDir(), Host: who.host, User: who.user, Tool: who.tool, Progress: p, LockWait: s.set.LockWait}
}

// restoreOutputOf is what restore --json prints for res; pull --restore
// prints the same whether it restored while pulling or after.
func restoreOutputOf(name, dataDir string, res *restorer.Result, took time.Duration) *restoreOutput {
	out := &restoreOutput{Name: name, Snapshot: res.Snapshot.String(), DataDir: dataDir, FilesWritten: res.FilesWritten, BytesWritten: res.BytesWritten,
		BytesReused: res.BytesReused, FilesSkipped: res.FilesSkipped, Removed: res.Removed, Resumed: res.Resumed, DurationS: seconds(took)}
	if b := res.Backup; b != nil {
		out.Backup = &backupOutput{State: b.State, Snapshot: b.Snapshot.String(), Files: b.Files, Bytes: b.Bytes}
	}
	return out
}

func (o *restoreOutput) print(w io.Writer) {
	if b := o.Backup; b != nil {
		fmt.Fprintf(w, "saved what DATA_DIR held first, as %s %s (`statepack restore %s` brings it back)\n", b.State, b.Snapshot[:8], b.Snapshot[:8])
	}
	resumed := ""
	if o.Resumed {
		resumed = " (finished an interrupted restore)"
	}
	fmt.Fprintf(w, "restored %s (%s) into %s%s: %s written (%s), %d unchanged, %d removed in %s\n", o.Name, o.Snapshot[:8], o.DataDir, resumed,
		output.Plural(int64(o.FilesWritten), "file", "files"), output.Bytes(o.BytesWritten), o.FilesSkipped, o.Removed,
		output.Duration(time.Duration(o.DurationS*float64(time.Second))))
	o.LocalStack.print(w, "loaded")
}
