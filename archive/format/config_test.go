package format_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/saver"
	"github.com/statepack/statepack/chunker"
	"github.com/statepack/statepack/internal/treetest"
	"github.com/statepack/statepack/remote/backend"
	"github.com/statepack/statepack/remote/dirbackend"
)

// TestNewConfigPackSize: a new repository takes pack targets of 1 MiB to
// MaxPackTarget; past it the packs a save holds in memory would pass the
// memory target.
func TestNewConfigPackSize(t *testing.T) {
	for _, tc := range []struct {
		size, want int
		ok         bool
	}{
		{0, format.DefaultPackSize, true},
		{1 << 20, 1 << 20, true},
		{format.MaxPackTarget, format.MaxPackTarget, true},
		{1<<20 - 1, 0, false},
		{format.MaxPackTarget + 1, 0, false},
		{1 << 30, 0, false},
	} {
		cfg, err := format.NewConfig(chunker.DefaultParams(), tc.size)
		if (err == nil) != tc.ok || tc.ok && (cfg.PackSize != tc.want || cfg.PackTarget() != tc.want) {
			t.Errorf("NewConfig(%d): pack size %d, target %d, err %v; want %d, ok %v", tc.size, cfg.PackSize, cfg.PackTarget(), err, tc.want, tc.ok)
		}
	}
}

// TestSaveIntoLargePackConfig: a repository whose config asks for 256 MiB
// packs (which earlier versions created) opens, and a save into it closes
// its packs at MaxPackTarget, so its memory stays bounded.
func TestSaveIntoLargePackConfig(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "store")
	be, _ := dirbackend.New(root, true)
	cfg, err := format.NewConfig(chunker.DefaultParams(), 0)
	if err != nil {
		t.Fatal(err)
	}
	cfg.PackSize = 256 << 20
	if _, err := archive.Init(ctx, be, cfg); err != nil {
		t.Fatal(err)
	}
	r, err := archive.Open(ctx, be)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Config().PackTarget(); got != format.MaxPackTarget {
		t.Fatalf("pack target %d, want %d", got, format.MaxPackTarget)
	}
	data := make([]byte, format.MaxPackTarget+format.MaxPackTarget/4) // incompressible
	_, _ = rand.NewChaCha8([32]byte{7}).Read(data)
	src := filepath.Join(t.TempDir(), "data")
	treetest.Write(t, src, map[string]treetest.Spec{"big": {Content: string(data)}})
	if _, err := saver.Save(ctx, r, saver.Options{DataDir: src, State: "s"}); err != nil {
		t.Fatal(err)
	}
	packs, _ := filepath.Glob(filepath.Join(root, "packs", "*", "*"))
	if len(packs) < 2 {
		t.Fatalf("%d packs for %d MiB, want at least 2", len(packs), len(data)>>20)
	}
	for _, p := range packs {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if limit := int64(format.MaxPackTarget + 2*cfg.Chunker.Max); fi.Size() > limit {
			t.Errorf("pack of %d bytes, want at most %d", fi.Size(), limit)
		}
	}
}

// createdMeanwhile is a backend on which another process creates the
// repository right after the first read of config found none: the window
// between OpenOrInit's read of config and its listing.
type createdMeanwhile struct {
	backend.Backend
	t    *testing.T
	done bool
}

func (b *createdMeanwhile) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if name == "config" && !b.done {
		b.done = true
		cfg, err := format.NewConfig(chunker.DefaultParams(), format.DefaultPackSize)
		if err == nil {
			_, err = archive.Init(ctx, b.Backend, cfg)
		}
		if err != nil {
			b.t.Fatal(err)
		}
		return nil, fmt.Errorf("config: %w", backend.ErrNotFound)
	}
	return b.Backend.Get(ctx, name)
}

// TestOpenOrInitRacesAnotherInit: four first saves into one new store at
// once. One that reads config before another writes it, and lists the
// store after, must not be told the store holds no repository: it opens
// the repository the other process made.
func TestOpenOrInitRacesAnotherInit(t *testing.T) {
	be, err := dirbackend.New(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := archive.OpenOrInit(context.Background(), &createdMeanwhile{Backend: be, t: t}); err != nil {
		t.Fatalf("store created by another process meanwhile: %v", err)
	}
}
