package lookup

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/remote/backend"
)

// The internal tests hold a Finder where a repository's tests would hold
// the repository (this package cannot import archive): Init and Open
// make one on a backend whose config object names the repository, and
// the methods below are the few repository ones the tests use.

// Init stores cfg as be's config and opens a Finder on it.
func Init(ctx context.Context, be backend.Backend, cfg format.Config) (*Finder, error) {
	data, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	if err := be.Put(ctx, "config", bytes.NewReader(data), int64(len(data))); err != nil {
		return nil, err
	}
	return Open(ctx, be)
}

// Open opens a Finder on the repository whose config be holds, reading
// through be directly (backendReads).
func Open(ctx context.Context, be backend.Backend) (*Finder, error) {
	rc, err := be.Get(ctx, "config")
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var cfg format.Config
	if err := json.NewDecoder(rc).Decode(&cfg); err != nil {
		return nil, err
	}
	return NewFinder(be, cfg, backendReads{be}), nil
}

// Backend is where the Finder's repository lives.
func (f *Finder) Backend() backend.Backend { return f.be }

// Config is the config the Finder was made with.
func (f *Finder) Config() format.Config { return f.cfg }

// ReadIndexObject reads and decodes one index object by id.
func (f *Finder) ReadIndexObject(ctx context.Context, id format.ID) ([]format.IndexPack, error) {
	data, err := f.readIndexData(ctx, IndexObject{ID: id, size: -1})
	if err != nil {
		return nil, err
	}
	return format.DecodeIndex(data)
}

// backendReads is a Reader straight on a backend, with the contract's
// bounds and checks: what archive.Repository provides, written plainly.
type backendReads struct{ be backend.Backend }

func (b backendReads) ReadVerified(ctx context.Context, name string, id format.ID, limit, hint int64) ([]byte, error) {
	if hint > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes: %w", name, limit, format.ErrCorrupt)
	}
	data, err := b.ReadAtMost(ctx, name, limit, hint)
	switch {
	case err != nil:
		return nil, err
	case int64(len(data)) > limit:
		return nil, fmt.Errorf("%s is larger than %d bytes: %w", name, limit, format.ErrCorrupt)
	case format.Hash(data) != id:
		return nil, &format.IntegrityError{Object: name, Location: b.be.Location()}
	}
	return data, nil
}

func (b backendReads) ReadAtMost(ctx context.Context, name string, limit, _ int64) ([]byte, error) {
	rc, err := b.be.Get(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, limit+1))
}
