package dirbackend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/statepack/statepack/internal/files"
	"github.com/statepack/statepack/remote/backend"
)

// TestDirPutWrites: an object handed over in memory (one write call) and
// one streamed (the cancellable copy) are stored alike, a size that does
// not match is refused, and a cancelled context stores nothing.
func TestDirPutWrites(t *testing.T) {
	b, err := New(filepath.Join(t.TempDir(), "repo"), true)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	data := bytes.Repeat([]byte("pack bytes "), 600<<10) // 6.6 MB: also starts a writeback
	cases := []struct {
		name    string
		r       func() io.Reader
		size    int64
		ctx     func() context.Context
		wantErr bool
	}{
		{"in-memory", func() io.Reader { return bytes.NewReader(data) }, int64(len(data)), nil, false},
		{"stream", func() io.Reader { return io.MultiReader(bytes.NewReader(data)) }, int64(len(data)), nil, false},
		{"in-memory-short", func() io.Reader { return bytes.NewReader(data[:100]) }, int64(len(data)), nil, true},
		{"stream-unknown-size", func() io.Reader { return strings.NewReader("x") }, -1, nil, false},
		{"in-memory-cancelled", func() io.Reader { return bytes.NewReader(data) }, int64(len(data)), func() context.Context {
			c, cancel := context.WithCancel(ctx)
			cancel()
			return c
		}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cctx := ctx
			if c.ctx != nil {
				cctx = c.ctx()
			}
			name := "packs/ab/" + strings.Repeat("ab", 32)
			_ = b.Delete(ctx, name)
			err := b.Put(cctx, name, c.r(), c.size)
			if c.wantErr {
				if err == nil {
					t.Fatal("Put succeeded")
				}
				if _, err := b.Stat(ctx, name); !errors.Is(err, backend.ErrNotFound) {
					t.Fatalf("failed Put left an object: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			rc, err := b.Get(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(rc)
			rc.Close()
			want, _ := io.ReadAll(c.r())
			if !bytes.Equal(got, want) {
				t.Fatalf("stored %d bytes, want %d", len(got), len(want))
			}
		})
	}
	waitFlushed(t, b)
	entries, _ := os.ReadDir(filepath.Join(b.Root(), "packs", "ab"))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), files.TmpPrefix) {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

// TestDirStartWriteback: large Puts from many goroutines start at most
// MaxWritebacks background writebacks at a time, all of them end, and a
// writeback of an object removed meanwhile is harmless; PutIf still
// flushes before it moves a ref.
func TestDirStartWriteback(t *testing.T) {
	b, err := New(filepath.Join(t.TempDir(), "repo"), true)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	data := make([]byte, writebackMin)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("packs/%02x/%s", i, strings.Repeat(fmt.Sprintf("%02x", i), 32))
			if err := b.Put(ctx, name, bytes.NewReader(data), int64(len(data))); err != nil {
				t.Error(err)
			}
			if n := b.writebacks.Load(); n < 0 || n > MaxWritebacks {
				t.Errorf("%d writebacks running", n)
			}
			if i%2 == 0 {
				if err := b.Delete(ctx, name); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	b.startWriteback(filepath.Join(b.Root(), "packs", "no", "such-object"))
	if _, err := b.PutIf(ctx, "refs/s", []byte("x\n"), ""); err != nil {
		t.Fatal(err)
	}
	waitFlushed(t, b)
}

// waitFlushed waits for b's background writebacks to end.
func waitFlushed(t *testing.T, b *Backend) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); b.writebacks.Load() != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d background writebacks still running", b.writebacks.Load())
		}
	}
}
