package archive

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/chunker"
	"github.com/statepack/statepack/remote/backend"
	"github.com/statepack/statepack/remote/dirbackend"
)

// stalledPacks holds every pack upload until release is closed.
type stalledPacks struct {
	backend.Backend
	release chan struct{}
}

func (s *stalledPacks) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	if strings.HasPrefix(name, "packs/") {
		<-s.release
	}
	return s.Backend.Put(ctx, name, r, size)
}

// TestPackWriterBoundsPacks: while uploads stall, readers adding blocks
// wait once jobs packs are in flight and one more is full, instead of
// each filling a pack of its own; once the uploads go on, every block
// lands in a pack. A slow machine can only make the count lower, never
// higher, so the bound cannot fail for lack of speed.
func TestPackWriterBoundsPacks(t *testing.T) {
	const jobs, readers, perReader, blockSize = 2, 4, 20, 256 << 10
	ctx := context.Background()
	be, err := dirbackend.New(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := format.NewConfig(chunker.DefaultParams(), 1<<20) // 4 blocks fill a pack
	if err != nil {
		t.Fatal(err)
	}
	stalled := &stalledPacks{Backend: be, release: make(chan struct{})}
	dst, err := Init(ctx, stalled, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := dst.NewPackWriter(ctx, PackWriterOptions{Jobs: jobs})
	var added atomic.Int64
	var wg sync.WaitGroup
	for i := range readers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 9))
			for range perReader {
				b := make([]byte, blockSize)
				for j := range b {
					b[j] = byte(rng.Uint32())
				}
				id := format.Hash(b)
				if err := s.Add(id, b, blockSize, format.EncodingRaw); err != nil {
					t.Error(err)
					return
				}
				added.Add(1)
			}
		})
	}
	// Wait until the readers stop adding: all of them wait on the stalled uploads.
	for last := int64(-1); added.Load() != last; time.Sleep(200 * time.Millisecond) {
		last = added.Load()
	}
	if n, most := added.Load(), int64((jobs+1)*4); n > most {
		t.Errorf("%d blocks added while uploads stalled; at most %d fit in %d packs in flight and one full", n, most, jobs)
	}
	close(stalled.release)
	wg.Wait()
	if _, err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	packs, blocks := s.Stats().Packs, s.Stats().Blocks
	if blocks != readers*perReader || packs != readers*perReader/4 {
		t.Errorf("%d blocks in %d packs, want %d in %d", blocks, packs, readers*perReader, readers*perReader/4)
	}
}

// failingPacks fails every pack upload.
type failingPacks struct{ backend.Backend }

var errPackUpload = errors.New("pack upload failed")

func (f failingPacks) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	if strings.HasPrefix(name, "packs/") {
		return errPackUpload
	}
	return f.Backend.Put(ctx, name, r, size)
}

// packWriterRepo is an empty repository of 1 MiB packs on be's wrapper.
func packWriterRepo(t *testing.T, wrap func(backend.Backend) backend.Backend) *Repository {
	t.Helper()
	be, err := dirbackend.New(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := format.NewConfig(chunker.DefaultParams(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Init(context.Background(), wrap(be), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// randomStored returns n incompressible bytes and their id.
func randomStored(rng *rand.Rand, n int) (format.ID, []byte) {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return format.Hash(b), b
}

// TestPackWriterIndexes: with IndexEvery, an index object follows every
// IndexEvery packs and Close indexes the rest, so that every pack stored
// is findable by a fresh reader; without it the writer writes no index
// and Close returns the packs for the caller's. Whole packs count too.
func TestPackWriterIndexes(t *testing.T) {
	for _, tc := range []struct {
		every, indexes int
	}{{0, 0}, {2, 3}, {8, 1}} {
		ctx := context.Background()
		r := packWriterRepo(t, func(b backend.Backend) backend.Backend { return b })
		rng := rand.New(rand.NewPCG(uint64(tc.every), 1))
		w := r.NewPackWriter(ctx, PackWriterOptions{Jobs: 2, IndexEvery: tc.every})
		var ids []format.ID
		for range 16 { // 4 blocks of 256 KiB fill a pack: 4 packs
			id, b := randomStored(rng, 256<<10)
			ids = append(ids, id)
			if err := w.Add(id, b, len(b), format.EncodingRaw); err != nil {
				t.Fatal(err)
			}
		}
		whole := format.NewPackBuilder(1 << 20)
		id, b := randomStored(rng, 1000)
		whole.Add(id, b, len(b), format.EncodingRaw)
		pack, data, entries := whole.Finish()
		ids = append(ids, id)
		if err := w.PutPack(ctx, pack, data, entries); err != nil {
			t.Fatal(err)
		}
		packs, err := w.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st := w.Stats(); len(packs) != 5 || st.Packs != 5 || st.Blocks != 17 {
			t.Errorf("every %d: %d packs returned, stats %+v; want 5 packs of 17 blocks", tc.every, len(packs), st)
		}
		var indexes int
		if err := r.Backend().List(ctx, "index/", func(backend.ObjectInfo) error { indexes++; return nil }); err != nil {
			t.Fatal(err)
		}
		if indexes != tc.indexes {
			t.Errorf("every %d: %d index objects, want %d", tc.every, indexes, tc.indexes)
		}
		if tc.every == 0 {
			continue
		}
		fresh, err := Open(ctx, r.Backend())
		if err != nil {
			t.Fatal(err)
		}
		idx, err := fresh.LoadIndex(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			if !idx.Has(id) {
				t.Fatalf("every %d: block %s stored but not indexed", tc.every, id.Short())
			}
		}
	}
}

// TestPackWriterFailure: a failed upload is reported by the next Add and
// by Close, and nothing is indexed for it.
func TestPackWriterFailure(t *testing.T) {
	ctx := context.Background()
	r := packWriterRepo(t, func(b backend.Backend) backend.Backend { return failingPacks{b} })
	w := r.NewPackWriter(ctx, PackWriterOptions{Jobs: 1, IndexEvery: 1})
	rng := rand.New(rand.NewPCG(7, 7))
	var err error
	for i := 0; i < 64 && err == nil; i++ {
		id, b := randomStored(rng, 256<<10)
		err = w.Add(id, b, len(b), format.EncodingRaw)
	}
	if !errors.Is(err, errPackUpload) {
		t.Fatalf("Add after a failed upload: %v, want the upload's error", err)
	}
	if _, err := w.Close(ctx); !errors.Is(err, errPackUpload) {
		t.Fatalf("Close: %v, want the upload's error", err)
	}
	if n := r.Index().Len(); n != 0 {
		t.Errorf("%d blocks indexed after every upload failed", n)
	}
}
