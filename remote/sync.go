package remote

import (
	"errors"
	"fmt"
	"time"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/internal/progress"
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
}

// DefaultJobs is how many packs move at once: enough to fill a link to S3
// from a CI runner, few enough to keep memory at a few packs.
const DefaultJobs = 4

// SyncResult is the summary of a push or pull.
type SyncResult struct {
	State         string        // the state moved (for pull: after fallbacks)
	Snapshot      archive.ID    // the head that was sent or received
	UpToDate      bool          // the other side already had it
	Blocks        int64         // blocks sent or received
	Bytes         int64         // stored bytes sent or received
	SkippedBlocks int64         // blocks the other side already had
	SkippedBytes  int64         // their raw bytes
	Packs         int           // packs written on the receiving side
	Requests      int64         // requests made to the remote
	Duration      time.Duration // wall time
}

// ErrNotFastForward: the destination's head is not an ancestor of the
// source's head, so moving it would drop versions.
var ErrNotFastForward = errors.New("not a fast-forward")

func jobs(n int) int {
	if n <= 0 {
		return DefaultJobs
	}
	return min(n, 64)
}

// requests reads the request count of a counting backend, if there is one.
func requests(r *archive.Repository) int64 {
	if c, ok := r.Backend().(interface{ Requests() int64 }); ok {
		return c.Requests()
	}
	return 0
}

// blockSet collects the distinct blocks of a manifest.
func blockSet(m *archive.Manifest) ([]archive.BlockRef, int64) {
	seen := map[archive.ID]struct{}{}
	var out []archive.BlockRef
	var total int64
	for _, e := range m.Entries {
		for _, b := range e.Blocks {
			if _, dup := seen[b.ID]; dup {
				continue
			}
			seen[b.ID] = struct{}{}
			out = append(out, b)
			total += int64(b.Size)
		}
	}
	return out, total
}

func notOnRemote(state string, r *archive.Repository) error {
	return &archive.NotFoundError{What: fmt.Sprintf("state '%s'", state), Where: r.Location()}
}
