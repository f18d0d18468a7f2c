// Package transfer shares states between repositories: push sends the
// head of a state from the local store to a remote, pull fetches one
// from a remote, optionally restoring it into DATA_DIR as it arrives.
// Both move blocks with the one copy engine, archive.Copy, and differ only
// in which side they lock, which ref they move and what a fast-forward
// means.
//
// It may import archive and its packages below it (format, restorer) and
// remote/backend; it must not import remote: which backend a repository
// lives on (a directory, S3) is decided before it is handed in.
package transfer

import (
	"errors"
	"fmt"
	"time"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/restorer"
	"github.com/statepack/statepack/internal/progress"
	"github.com/statepack/statepack/remote/backend"
)

// PushOptions describe one push.
type PushOptions struct {
	State    string
	Force    bool // move the remote ref even when it is not a fast-forward
	Jobs     int  // packs uploaded at once; 0 means DefaultJobs
	Progress progress.Sink
	LockWait time.Duration
}

// PullOptions describe one pull.
type PullOptions struct {
	State     string
	Fallbacks []string // tried in order when State is absent on the remote
	Force     bool
	Jobs      int
	Progress  progress.Sink
	LockWait  time.Duration
	// Restore, when set, asks Pull to restore what it receives into
	// Restore.DataDir as it arrives (restorer.ScatterRestore), when that
	// applies: a missing or empty DATA_DIR, the CI cache case. Each block
	// is then decoded and verified once, not again by a restore that
	// reads it back. Result.Restore says whether it happened; when not,
	// the caller restores as usual (PullAndRestore does). A DATA_DIR that
	// cannot be written (full, unwritable) does not fail the pull: the
	// restore is undone and left to the caller, whose restore reports the
	// problem. Restore.Snapshot is ignored.
	Restore *restorer.Options
}

// DefaultJobs is how many packs move at once.
const DefaultJobs = archive.DefaultCopyJobs

// Result is the summary of a push or pull.
type Result struct {
	State         string    // the state moved (for pull: after fallbacks)
	Snapshot      format.ID // the head that was sent or received
	UpToDate      bool      // the other side already had it
	Blocks        int64     // blocks sent or received
	Bytes         int64     // stored bytes sent or received
	SkippedBlocks int64     // blocks the other side already had
	SkippedBytes  int64     // their raw bytes
	Packs         int       // packs written on the receiving side
	Requests      int64     // requests made to the remote
	// LookupPublished: push uploaded its lookup cache as the remote's
	// lookup table (archive.Repository.PublishLookupTable).
	LookupPublished bool
	Duration        time.Duration // wall time
	// Restore is set when the pull restored the snapshot into DATA_DIR;
	// nil when it did not.
	Restore *restorer.Result
	// RestoreDuration is how long that restore took: the whole pull when
	// it restored as the blocks arrived.
	RestoreDuration time.Duration
	// Replaced is the receiving side's previous head when Force moved
	// its ref to a snapshot that does not contain it (backwards or
	// sideways); zero otherwise. Nothing refers to it any more, so the
	// next prune there deletes it.
	Replaced format.ID
}

func (r *Result) add(c *archive.CopyResult) {
	r.Blocks, r.Bytes, r.Packs = c.Blocks, c.Bytes, c.Packs
	r.SkippedBlocks, r.SkippedBytes = c.SkippedBlocks, c.SkippedBytes
}

// ErrNotFastForward: the destination's head is not an ancestor of the
// source's head, so moving it would drop versions.
var ErrNotFastForward = errors.New("not a fast-forward")

// requests reads the request count of the remote's backend, when it
// counts them (remote.Counter).
func requests(r *archive.Repository) int64 {
	if c, ok := backend.As[backend.RequestCounter](r.Backend()); ok {
		return c.Requests()
	}
	return 0
}

// replaceDamagedRef reports whether a forced push or pull may replace the
// receiving side's ref although it holds no snapshot id (err from ReadRef
// matches ErrCorrupt): it came with its version tag, so the replacement is
// still a compare-and-swap. Without the tag (an object that is not a
// file) nothing is replaced.
func replaceDamagedRef(err error, tag string, force bool) bool {
	return force && tag != "" && errors.Is(err, format.ErrCorrupt)
}

// withForceHint adds to the error of a ref that holds no snapshot id
// (which came with its version tag) that --force replaces it.
func withForceHint(err error, tag string) error {
	if tag != "" && errors.Is(err, format.ErrCorrupt) {
		return fmt.Errorf("%w (--force replaces it)", err)
	}
	return err
}
