package main

import (
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/saver"
	"github.com/statepack/statepack/internal/output"
)

// saveOutput is `save --json`.
//
//	state         the state that got a new version
//	snapshot      the new snapshot's id (64 hex digits)
//	parent        the previous version's id, "" for the first
//	files, dirs, symlinks  entries in the snapshot
//	bytes         content of all its files
//	files_read, bytes_read  files read this time (the others were unchanged)
//	new_blocks    blocks the store did not have yet
//	new_bytes     their raw size
//	stored_bytes  what they added to the store (compressed)
//	warnings      what was skipped, such as sockets
//	localstack    null, or what LocalStack answered when asked to save first
//	              (--localstack): {url, services: [{service, status, message}]}
//	duration_s    seconds taken
type saveOutput struct {
	State       string            `json:"state"`
	Snapshot    string            `json:"snapshot"`
	Parent      string            `json:"parent"`
	Files       int               `json:"files"`
	Dirs        int               `json:"dirs"`
	Symlinks    int               `json:"symlinks"`
	Bytes       int64             `json:"bytes"`
	FilesRead   int               `json:"files_read"`
	BytesRead   int64             `json:"bytes_read"`
	NewBlocks   int64             `json:"new_blocks"`
	NewBytes    int64             `json:"new_bytes"`
	StoredBytes int64             `json:"stored_bytes"`
	Warnings    []string          `json:"warnings"`
	LocalStack  *localstackOutput `json:"localstack"`
	DurationS   float64           `json:"duration_s"`
}

func (s *session) saveCommand() *cli.Command {
	return &cli.Command{
		Name:         "save",
		Usage:        "save DATA_DIR as a new version of STATE",
		ArgsUsage:    "STATE",
		BashComplete: completeStates,
		Description: "Files unchanged since the last save or restore are not read again; only blocks the\n" +
			"store does not have are stored. --include and --exclude take ** globs on paths relative\n" +
			"to DATA_DIR; a pattern that matches a directory covers everything beneath it.\n\n" +
			"With --localstack, a running LocalStack is first asked to write its state to DATA_DIR;\n" +
			"--services names LocalStack services instead of --include globs.\n\n" +
			"Example:\n\n   statepack save orders-e2e -m \"after stage 1\" --label commit=$GITHUB_SHA --exclude 'tmp/**'\n" +
			"   statepack save orders-e2e --localstack --services sqs,dynamodb",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "message", Aliases: []string{"m"}, Usage: "a `MESSAGE` stored with the version"},
			&cli.StringSliceFlag{Name: "label", Usage: "a `KEY=VALUE` label stored with the version (repeatable)"},
			&cli.StringSliceFlag{Name: "include", Usage: "save only paths matching `GLOB` (repeatable)"},
			&cli.StringSliceFlag{Name: "exclude", Usage: "leave out paths matching `GLOB` (repeatable)"},
		}, localstackFlags("save")...),
		Action: s.action(1, 1, s.runSave),
	}
}

func (s *session) runSave(c *cli.Context) error {
	state, err := stateName(c.Args().First())
	if err != nil {
		return err
	}
	labels, err := labelsOf(c.StringSlice("label"))
	if err != nil {
		return err
	}
	services, paths, err := servicePaths(c)
	if err != nil {
		return err
	}
	filter, err := filterOf(append(c.StringSlice("include"), paths...), c.StringSlice("exclude"))
	if err != nil {
		return err
	}
	dataDir, err := s.existingDataDir()
	if err != nil {
		return err
	}
	repo, err := s.openStore(c.Context)
	if err != nil {
		return err
	}
	ls, err := callLocalStack(c.Context, c, "save", services)
	if err != nil {
		return err
	}
	id := whoAmI()
	p := s.progress()
	start := time.Now()
	res, err := saver.Save(c.Context, repo, saver.Options{DataDir: dataDir, State: state, Message: c.String("message"), Labels: labels,
		Filter: filter, CacheDir: s.set.cacheDir(), Host: id.host, User: id.user, Tool: id.tool, Progress: p, LockWait: s.set.LockWait})
	p.Close()
	if err != nil {
		return err
	}
	out := saveOutputOf(res, time.Since(start))
	out.LocalStack = ls
	return s.emit(out, func(w io.Writer) {
		ls.print(w, "saved")
		fmt.Fprintf(w, "saved %s as %s: %s, %s (new: %s, %s stored) in %s\n", state, res.Snapshot.Short(),
			output.Plural(int64(res.Files), "file", "files"), output.Bytes(res.Bytes),
			output.Plural(res.NewBlocks, "block", "blocks"), output.Bytes(res.StoredBytes), output.Duration(time.Since(start)))
	})
}

func saveOutputOf(res *saver.Result, took time.Duration) saveOutput {
	return saveOutput{State: res.State, Snapshot: res.Snapshot.String(), Parent: idString(res.Parent),
		Files: res.Files, Dirs: res.Dirs, Symlinks: res.Symlinks, Bytes: res.Bytes, FilesRead: res.FilesRead, BytesRead: res.BytesRead,
		NewBlocks: res.NewBlocks, NewBytes: res.NewBytes, StoredBytes: res.StoredBytes, Warnings: nonNil(res.Warnings), DurationS: seconds(took)}
}

// idString is an id in full, or "" when it is unset.
func idString(id format.ID) string {
	if id.IsZero() {
		return ""
	}
	return id.String()
}

// nonNil makes empty lists print as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
