package archive_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/chunker"
	"github.com/statepack/statepack/internal/treetest"
)

// TestVerifyManyPacks: packs are checked several at a time, and whatever
// order the checks end in, verify names exactly the damaged, truncated and
// missing packs, in the order of their ids, counts every pack and the bytes
// it read, and stops with the context.
func TestVerifyManyPacks(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "store")
	be, _ := archive.NewDirBackend(root, true)
	cfg, err := archive.NewConfig(chunker.DefaultParams(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	r, err := archive.Init(ctx, be, cfg)
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "data")
	rng := rand.New(rand.NewPCG(1, 2))
	files := map[string]treetest.Spec{}
	for i := range 12 {
		b := make([]byte, 700<<10) // incompressible: one pack per 1 MiB or so
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		files[filepath.Join("d", string(rune('a'+i)))] = treetest.Spec{Content: string(b)}
	}
	treetest.Write(t, src, files)
	if _, err := r.Save(ctx, archive.SaveOptions{DataDir: src, State: "s"}); err != nil {
		t.Fatal(err)
	}
	packs, _ := filepath.Glob(filepath.Join(root, "packs", "*", "*"))
	if len(packs) < 6 {
		t.Fatalf("%d packs; the test needs at least 6", len(packs))
	}
	slices.Sort(packs) // the order of their ids, which verify reports in
	var size int64
	for _, p := range packs {
		fi, _ := os.Stat(p)
		size += fi.Size()
	}
	flipped, truncated, missing := packs[1], packs[3], packs[len(packs)-1]
	flipAt(t, flipped, 100)
	fi, _ := os.Stat(truncated)
	if err := os.Truncate(truncated, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	size -= fi.Size() - fi.Size()/2
	fi, _ = os.Stat(missing)
	size -= fi.Size()
	if err := os.Remove(missing); err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Base(flipped), filepath.Base(truncated), filepath.Base(missing)}

	for _, readData := range []bool{true, false} {
		r2, err := archive.Open(ctx, be)
		if err != nil {
			t.Fatal(err)
		}
		v, err := r2.Verify(ctx, archive.VerifyOptions{ReadData: readData})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range v.Problems {
			if strings.HasPrefix(p.Object, "packs/") {
				got = append(got, filepath.Base(p.Object))
			}
		}
		wantHere := want
		if !readData {
			wantHere = want[1:] // a flipped byte mid-pack shows only when the data is read
		}
		if !slices.Equal(got, wantHere) {
			t.Errorf("read data %v: problems with packs %v, want %v (all problems: %+v)", readData, got, wantHere, v.Problems)
		}
		if v.Packs != len(packs) {
			t.Errorf("read data %v: %d packs checked, want %d", readData, v.Packs, len(packs))
		}
		if readData && v.BytesRead != size {
			t.Errorf("read %d bytes, want the %d of the packs present", v.BytesRead, size)
		}
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	r3, err := archive.Open(ctx, be)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r3.Verify(cancelled, archive.VerifyOptions{ReadData: true}); !errors.Is(err, context.Canceled) {
		t.Errorf("verify with a cancelled context: %v, want context.Canceled", err)
	}
}

// flipAt inverts the byte at off of the file at p.
func flipAt(t *testing.T, p string, off int64) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}
