package archive

import (
	"context"
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
