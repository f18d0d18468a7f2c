package remote

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/restorer"
	"github.com/statepack/statepack/chunker"
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
	// Restore.DataDir as it arrives (archive.ScatterRestore), when that
	// applies: a missing or empty DATA_DIR, the CI cache case. Each block
	// is then decoded and verified once, not again by a restore that
	// reads it back. SyncResult.Restore says whether it happened; when
	// not, the caller restores as usual. A DATA_DIR that cannot be
	// written (full, unwritable) does not fail the pull: the restore is
	// undone and left to the caller, whose restore reports the problem.
	// Restore.Snapshot is ignored.
	Restore *restorer.Options
}

// DefaultJobs is how many packs move at once: enough to fill a link to S3
// from a CI runner, few enough to keep memory at a few packs.
const DefaultJobs = 4

// SyncResult is the summary of a push or pull.
type SyncResult struct {
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
	// Restore is set when Pull restored the snapshot as it arrived
	// (PullOptions.Restore); nil when it did not, and the caller should.
	Restore *restorer.Result
	// Replaced is the receiving side's previous head when Force moved
	// its ref to a snapshot that does not contain it (backwards or
	// sideways); zero otherwise. Nothing refers to it any more, so the
	// next prune there deletes it.
	Replaced format.ID
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

// EmptyRemoteError: the remote holds no repository yet (nothing was pushed
// there). Pull treats it as a cache miss; it matches archive.ErrNotRepository.
type EmptyRemoteError struct {
	Location string
	Missing  bool // the directory does not exist at all
}

func (e *EmptyRemoteError) Error() string {
	what := "is empty"
	if e.Missing {
		what = "does not exist"
	}
	return fmt.Sprintf("remote %s %s: no repository there yet; push a state or run `statepack init --remote`", e.Location, what)
}

// Unwrap makes errors.Is(err, archive.ErrNotRepository) hold.
func (e *EmptyRemoteError) Unwrap() error { return format.ErrNotRepository }

// OpenOption adjusts OpenRemote.
type OpenOption func(*openOptions)

type openOptions struct {
	cacheDir string
	initFrom *archive.Repository
	initCfg  *format.Config
}

// InitWith sets the config a repository created by OpenRemote gets
// (statepack init --remote with chunker parameters).
func InitWith(cfg format.Config) OpenOption {
	return func(o *openOptions) { o.initCfg = &cfg }
}

// WithIndexCache keeps a lookup cache of the remote's index under dir
// (the local store's cache), so that finding blocks on a remote with
// millions of them reads a few kilobytes instead of every index object,
// and each index object is fetched once (archive.UseLookupCache).
func WithIndexCache(dir string) OpenOption {
	return func(o *openOptions) { o.cacheDir = dir }
}

// InitIfEmpty creates the repository on a remote that holds nothing yet
// (an empty bucket or directory), with the chunker parameters of local so
// that both sides cut the same blocks. Push uses it; a missing bucket is
// still an error.
func InitIfEmpty(local *archive.Repository) OpenOption {
	return func(o *openOptions) { o.initFrom = local }
}

// OpenRemote opens the repository at a remote URL (STATEPACK_REMOTE), with
// S3 settings from the environment, retries, and request counting for
// the push and pull summaries. With create, a missing bucket or directory
// is created and a repository initialised there (statepack init --remote).
func OpenRemote(ctx context.Context, rawURL string, create bool, opts ...OpenOption) (r *archive.Repository, err error) {
	var o openOptions
	for _, fn := range opts {
		fn(&o)
	}
	u, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	mkdir := create || (o.initFrom != nil && u.Kind == KindDir)
	be, err := Open(ctx, rawURL, S3ConfigFromEnv(), mkdir)
	if errors.Is(err, backend.ErrNotFound) && u.Kind == KindDir {
		return nil, &EmptyRemoteError{Location: u.Path, Missing: true}
	}
	if err != nil {
		return nil, err
	}
	be = NewCounter(be)
	if o.cacheDir != "" {
		dir := cacheDirFor(o.cacheDir, be.Location())
		removeLegacyIndexCopies(dir)
		defer func() {
			if r != nil {
				r.UseLookupCache(dir)
			}
		}()
	}
	r, err = archive.Open(ctx, be)
	if !errors.Is(err, format.ErrNotRepository) {
		return r, err
	}
	empty := archive.IsEmpty(ctx, be)
	if !empty {
		// Another pusher may have created the repository between the
		// read of config and the listing (as archive.OpenOrInit).
		if made, oerr := archive.Open(ctx, be); oerr == nil {
			return made, nil
		}
	}
	if !create && o.initFrom == nil {
		if empty {
			return nil, &EmptyRemoteError{Location: be.Location()}
		}
		return nil, err
	}
	if !empty {
		return nil, err
	}
	params, packSize := chunker.DefaultParams(), 0
	if o.initFrom != nil {
		params, packSize = o.initFrom.Config().Chunker.Params(), o.initFrom.Config().PackTarget()
	}
	cfg, err := format.NewConfig(params, packSize)
	if err != nil {
		return nil, err
	}
	if o.initCfg != nil {
		cfg = *o.initCfg
	}
	p := DefaultRetryPolicy()
	for attempt := 1; ; attempt++ {
		r, err = archive.Init(ctx, be, cfg)
		if err != nil && errors.Is(err, backend.ErrConflict) {
			return archive.Open(ctx, be) // initialised concurrently by another pusher
		}
		if err == nil || !IsTransient(err) || attempt >= p.Attempts {
			return r, err
		}
		// The config write failed without a verdict: it may have gone
		// through. The config itself tells; if absent, write it again.
		if r, oerr := archive.Open(ctx, be); oerr == nil {
			return r, nil
		}
		if sleep(ctx, p.delay(attempt)) != nil {
			return nil, err
		}
	}
}

// requests reads the request count of the counting backend inside r.
func requests(r *archive.Repository) int64 {
	b := r.Backend()
	for b != nil {
		if c, ok := b.(*Counter); ok {
			return c.Stats().Requests
		}
		u, ok := b.(interface{ Unwrap() backend.Backend })
		if !ok {
			return 0
		}
		b = u.Unwrap()
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
