package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/restorer"
	"github.com/statepack/statepack/internal/output"
	"github.com/statepack/statepack/remote"
	"github.com/statepack/statepack/remote/backend"
	"github.com/statepack/statepack/remote/dirbackend"
)

// Values of the persistence field, the words LocalStack's /health uses.
const (
	persistenceOn  = "initialized"
	persistenceOff = "disabled"
)

// statusOutput is `status --json`.
//
//	data_dir             DATA_DIR; "" when not set
//	data_dir_exists      whether it exists
//	store                the local store
//	store_exists         whether the store has been created
//	remote               the remote URL; "" when none is set
//	persistence          "initialized" when DATA_DIR is set and the store usable, else "disabled"
//	features             {"persistence": ...}, the same, as LocalStack's /health reports it
//	snapshot             the snapshot DATA_DIR was last saved as or restored from; "" when none
//	state                that snapshot's state
//	changed              whether DATA_DIR differs from it (judged by file metadata)
//	added, removed, modified  paths that differ
//	interrupted_restore  the snapshot an unfinished restore was writing; "" when none
//	partial              present only after a partial restore (restore --only or --services),
//	                     which leaves DATA_DIR no one snapshot (snapshot and state are then ""):
//	                     {base, base_state, restores: [{snapshot, state, only}]}, base being the
//	                     snapshot DATA_DIR wholly was before ("" when unknown) and restores the
//	                     partial restores since, oldest first, with the globs each restored.
//	                     changed and the counts then compare DATA_DIR with base and the restored
//	                     paths of each (with the restored paths alone when base is "")
type statusOutput struct {
	DataDir            string            `json:"data_dir"`
	DataDirExists      bool              `json:"data_dir_exists"`
	Store              string            `json:"store"`
	StoreExists        bool              `json:"store_exists"`
	Remote             string            `json:"remote"`
	Persistence        string            `json:"persistence"`
	Features           map[string]string `json:"features"`
	Snapshot           string            `json:"snapshot"`
	State              string            `json:"state"`
	Changed            bool              `json:"changed"`
	Added              int               `json:"added"`
	Removed            int               `json:"removed"`
	Modified           int               `json:"modified"`
	InterruptedRestore string            `json:"interrupted_restore"`
	Partial            *partialOutput    `json:"partial,omitempty"`
	// interruptedPull: the interrupted restore's snapshot is not in the
	// store, so it was a pull --restore cut off before the pull ended.
	interruptedPull bool
}

// partialOutput is how DATA_DIR came to be after partial restores: the
// `partial` object of `status --json`.
type partialOutput struct {
	Base      string                 `json:"base"`
	BaseState string                 `json:"base_state"`
	Restores  []partialRestoreOutput `json:"restores"`
}

// partialRestoreOutput is one partial restore: the snapshot, its state,
// and the globs of the paths restored.
type partialRestoreOutput struct {
	Snapshot string   `json:"snapshot"`
	State    string   `json:"state"`
	Only     []string `json:"only"`
}

func (s *session) statusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show DATA_DIR, the store, persistence, and what changed since the last save or restore",
		ArgsUsage: " ",
		Description: "status --json includes \"features\": {\"persistence\": \"initialized\"} (or \"disabled\" when\n" +
			"DATA_DIR is not set), as LocalStack's /health does.\n\nExample:\n\n   statepack status --json | jq -r .features.persistence",
		Action: s.action(0, 0, s.runStatus),
	}
}

func (s *session) runStatus(c *cli.Context) error {
	out := statusOutput{DataDir: s.set.DataDir, Store: s.set.Store, Remote: remote.RedactURL(s.set.Remote), Persistence: persistenceOff}
	var repo *archive.Repository
	if _, err := os.Stat(filepath.Join(s.set.Store, "config")); err == nil {
		out.StoreExists = true
		be, err := dirbackend.New(s.set.Store, false)
		if err == nil {
			repo, err = archive.Open(c.Context, be)
		}
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
	}
	if s.set.DataDir != "" {
		if _, err := s.dataDir(); err != nil {
			return err
		}
		out.Persistence = persistenceOn
		st, err := os.Stat(s.set.DataDir)
		out.DataDirExists = err == nil && st.IsDir()
	}
	if repo != nil && out.DataDirExists {
		if err := s.statusChanges(c, repo, &out); err != nil {
			return err
		}
	}
	out.Features = map[string]string{"persistence": out.Persistence}
	return s.emit(out, out.print)
}

// statusChanges fills in where DATA_DIR came from and what changed since.
func (s *session) statusChanges(c *cli.Context, repo *archive.Repository, out *statusOutput) error {
	origin, changes, err := restorer.DataDirOrigin(c.Context, repo, s.set.DataDir, s.set.cacheDir())
	if err != nil && !errors.Is(err, backend.ErrNotFound) {
		return err
	}
	if origin != nil {
		if origin.Whole() {
			out.Snapshot, out.State = origin.Snapshot.String(), origin.State
		} else {
			out.Partial = &partialOutput{Base: idString(origin.Base), BaseState: origin.BaseState}
			for _, p := range origin.Partial {
				out.Partial.Restores = append(out.Partial.Restores, partialRestoreOutput{Snapshot: p.Snapshot.String(), State: p.State, Only: nonNil(p.Include)})
			}
		}
		out.Added, out.Removed, out.Modified = restorer.CountChanges(changes)
		out.Changed = len(changes) > 0 || err != nil
	}
	if id, ok := restorer.InterruptedRestore(s.set.cacheDir(), s.set.DataDir); ok {
		out.InterruptedRestore = id.String()
		out.interruptedPull = !repo.HasSnapshot(c.Context, id)
	}
	return nil
}

// changesRow says what changed since DATA_DIR was last saved or restored
// (where: which part of it was compared, "" for all).
func (o statusOutput) changesRow(t *output.Table, where string) {
	if o.Changed {
		t.Row("changes", fmt.Sprintf("%d added, %d removed, %d modified%s since then", o.Added, o.Removed, o.Modified, where))
	} else {
		t.Row("changes", "none"+where+" since then")
	}
}

func (o statusOutput) print(w io.Writer) {
	t := output.NewTable(w)
	switch {
	case o.DataDir == "":
		t.Row("data dir", "not set (set DATA_DIR or pass --data-dir)")
	case !o.DataDirExists:
		t.Row("data dir", o.DataDir+" (does not exist yet)")
	default:
		t.Row("data dir", o.DataDir)
	}
	store := o.Store
	if !o.StoreExists {
		store += " (created on first use)"
	}
	t.Row("store", store)
	t.Row("remote", orDash(o.Remote))
	t.Row("persistence", o.Persistence)
	switch {
	case o.Snapshot != "":
		t.Row("last", fmt.Sprintf("%s %s (saved or restored)", o.State, o.Snapshot[:8]))
		o.changesRow(t, "")
	case o.Partial != nil:
		if p := o.Partial; p.Base != "" {
			t.Row("last", fmt.Sprintf("%s %s (saved or restored)", p.BaseState, p.Base[:8]))
		} else {
			t.Row("last", "never saved or restored as a whole")
		}
		for _, r := range o.Partial.Restores {
			t.Row("then", fmt.Sprintf("%s restored from %s %s", strings.Join(r.Only, ", "), r.State, r.Snapshot[:8]))
		}
		if o.Partial.Base == "" {
			o.changesRow(t, " in the restored paths")
		} else {
			o.changesRow(t, "")
		}
	case o.DataDirExists:
		t.Row("last", "never saved or restored")
	}
	if o.InterruptedRestore != "" {
		id := o.InterruptedRestore[:8]
		if o.interruptedPull {
			t.Row("interrupted", fmt.Sprintf("a pull --restore of %s did not finish; running the same pull --restore again completes it", id))
		} else {
			t.Row("interrupted", fmt.Sprintf("a restore of %s did not finish; `statepack restore %s` completes it", id, id))
		}
	}
	_ = t.Flush()
}
