package remote

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/statepack/statepack/archive"
)

// cachedBackend keeps copies of a remote's index objects in a local
// directory, so that a push or pull lists the
// remote's index once and fetches only the index objects it has not seen.
// Cached copies are verified against their ids by the repository code on
// every read, exactly like fresh ones.
type cachedBackend struct {
	archive.Backend
	dir string
}

// withCache wraps b with a read-through cache in dir.
func withCache(b archive.Backend, dir string) archive.Backend {
	return &cachedBackend{Backend: b, dir: dir}
}

// cacheable: only index objects. Snapshots are immutable too, but forget
// on another machine deletes them, and a cached copy would resurrect them.
func cacheable(name string) bool {
	return strings.HasPrefix(name, "index/")
}

func (c *cachedBackend) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if !cacheable(name) {
		return c.Backend.Get(ctx, name)
	}
	p := filepath.Join(c.dir, filepath.FromSlash(name))
	if f, err := os.Open(p); err == nil {
		return f, nil
	}
	rc, err := c.Backend.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, 1<<30))
	if err != nil {
		return nil, err
	}
	if archive.Hash(data).String() == filepath.Base(name) {
		// Only verified objects enter the cache; a damaged one is
		// returned as it is, for the caller to report.
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
			tmp := p + ".tmp"
			if os.WriteFile(tmp, data, 0o644) == nil {
				_ = os.Rename(tmp, p)
			}
		}
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

// Unwrap returns the wrapped backend.
func (c *cachedBackend) Unwrap() archive.Backend { return c.Backend }

func (c *cachedBackend) Delete(ctx context.Context, name string) error {
	if cacheable(name) {
		_ = os.Remove(filepath.Join(c.dir, filepath.FromSlash(name)))
	}
	return c.Backend.Delete(ctx, name)
}

// cacheDirFor is where the cache of a remote lives under the local store.
func cacheDirFor(storeCache, location string) string {
	return filepath.Join(storeCache, fmt.Sprintf("remote-%s", archive.Hash([]byte(location)).Short()))
}
