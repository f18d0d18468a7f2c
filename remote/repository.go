package remote

import (
	"context"
	"errors"
	"fmt"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/chunker"
	"github.com/statepack/statepack/remote/backend"
)

// EmptyRemoteError: the remote holds no repository yet (nothing was pushed
// there). Pull treats it as a cache miss; it matches format.ErrNotRepository.
type EmptyRemoteError struct {
	Location string
	// Missing: the directory does not exist at all. A push refuses it as
	// well (a mistyped path must not become a new remote); only
	// `statepack init --remote` creates the directory.
	Missing bool
}

func (e *EmptyRemoteError) Error() string {
	if e.Missing {
		return fmt.Sprintf("remote directory %s does not exist: check the path; `statepack init --remote` creates a remote there", e.Location)
	}
	return fmt.Sprintf("remote %s is empty: no repository there yet; push a state or run `statepack init --remote`", e.Location)
}

// Unwrap makes errors.Is(err, format.ErrNotRepository) hold.
func (e *EmptyRemoteError) Unwrap() error { return format.ErrNotRepository }

// OpenOption adjusts OpenRemote.
type OpenOption func(*openOptions)

type openOptions struct {
	readOnly bool
	cacheDir string
	initFrom *archive.Repository
	initCfg  *format.Config
}

// InitWith sets the config a repository created by OpenRemote gets
// (statepack init --remote with chunker parameters).
func InitWith(cfg format.Config) OpenOption {
	return func(o *openOptions) { o.initCfg = &cfg }
}

// ForReading opens the remote through a read-only view (ReadOnly): a
// pull's source, verify without --repair, and the inspection commands
// never write to the remote, and a bug that tried would be refused.
func ForReading() OpenOption {
	return func(o *openOptions) { o.readOnly = true }
}

// WithIndexCache keeps a lookup cache of the remote's index under dir
// (the local store's cache), so that finding blocks on a remote with
// millions of them reads a few kilobytes instead of every index object,
// and each index object is fetched once (archive.Repository.UseLookupCache).
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
	mkdir := create
	be, err := Open(ctx, rawURL, S3ConfigFromEnv(), mkdir)
	if errors.Is(err, backend.ErrNotFound) && u.Kind == KindDir {
		return nil, &EmptyRemoteError{Location: u.Path, Missing: true}
	}
	if err != nil {
		return nil, err
	}
	be = NewCounter(be)
	if o.readOnly {
		be = ReadOnly(be)
	}
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
	if !create && o.initFrom == nil {
		if archive.IsEmpty(ctx, be) {
			return nil, &EmptyRemoteError{Location: be.Location()}
		}
		// Another pusher may have created the repository between the
		// read of config and the listing.
		if made, oerr := archive.Open(ctx, be); oerr == nil {
			return made, nil
		}
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
	r, _, err = archive.OpenOrCreate(ctx, be, cfg)
	return r, err
}
