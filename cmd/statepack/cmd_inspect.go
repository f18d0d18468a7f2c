package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/internal/output"
)

// listOutput is `list --json`.
//
//	location  the store or remote listed
//	states    one object per state, by name: see stateOutput
//	damaged   states whose ref or history could not be read, by name:
//	          [{state, error}]; one whose head could be read is in
//	          states too (versions: as far as its history reaches); the
//	          command then exits 1 (code corrupt) after printing them
type listOutput struct {
	Location string          `json:"location"`
	States   []stateOutput   `json:"states"`
	Damaged  []damagedOutput `json:"damaged"`
}

// damagedOutput is a state `list` could not read, and why.
type damagedOutput struct {
	State string `json:"state"`
	Error string `json:"error"`
}

// stateOutput is one state in `list --json`.
//
//	state     its name
//	snapshot  the id of its newest version (its head)
//	versions  how many versions are kept (on a remote, as far as history reaches)
//	files     files in the head
//	bytes     content size of the head
//	created   when the head was saved (RFC 3339)
//	host      where the head was saved
//	message   the head's message
type stateOutput struct {
	State    string    `json:"state"`
	Snapshot string    `json:"snapshot"`
	Versions int       `json:"versions"`
	Files    int       `json:"files"`
	Bytes    int64     `json:"bytes"`
	Created  time.Time `json:"created"`
	Host     string    `json:"host"`
	Message  string    `json:"message"`
}

func (s *session) listCommand() *cli.Command {
	return &cli.Command{
		Name:        "list",
		Usage:       "list the states: newest version, versions kept, size, age, host",
		ArgsUsage:   " ",
		Description: "Example:\n\n   statepack list\n   statepack list --remote --json",
		Flags:       []cli.Flag{onRemoteFlag("list")},
		Action:      s.action(0, 0, s.runList),
	}
}

func (s *session) runList(c *cli.Context) error {
	repo, err := s.openRepoReading(c.Context, c.Bool("remote"))
	if err != nil {
		return err
	}
	names, err := repo.States(c.Context)
	if err != nil {
		return err
	}
	sort.Strings(names)
	out := listOutput{Location: repo.Location(), States: []stateOutput{}, Damaged: []damagedOutput{}}
	for _, name := range names {
		st, err := describeState(c.Context, repo, name)
		switch {
		case errors.Is(err, errStateGone):
			continue // forgotten since it was listed
		case err != nil && (c.Context.Err() != nil || isNetError(err)):
			return err // the store or remote, not this state, is in trouble
		case err != nil:
			out.Damaged = append(out.Damaged, damagedOutput{State: name, Error: scrubSecrets(err.Error())})
		}
		if st.State != "" { // its head, at least, could be read
			out.States = append(out.States, st)
		}
	}
	if err := s.emit(out, out.print); err != nil {
		return err
	}
	return out.damagedError()
}

// errStateGone: a state's ref vanished between listing and reading it.
var errStateGone = errors.New("state is gone")

// damagedError is the error `list` exits with when some states could not
// be read, after the others and a "damaged:" line per state were printed.
func (o listOutput) damagedError() error {
	if len(o.Damaged) == 0 {
		return nil
	}
	names := make([]string, len(o.Damaged))
	for i, d := range o.Damaged {
		names[i] = d.State
	}
	return fmt.Errorf("%s of %s could not be read (%s); the others are listed (%w)",
		output.Plural(int64(len(o.Damaged)), "state", "states"), o.Location, strings.Join(names, ", "), format.ErrCorrupt)
}

func describeState(ctx context.Context, repo *archive.Repository, name string) (stateOutput, error) {
	head, _, err := repo.ReadRef(ctx, name)
	var nf *archive.NotFoundError
	if errors.As(err, &nf) {
		return stateOutput{}, errStateGone
	}
	if err != nil {
		return stateOutput{}, err
	}
	hist, err := repo.History(ctx, head, 0)
	if err != nil {
		err = fmt.Errorf("state '%s': %w", name, err)
	}
	if len(hist) == 0 {
		return stateOutput{}, err
	}
	// With an older version damaged, the state is described as far as
	// its history could be read, and the error returned with it.
	m := hist[0].Manifest
	c := countEntries(m)
	return stateOutput{State: name, Snapshot: head.String(), Versions: len(hist), Files: c.files, Bytes: c.bytes,
		Created: m.Created, Host: m.Host, Message: m.Message}, err
}

func (o listOutput) print(w io.Writer) {
	defer func() {
		for _, d := range o.Damaged {
			fmt.Fprintf(w, "damaged: state %s could not be read: %s\n", d.State, output.Safe(d.Error))
		}
	}()
	if len(o.States) == 0 {
		if len(o.Damaged) == 0 {
			fmt.Fprintf(w, "no states in %s yet; `statepack save STATE` saves one\n", o.Location)
		}
		return
	}
	t := output.NewTable(w, "STATE", "HEAD", "VERSIONS", "FILES", "SIZE", "SAVED", "HOST")
	now := time.Now()
	for _, st := range o.States {
		t.Row(st.State, st.Snapshot[:8], fmt.Sprint(st.Versions), fmt.Sprint(st.Files), output.Bytes(st.Bytes), output.Age(st.Created, now), st.Host)
	}
	_ = t.Flush()
}

// entryCounts summarises a manifest.
type entryCounts struct {
	files, dirs, symlinks int
	bytes                 int64
}

func countEntries(m *format.Manifest) entryCounts {
	var c entryCounts
	for _, e := range m.Entries {
		switch e.Type {
		case format.TypeFile:
			c.files++
			c.bytes += e.Size
		case format.TypeDir:
			c.dirs++
		case format.TypeSymlink:
			c.symlinks++
		}
	}
	return c
}

// snapshotOutput describes one snapshot in `log --json` and `show --json`.
//
//	snapshot  its id (64 hex digits)
//	name      STATE~N: how far back from the head it is ("" in show)
//	parent    the previous version's id, "" for the first (or when history is shallow)
//	state     the state it is a version of
//	created   when it was saved (RFC 3339)
//	message, labels  as given to save
//	host, user, tool  where, by whom and by which statepack it was saved
//	files, dirs, symlinks  entries it holds
//	bytes     content size of its files
type snapshotOutput struct {
	Snapshot string            `json:"snapshot"`
	Name     string            `json:"name,omitempty"`
	Parent   string            `json:"parent"`
	State    string            `json:"state"`
	Created  time.Time         `json:"created"`
	Message  string            `json:"message"`
	Labels   map[string]string `json:"labels"`
	Host     string            `json:"host"`
	User     string            `json:"user"`
	Tool     string            `json:"tool"`
	Files    int               `json:"files"`
	Dirs     int               `json:"dirs"`
	Symlinks int               `json:"symlinks"`
	Bytes    int64             `json:"bytes"`
}

func versionOf(id format.ID, m *format.Manifest) snapshotOutput {
	c := countEntries(m)
	labels := m.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	return snapshotOutput{Snapshot: id.String(), Parent: idString(m.Parent), State: m.State, Created: m.Created, Message: m.Message,
		Labels: labels, Host: m.Host, User: m.User, Tool: m.Tool, Files: c.files, Dirs: c.dirs, Symlinks: c.symlinks, Bytes: c.bytes}
}

// logOutput is `log --json`.
//
//	state     the state
//	location  the store or remote read
//	versions  newest first: see snapshotOutput
type logOutput struct {
	State    string           `json:"state"`
	Location string           `json:"location"`
	Versions []snapshotOutput `json:"versions"`
}

func (s *session) logCommand() *cli.Command {
	return &cli.Command{
		Name:         "log",
		Usage:        "list the versions of STATE, newest first",
		ArgsUsage:    "STATE",
		BashComplete: completeStates,
		Description:  "Example:\n\n   statepack log orders-e2e\n   statepack log orders-e2e --remote",
		Flags:        []cli.Flag{onRemoteFlag("read")},
		Action:       s.action(1, 1, s.runLog),
	}
}

func (s *session) runLog(c *cli.Context) error {
	state, err := stateName(c.Args().First())
	if err != nil {
		return err
	}
	repo, err := s.openRepoReading(c.Context, c.Bool("remote"))
	if err != nil {
		return err
	}
	head, _, err := repo.ReadRef(c.Context, state)
	if err != nil {
		return err
	}
	hist, err := repo.History(c.Context, head, 0)
	if err != nil && (len(hist) == 0 || c.Context.Err() != nil) {
		return err
	}
	// A damaged older version does not hide the newer ones: they are
	// listed, then the error names the one that could not be read.
	damaged := err
	out := logOutput{State: state, Location: repo.Location(), Versions: []snapshotOutput{}}
	for i, h := range hist {
		v := versionOf(h.ID, h.Manifest)
		v.Name = state
		if i > 0 {
			v.Name = fmt.Sprintf("%s~%d", state, i)
		}
		out.Versions = append(out.Versions, v)
	}
	if err := s.emit(out, out.print); err != nil {
		return err
	}
	if damaged != nil {
		return fmt.Errorf("%s~%d and older could not be read (the newer versions are listed): %w", state, len(hist), damaged)
	}
	return nil
}

func (o logOutput) print(w io.Writer) {
	t := output.NewTable(w, "ID", "NAME", "SAVED", "FILES", "SIZE", "MESSAGE", "LABELS")
	for _, v := range o.Versions {
		t.Row(v.Snapshot[:8], v.Name, output.Timestamp(v.Created), fmt.Sprint(v.Files), output.Bytes(v.Bytes), v.Message, labelText(v.Labels))
	}
	_ = t.Flush()
}

func labelText(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + labels[k]
	}
	return strings.Join(keys, ",")
}

// showOutput is `show --json`: the fields of snapshotOutput, plus
//
//	entries  with --files only: every path of the snapshot, see entryOutput
type showOutput struct {
	snapshotOutput
	Entries []entryOutput `json:"entries,omitempty"`
}

// entryOutput is one path of a snapshot in `show --files --json`.
//
//	path    slash path relative to DATA_DIR
//	type    file, dir or symlink
//	mode    permission bits as a number (0644 is 420)
//	uid, gid  owner
//	mtime   modification time (RFC 3339 with nanoseconds)
//	size    file size in bytes
//	target  symlink target
//	blocks  number of blocks of a file
type entryOutput struct {
	Path   string    `json:"path"`
	Type   string    `json:"type"`
	Mode   uint32    `json:"mode"`
	UID    uint32    `json:"uid"`
	GID    uint32    `json:"gid"`
	MTime  time.Time `json:"mtime"`
	Size   int64     `json:"size"`
	Target string    `json:"target,omitempty"`
	Blocks int       `json:"blocks"`
}

func (s *session) showCommand() *cli.Command {
	return &cli.Command{
		Name:         "show",
		Usage:        "show one snapshot: its metadata and, with --files, its paths",
		ArgsUsage:    "SNAPSHOT",
		BashComplete: completeStates,
		Description:  "SNAPSHOT is STATE, STATE~N or an id prefix.\n\nExample:\n\n   statepack show orders-e2e~1 --files",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "files", Usage: "list every path of the snapshot"},
			onRemoteFlag("read"),
		},
		Action: s.action(1, 1, s.runShow),
	}
}

func (s *session) runShow(c *cli.Context) error {
	repo, err := s.openRepoReading(c.Context, c.Bool("remote"))
	if err != nil {
		return err
	}
	id, err := resolve(c.Context, repo, c.Args().First())
	if err != nil {
		return err
	}
	m, _, err := repo.LoadManifestLists(c.Context, id) // counted, not expanded
	if err != nil {
		return err
	}
	out := showOutput{snapshotOutput: versionOf(id, m)}
	if c.Bool("files") {
		out.Entries = make([]entryOutput, 0, len(m.Entries))
		for _, e := range m.Entries {
			out.Entries = append(out.Entries, entryOutput{Path: e.Path, Type: e.Type.String(), Mode: e.Mode, UID: e.UID, GID: e.GID,
				MTime: time.Unix(0, e.MTime).UTC(), Size: e.Size, Target: e.Target, Blocks: e.BlockCount()})
		}
	}
	return s.emit(out, out.print)
}

func (o showOutput) print(w io.Writer) {
	t := output.NewTable(w)
	t.Row("snapshot", o.Snapshot)
	t.Row("state", o.State)
	t.Row("parent", orDash(o.Parent))
	t.Row("saved", fmt.Sprintf("%s (%s)", output.Timestamp(o.Created), output.Age(o.Created, time.Now())))
	t.Row("by", fmt.Sprintf("%s on %s with %s", orDash(o.User), orDash(o.Host), orDash(o.Tool)))
	t.Row("message", orDash(o.Message))
	t.Row("labels", orDash(labelText(o.Labels)))
	t.Row("content", fmt.Sprintf("%s, %s, %s, %s", output.Plural(int64(o.Files), "file", "files"), output.Plural(int64(o.Dirs), "directory", "directories"),
		output.Plural(int64(o.Symlinks), "symlink", "symlinks"), output.Bytes(o.Bytes)))
	_ = t.Flush()
	if o.Entries == nil {
		return
	}
	fmt.Fprintln(w)
	t = output.NewTable(w, "MODE", "SIZE", "MODIFIED", "PATH")
	for _, e := range o.Entries {
		p := e.Path
		if e.Type == "symlink" {
			p += " -> " + e.Target
		}
		t.Row(modeString(e), output.Bytes(e.Size), output.Timestamp(e.MTime), p)
	}
	_ = t.Flush()
}

func modeString(e entryOutput) string {
	m := fs.FileMode(e.Mode & 0o777)
	switch e.Type {
	case "dir":
		m |= fs.ModeDir
	case "symlink":
		m |= fs.ModeSymlink
	}
	if e.Mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if e.Mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if e.Mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
