package archive_test

import (
	"encoding/binary"
	"sync"
	"testing"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/format"
)

// TestIndexEachWhileAdding: Each hands out every block's location while
// another goroutine adds packs, as a save's writers do while a verify or a
// push walks the index. Under -race this fails if Each reads the pack list
// outside the lock that AddPack appends to it under.
func TestIndexEachWhileAdding(t *testing.T) {
	id := func(i int) format.ID { return format.Hash(binary.LittleEndian.AppendUint64(nil, uint64(i))) }
	const blocks = 2000
	x := archive.NewIndex()
	want := map[format.ID]format.ID{}
	for p := range 4 {
		var entries []format.PackEntry
		for i := p * blocks / 4; i < (p+1)*blocks/4; i++ {
			entries = append(entries, format.PackEntry{ID: id(i), Offset: uint32(i), Stored: 1, Raw: 1})
			want[id(i)] = id(-p - 1)
		}
		x.AddPack(id(-p-1), entries)
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-start
		// No synchronisation back to Each: its later reads and these
		// appends are concurrent, as in a real save.
		for p := 4; p < 64; p++ {
			x.AddPack(id(-p-1), []format.PackEntry{{ID: id(blocks + p), Stored: 1, Raw: 1}})
		}
	}()
	seen := 0
	err := x.Each(func(b format.ID, loc format.Location) error {
		if seen == 0 {
			close(start)
		}
		seen++
		if pack, ok := want[b]; !ok || loc.Pack != pack {
			t.Errorf("block %s: in pack %s, want %s (known %v)", b.Short(), loc.Pack.Short(), pack.Short(), ok)
		}
		return nil
	})
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if seen != blocks {
		t.Errorf("Each visited %d blocks, want the %d indexed when it started", seen, blocks)
	}
}

// skipUnderRace skips a test whose data, not its concurrency, is large:
// it drives the goroutines the smaller tests drive, only over far more
// bytes, so under -race it costs minutes and finds nothing they do not.
// `make test` runs such tests in its plain pass.
func skipUnderRace(t *testing.T) {
	t.Helper()
	if raceEnabled {
		t.Skip("minutes under -race; the plain pass of `make test` runs it")
	}
}
