package archive

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/internal/suggest"
	"github.com/statepack/statepack/remote/backend"
)

// ValidStateName accepts names that are safe as object names and never
// confused with the STATE~N and id-prefix syntax: letters, digits, '.',
// '_' and '-', not starting with '.' or '-'.
func ValidStateName(s string) error {
	if s == "" || len(s) > format.MaxStateName {
		return fmt.Errorf("invalid state name %q: want 1 to %d characters", s, format.MaxStateName)
	}
	if s[0] == '.' || s[0] == '-' {
		return fmt.Errorf("invalid state name %q: must not start with '.' or '-'", s)
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("invalid state name %q: use letters, digits, '.', '_' and '-'", s)
		}
	}
	return nil
}

// NotFoundError says which state or snapshot is missing, and where.
type NotFoundError struct {
	What  string // "state 'main'", "snapshot 1a2b3c4d"
	Where string
	// Suggestion is a state of the repository whose name is close to the
	// one asked for ("did you mean"), when Resolve found one.
	Suggestion string
	// History is the state whose history a STATE~N reached past.
	History string
}

func (e *NotFoundError) Error() string { return e.What + " not found in " + e.Where }

// Unwrap makes errors.Is(err, ErrNotFound) hold.
func (e *NotFoundError) Unwrap() error { return backend.ErrNotFound }

// ErrAmbiguous: an id prefix matches more than one snapshot.
var ErrAmbiguous = errors.New("ambiguous id prefix")

// ReadRef returns the head snapshot of state and the ref's version tag for
// a later compare-and-swap. A ref that holds no snapshot id is an error
// matching ErrCorrupt that still comes with its tag, so that a forced push
// or pull can replace it by compare-and-swap.
func (r *Repository) ReadRef(ctx context.Context, state string) (format.ID, string, error) {
	if err := ValidStateName(state); err != nil {
		return format.ID{}, "", err
	}
	data, tag, err := r.be.GetVersioned(ctx, format.RefName(state))
	if errors.Is(err, backend.ErrNotFound) {
		return format.ID{}, "", &NotFoundError{What: fmt.Sprintf("state '%s'", state), Where: r.Location()}
	}
	if err != nil {
		return format.ID{}, "", fmt.Errorf("read state '%s' from %s: %w", state, r.Location(), err)
	}
	id, err := parseRef(data)
	if err != nil {
		return format.ID{}, tag, fmt.Errorf("ref of state '%s' on %s: %v: %w", state, r.Location(), err, format.ErrCorrupt)
	}
	return id, tag, nil
}

// parseRef reads a ref's content: a snapshot id and a newline. What is
// wrong with anything else is described without quoting it: an error
// never shows an object's bytes (invariant 9), which may be anything,
// a file of the reader's planted as a ref included.
func parseRef(data []byte) (format.ID, error) {
	s := strings.TrimSpace(string(data))
	if id, err := format.ParseID(s); err == nil {
		return id, nil
	}
	if len(s) != 64 {
		return format.ID{}, fmt.Errorf("it holds %d bytes, not a snapshot id (64 hex digits)", len(data))
	}
	return format.ID{}, fmt.Errorf("it holds %d bytes that are not a snapshot id (64 lowercase hex digits)", len(data))
}

// SetRef moves state to snap by compare-and-swap against tag (empty: the
// state must not exist yet). Losing the race yields an error matching
// ErrConflict; nothing is changed then.
func (r *Repository) SetRef(ctx context.Context, state string, snap format.ID, tag string) error {
	if err := ValidStateName(state); err != nil {
		return err
	}
	if _, err := r.be.PutIf(ctx, format.RefName(state), []byte(snap.String()+"\n"), tag); err != nil {
		if errors.Is(err, backend.ErrConflict) {
			return fmt.Errorf("state '%s' on %s was changed by someone else meanwhile: %w", state, r.Location(), backend.ErrConflict)
		}
		return fmt.Errorf("update state '%s' on %s: %w", state, r.Location(), err)
	}
	return nil
}

// DeleteRef removes a state's ref (its snapshots become garbage for prune).
func (r *Repository) DeleteRef(ctx context.Context, state string) error {
	if err := ValidStateName(state); err != nil {
		return err
	}
	return r.be.Delete(ctx, format.RefName(state))
}

// States lists the names of all states.
func (r *Repository) States(ctx context.Context) ([]string, error) {
	var out []string
	err := r.be.List(ctx, "refs/", func(oi backend.ObjectInfo) error {
		name := strings.TrimPrefix(oi.Name, "refs/")
		if ValidStateName(name) == nil {
			out = append(out, name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list states of %s: %w", r.Location(), err)
	}
	return out, nil
}

// ParseSpec splits "STATE~N" into the state and N; a bare name has N 0.
func ParseSpec(spec string) (state string, back int, err error) {
	state, n, found := strings.Cut(spec, "~")
	if !found {
		return spec, 0, nil
	}
	if n == "" {
		return state, 1, nil
	}
	back, err = strconv.Atoi(n)
	if err != nil || back < 0 || back > 1<<20 {
		return "", 0, fmt.Errorf("invalid snapshot name %q: want STATE, STATE~N or an id prefix", spec)
	}
	return state, back, nil
}

// Resolve turns a snapshot name into an id: STATE (its head), STATE~N (N
// versions back) or a unique prefix of at least 8 hex digits.
func (r *Repository) Resolve(ctx context.Context, spec string) (format.ID, error) {
	state, back, err := ParseSpec(spec)
	if err != nil {
		return format.ID{}, err
	}
	head, _, err := r.ReadRef(ctx, state)
	if err == nil {
		return r.walkBack(ctx, spec, state, head, back)
	}
	var nf *NotFoundError
	if errors.As(err, &nf) && !isHexPrefix(spec) {
		if states, lerr := r.States(ctx); lerr == nil {
			nf.Suggestion = suggest.Closest(state, states)
		}
	}
	if !errors.Is(err, backend.ErrNotFound) && ValidStateName(state) == nil {
		return format.ID{}, err
	}
	if back == 0 && isHexPrefix(spec) {
		return r.resolvePrefix(ctx, spec)
	}
	if ValidStateName(state) != nil && !isHexPrefix(spec) {
		return format.ID{}, fmt.Errorf("invalid snapshot name %q: want STATE, STATE~N or an id prefix of 8+ hex digits", spec)
	}
	return format.ID{}, err
}

func (r *Repository) walkBack(ctx context.Context, spec, state string, id format.ID, back int) (format.ID, error) {
	for i := 0; i < back; i++ {
		m, err := r.LoadManifestUnexpanded(ctx, id)
		if err != nil {
			return format.ID{}, err
		}
		if m.Parent.IsZero() || !r.HasSnapshot(ctx, m.Parent) {
			return format.ID{}, &NotFoundError{What: fmt.Sprintf("snapshot %s (the state keeps %s)", spec, versions(i+1)), Where: r.Location(), History: state}
		}
		id = m.Parent
	}
	return id, nil
}

// HasSnapshot reports whether the snapshot object exists.
func (r *Repository) HasSnapshot(ctx context.Context, id format.ID) bool {
	_, err := r.be.Stat(ctx, format.SnapshotName(id))
	return err == nil
}

func isHexPrefix(s string) bool {
	if len(s) < 8 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func (r *Repository) resolvePrefix(ctx context.Context, prefix string) (format.ID, error) {
	var found []format.ID
	err := r.be.List(ctx, "snapshots/"+prefix[:2], func(oi backend.ObjectInfo) error {
		name := strings.TrimPrefix(oi.Name, "snapshots/")
		if strings.HasPrefix(name, prefix) {
			if id, err := format.ParseID(name); err == nil {
				found = append(found, id)
			}
		}
		return nil
	})
	if err != nil {
		return format.ID{}, fmt.Errorf("list snapshots of %s: %w", r.Location(), err)
	}
	switch len(found) {
	case 0:
		return format.ID{}, &NotFoundError{What: fmt.Sprintf("state or snapshot '%s'", prefix), Where: r.Location()}
	case 1:
		return found[0], nil
	}
	return format.ID{}, fmt.Errorf("snapshot id prefix %s matches %d snapshots; give more digits: %w", prefix, len(found), ErrAmbiguous)
}

// Snapshots lists every snapshot id in the repository.
func (r *Repository) Snapshots(ctx context.Context) ([]format.ID, error) {
	var ids []format.ID
	err := r.be.List(ctx, "snapshots/", func(oi backend.ObjectInfo) error {
		if id, err := format.ParseID(strings.TrimPrefix(oi.Name, "snapshots/")); err == nil {
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list snapshots of %s: %w", r.Location(), err)
	}
	return ids, nil
}

// History returns the versions of a state from its head back, as far as
// the repository keeps them (history may be shallow on a remote). The
// manifests' block lists are not read: ExpandLists does that.
func (r *Repository) History(ctx context.Context, head format.ID, limit int) ([]HistoryEntry, error) {
	var out []HistoryEntry
	id := head
	for !id.IsZero() && (limit <= 0 || len(out) < limit) {
		m, err := r.LoadManifestUnexpanded(ctx, id)
		if errors.Is(err, backend.ErrNotFound) && len(out) > 0 {
			break // shallow history
		}
		if err != nil {
			return out, err
		}
		out = append(out, HistoryEntry{ID: id, Manifest: m})
		id = m.Parent
	}
	return out, nil
}

// HistoryEntry is one version of a state.
type HistoryEntry struct {
	ID       format.ID
	Manifest *format.Manifest
}

// IsAncestor reports whether anc is snap or one of its ancestors as far as
// this repository's history reaches.
func (r *Repository) IsAncestor(ctx context.Context, anc, snap format.ID) (bool, error) {
	for id := snap; !id.IsZero(); {
		if id == anc {
			return true, nil
		}
		m, err := r.LoadManifestUnexpanded(ctx, id)
		if errors.Is(err, backend.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		id = m.Parent
	}
	return false, nil
}

func versions(n int) string {
	if n == 1 {
		return "1 version"
	}
	return fmt.Sprintf("%d versions", n)
}
