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
	if data, err := os.ReadFile(p); err == nil {
		if archive.Hash(data).String() == filepath.Base(name) {
			return io.NopCloser(bytes.NewReader(data)), nil
		}
		_ = os.Remove(p) // a damaged copy: fetch the object again
	}
	var size int64 = -1
	if info, err := c.Backend.Stat(ctx, name); err == nil {
		size = info.Size
	}
	rc, err := c.Backend.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := readObject(rc, size)
	if err != nil {
		return nil, err
	}
	if archive.Hash(data).String() == filepath.Base(name) {
		// Only verified objects enter the cache; a damaged one is
		// returned as it is, for the caller to report.
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
			// A unique temporary name: processes sharing a store must
			// never see each other's half-written copies.
			if f, err := os.CreateTemp(filepath.Dir(p), ".tmp-*"); err == nil {
				_, werr := f.Write(data)
				if cerr := f.Close(); werr == nil && cerr == nil {
					_ = os.Rename(f.Name(), p)
				}
				_ = os.Remove(f.Name())
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

// readObject reads a whole object of a known size (or of at most 1 GiB)
// into one allocation.
func readObject(r io.Reader, size int64) ([]byte, error) {
	if size < 0 || size > 1<<30 {
		return io.ReadAll(io.LimitReader(r, 1<<30))
	}
	buf := make([]byte, size)
	n, err := io.ReadFull(r, buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}
