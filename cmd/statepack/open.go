package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/datadir"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/saver"
	"github.com/statepack/statepack/remote"
	"github.com/statepack/statepack/remote/backend"
	"github.com/statepack/statepack/remote/dirbackend"
)

// openStore opens the local store, creating it on first use.
func (s *session) openStore(ctx context.Context) (*archive.Repository, error) {
	be, err := dirbackend.New(s.set.Store, true)
	if err != nil {
		return nil, withHint(fmt.Errorf("store: %w", err), "set --store or STATEPACK_STORE to a directory")
	}
	r, err := archive.OpenOrInit(ctx, be)
	if errors.Is(err, format.ErrNotRepository) {
		return nil, withHint(fmt.Errorf("store %s is not empty and holds no statepack repository (%w)", s.set.Store, format.ErrNotRepository),
			"point --store or STATEPACK_STORE at a statepack store or at an empty directory")
	}
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return r, nil
}

// remoteURL checks that a remote is configured and well formed.
func (s *session) remoteURL() (remote.URL, error) {
	if s.set.Remote == "" {
		return remote.URL{}, withHint(usagef("no remote is set"), "pass --remote URL or set STATEPACK_REMOTE (s3://bucket/prefix, file:///path or a directory)")
	}
	u, err := remote.ParseURL(s.set.Remote)
	if err != nil {
		return remote.URL{}, &usageError{err}
	}
	if u.Kind == remote.KindDir && saver.Overlaps(u.Path, s.set.Store) {
		return u, withHint(usagef("remote %s and the store %s overlap", u.Path, s.set.Store), "choose a remote outside the store")
	}
	return u, nil
}

// openRemote opens the repository on the remote.
func (s *session) openRemote(ctx context.Context, opts ...remote.OpenOption) (*archive.Repository, error) {
	if _, err := s.remoteURL(); err != nil {
		return nil, err
	}
	s.onRemote = true
	r, err := remote.OpenRemote(ctx, s.set.Remote, false, opts...)
	var nf *archive.NotFoundError
	if errors.Is(err, backend.ErrNotFound) && !errors.As(err, &nf) {
		return nil, withHint(err, "`statepack init --remote` creates it")
	}
	return r, err
}

// openRepo opens the remote when onRemote is set, else the local store.
// Inspection and maintenance read the remote itself, not the index cache
// push and pull use: verify must see the remote's bytes, and a snapshot
// another machine forgot must not live on in the cache.
func (s *session) openRepo(ctx context.Context, onRemote bool) (*archive.Repository, error) {
	if onRemote {
		return s.openRemote(ctx)
	}
	return s.openStore(ctx)
}

// openRepoReading is openRepo for commands that only read: a remote is
// opened through a read-only view.
func (s *session) openRepoReading(ctx context.Context, onRemote bool) (*archive.Repository, error) {
	if onRemote {
		return s.openRemote(ctx, remote.ForReading())
	}
	return s.openStore(ctx)
}

// dataDir returns DATA_DIR after checking that it is set and safe to
// restore into (datadir.CheckDataDir): not /, a home or system directory,
// nor a directory that is, holds or lies inside the store, the cache, a
// directory remote or statepack's binary.
func (s *session) dataDir() (string, error) {
	d := s.set.DataDir
	if d == "" {
		return "", withHint(errNoDataDir{}, "set DATA_DIR or pass --data-dir")
	}
	owned := []datadir.OwnedPath{{What: "the store", Path: s.set.Store}, {What: "the cache", Path: s.set.cacheDir()}}
	if s.set.Remote != "" {
		if u, err := remote.ParseURL(s.set.Remote); err == nil && u.Kind == remote.KindDir {
			owned = append(owned, datadir.OwnedPath{What: "the remote", Path: u.Path})
		}
	}
	err := datadir.CheckDataDir(d, owned...)
	var unsafe *datadir.UnsafeDataDirError
	switch {
	case errors.As(err, &unsafe) && unsafe.Owner != "":
		return "", withHint(err, "choose a DATA_DIR apart from statepack's store, cache, remote and binary (the store moves with --store or STATEPACK_STORE)")
	case errors.As(err, &unsafe) && unsafe.Root:
		return "", withHint(err, "set DATA_DIR to the application's own data directory (an unset variable in DATA_DIR=\"$DIR/\" makes it /)")
	case errors.As(err, &unsafe):
		return "", withHint(err, "set DATA_DIR to the application's own data directory")
	case err != nil:
		return "", err
	}
	return d, nil
}

// errNoDataDir says DATA_DIR is not set; it matches datadir.ErrNoDataDir.
type errNoDataDir struct{}

// Error implements error.
func (errNoDataDir) Error() string { return "DATA_DIR is not set, so persistence is disabled" }

// Is makes errors.Is(err, datadir.ErrNoDataDir) hold.
func (errNoDataDir) Is(target error) bool { return target == datadir.ErrNoDataDir }

// existingDataDir is dataDir for commands that read it: it must exist and
// be a directory.
func (s *session) existingDataDir() (string, error) {
	d, err := s.dataDir()
	if err != nil {
		return "", err
	}
	st, err := os.Stat(d)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", withHint(fmt.Errorf("DATA_DIR %s does not exist", d), "create it, or set DATA_DIR to the application's data directory")
	case err != nil:
		return "", fmt.Errorf("DATA_DIR %s: %w", d, err)
	case !st.IsDir():
		return "", withHint(fmt.Errorf("DATA_DIR %s is not a directory", d), "set DATA_DIR to a directory")
	}
	return d, nil
}

// identity is who and where a snapshot is made, for its manifest.
type identity struct{ host, user, tool string }

func whoAmI() identity {
	id := identity{tool: "statepack " + buildVersion().Version}
	id.host, _ = os.Hostname()
	id.user = os.Getenv("USER")
	if id.user == "" {
		if u, err := user.Current(); err == nil {
			id.user = u.Username
		}
	}
	return id
}
