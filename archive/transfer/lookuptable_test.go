package transfer_test

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/transfer"
	"github.com/statepack/statepack/internal/miniotest"
	"github.com/statepack/statepack/internal/treetest"
	"github.com/statepack/statepack/remote"
	"github.com/statepack/statepack/remote/backend"
)

// indexSpy counts what is read of a remote's index objects and tables.
type indexSpy struct {
	backend.Backend
	indexGets, indexBytes atomic.Int64
	tableBytes            atomic.Int64
}

func (s *indexSpy) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	rc, err := s.Backend.Get(ctx, name)
	if err == nil && strings.HasPrefix(name, "index/") {
		s.indexGets.Add(1)
		return &countingBody{rc, &s.indexBytes}, nil
	}
	return rc, err
}

func (s *indexSpy) GetRange(ctx context.Context, name string, off, n int64) (io.ReadCloser, error) {
	rc, err := s.Backend.GetRange(ctx, name, off, n)
	switch {
	case err != nil:
	case strings.HasPrefix(name, "index/"):
		s.indexGets.Add(1)
		return &countingBody{rc, &s.indexBytes}, nil
	case strings.HasPrefix(name, "lookup/"):
		return &countingBody{rc, &s.tableBytes}, nil
	}
	return rc, err
}

func (s *indexSpy) Unwrap() backend.Backend { return s.Backend }

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// putSyntheticIndex writes index objects of random blocks in packs that
// do not exist, as the bench's scale row does: a big index for a push
// to ask, without the packs behind it. It returns their names.
func putSyntheticIndex(t *testing.T, rem *archive.Repository, objects, entries int) []string {
	t.Helper()
	rng := rand.New(rand.NewChaCha8([32]byte{77}))
	var names []string
	for range objects {
		var packs []format.IndexPack
		for n := entries; n > 0; n -= 256 {
			p := format.IndexPack{Entries: make([]format.PackEntry, min(n, 256))}
			for i := range p.Pack {
				p.Pack[i] = byte(rng.Uint32())
			}
			var off uint32
			for j := range p.Entries {
				e := &p.Entries[j]
				for i := range e.ID {
					e.ID[i] = byte(rng.Uint32())
				}
				e.Offset, e.Stored, e.Raw, e.Encoding = off, 1000, 2000, format.EncodingZstd
				off += 1000
			}
			packs = append(packs, p)
		}
		data := format.EncodeIndex(packs)
		name := "index/" + format.Hash(data).String()
		if err := rem.Backend().Put(context.Background(), name, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	return names
}

// TestColdPushUsesLookupTable, on MinIO: a remote whose index is large
// and whose lookup table was published by a client with a cache. A
// client without a cache pushes a state that shares a file with the
// remote: it reads the table's tables and a few buckets, only the two
// small index objects the table does not cover (of the push that
// published it and of a later one), builds no cache, and
// sends exactly the blocks the remote lacks. When the table is stale (an
// index object it covers is gone), the same push reads the index.
func TestColdPushUsesLookupTable(t *testing.T) {
	for _, stale := range []bool{false, true} {
		name := map[bool]string{false: "table serves", true: "stale table"}[stale]
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			srv := miniotest.Get(t)
			bucket := srv.NewBucket(ctx, t)
			setS3Env(t, srv)
			url := "s3://" + bucket + "/team/states"
			a, b := newStore(t), newStore(t)
			rem, err := remote.OpenRemote(ctx, url, true, remote.WithIndexCache(a.cache))
			if err != nil {
				t.Fatal(err)
			}
			rem.SetLookupTableMin(1)
			synthetic := putSyntheticIndex(t, rem, 4, 1<<15) // 131,072 entries, 6 MiB
			shared := bigContent(1, 1<<20)
			treetest.Write(t, a.data, map[string]treetest.Spec{"shared": {Content: shared}, "a-only": {Content: bigContent(2, 1<<20)}})
			a.save(t, "a")
			res, err := transfer.Push(ctx, a.repo, rem, transfer.PushOptions{State: "a"})
			if err != nil {
				t.Fatal(err)
			}
			if !res.LookupPublished {
				t.Fatalf("the first push with a cache of the whole index did not publish: %+v", res)
			}
			// Another machine's push after the table: uncovered.
			treetest.Write(t, a.data, map[string]treetest.Spec{"later": {Content: bigContent(3, 200<<10)}})
			a.savePush(t, rem, "a")
			if stale {
				if err := rem.Backend().Delete(ctx, synthetic[0]); err != nil {
					t.Fatal(err)
				}
			}

			treetest.Write(t, b.data, map[string]treetest.Spec{"shared": {Content: shared}, "b-only": {Content: bigContent(4, 1<<20)}})
			saved := b.save(t, "b")
			opened, err := remote.OpenRemote(ctx, url, false)
			if err != nil {
				t.Fatal(err)
			}
			spy := &indexSpy{Backend: opened.Backend()}
			cold, err := archive.Open(ctx, spy)
			if err != nil {
				t.Fatal(err)
			}
			cold.SetLookupTableMin(1)
			cache := t.TempDir()
			cold.UseLookupCache(cache)
			res, err = transfer.Push(ctx, b.repo, cold, transfer.PushOptions{State: "b"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(cache, "index.lookup")); (err == nil) != stale {
				t.Errorf("the cold client built a cache of the index: %v, want %v", err == nil, stale)
			}
			m, err := b.repo.LoadManifest(ctx, saved.Snapshot)
			if err != nil {
				t.Fatal(err)
			}
			perFile := map[string]int64{}
			all := map[format.ID]struct{}{}
			for _, e := range m.Entries {
				perFile[e.Path] = int64(len(e.Blocks))
				for _, bl := range e.Blocks {
					all[bl.ID] = struct{}{}
				}
			}
			if res.Blocks != perFile["b-only"] || res.SkippedBlocks != perFile["shared"] {
				t.Errorf("sent %d blocks and skipped %d; want %d (b-only) and %d (shared)", res.Blocks, res.SkippedBlocks, perFile["b-only"], perFile["shared"])
			}
			t.Logf("%s: %d index objects read (%d bytes), %d bytes of the table", name, spy.indexGets.Load(), spy.indexBytes.Load(), spy.tableBytes.Load())
			if stale {
				if spy.indexGets.Load() < int64(len(synthetic)) {
					t.Errorf("with a stale table, only %d index objects were read", spy.indexGets.Load())
				}
			} else {
				if n := spy.indexGets.Load(); n != 2 || spy.indexBytes.Load() > 8<<10 {
					t.Errorf("read %d index objects, %d bytes; want only the two small uncovered ones", n, spy.indexBytes.Load())
				}
				if n := spy.tableBytes.Load(); n == 0 || n > 4<<20 {
					t.Errorf("read %d bytes of the table", n)
				}
			}
			plain, err := archive.Open(ctx, rem.Backend())
			if err != nil {
				t.Fatal(err)
			}
			found, err := plain.FindBlocks(ctx, all)
			if err != nil || len(found) != len(all) {
				t.Fatalf("the remote holds %d of the %d blocks pushed: %v", len(found), len(all), err)
			}
			noop, err := transfer.Push(ctx, b.repo, cold, transfer.PushOptions{State: "b"})
			if err != nil || !noop.UpToDate || noop.Requests > 3 {
				t.Fatalf("no-op push: %+v %v", noop, err)
			}
		})
	}
}
