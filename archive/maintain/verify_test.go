package maintain_test

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/maintain"
	"github.com/statepack/statepack/archive/saver"
	"github.com/statepack/statepack/chunker"
	"github.com/statepack/statepack/internal/treetest"
	"github.com/statepack/statepack/remote/backend"
	"github.com/statepack/statepack/remote/dirbackend"
)

// TestVerifyManyPacks: packs are checked several at a time, and whatever
// order the checks end in, verify names exactly the damaged, truncated and
// missing packs, in the order of their ids, counts every pack and the bytes
// it read, and stops with the context.
func TestVerifyManyPacks(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "store")
	be, _ := dirbackend.New(root, true)
	cfg, err := format.NewConfig(chunker.DefaultParams(), 1<<20)
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
	if _, err := saver.Save(ctx, r, saver.Options{DataDir: src, State: "s"}); err != nil {
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
		v, err := maintain.Verify(ctx, r2, maintain.VerifyOptions{ReadData: readData})
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
	if _, err := maintain.Verify(cancelled, r3, maintain.VerifyOptions{ReadData: true}); !errors.Is(err, context.Canceled) {
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

// requestCounter counts the reads of packs: whole and ranged.
type requestCounter struct {
	backend.Backend
	gets, ranges atomic.Int64
}

func (c *requestCounter) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if strings.HasPrefix(name, "packs/") {
		c.gets.Add(1)
	}
	return c.Backend.Get(ctx, name)
}

func (c *requestCounter) GetRange(ctx context.Context, name string, off, n int64) (io.ReadCloser, error) {
	if strings.HasPrefix(name, "packs/") {
		c.ranges.Add(1)
	}
	return c.Backend.GetRange(ctx, name, off, n)
}

// TestVerifyStreamsPacks: verify --read-data holds a window of a pack,
// not the pack, so its memory does not grow with the pack size a config
// (up to 1 GiB) or a hostile listing gives. A pack the index describes
// whole is read with one request and its trailer checked as it streams
// by; a pack that also holds blocks the index does not name has its
// trailer read first. Either way every block is decoded and checked.
func TestVerifyStreamsPacks(t *testing.T) {
	const packBytes = 12 << 20
	rng := rand.New(rand.NewPCG(3, 4))
	blocks := make([][]byte, packBytes/(256<<10))
	for i := range blocks {
		blocks[i] = randomBlock(rng, 256<<10)
	}
	for _, tc := range []struct {
		name         string
		indexed      func(i int) bool
		gets, ranges int64
	}{
		{"index names every block", func(int) bool { return true }, 1, 0},
		{"index names some blocks", func(i int) bool { return i%3 != 1 }, 1, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dbe, _ := dirbackend.New(filepath.Join(t.TempDir(), "store"), true)
			cfg, err := format.NewConfig(chunker.DefaultParams(), 64<<20)
			if err != nil {
				t.Fatal(err)
			}
			r, err := archive.Init(ctx, dbe, cfg)
			if err != nil {
				t.Fatal(err)
			}
			pb := format.NewPackBuilder(packBytes)
			for _, b := range blocks {
				pb.Add(format.Hash(b), b, len(b), format.EncodingRaw)
			}
			id, data, entries := pb.Finish()
			if err := r.PutPack(ctx, id, data); err != nil {
				t.Fatal(err)
			}
			var named []format.PackEntry
			for i, e := range entries {
				if tc.indexed(i) {
					named = append(named, e)
				}
			}
			if _, err := r.PutIndex(ctx, []format.IndexPack{{Pack: id, Entries: named}}); err != nil {
				t.Fatal(err)
			}

			be := &requestCounter{Backend: dbe}
			r2, err := archive.Open(ctx, be)
			if err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			v, err := maintain.Verify(ctx, r2, maintain.VerifyOptions{ReadData: true})
			runtime.ReadMemStats(&after)
			if err != nil || !v.OK() {
				t.Fatalf("verify: %v %+v", err, v)
			}
			if v.BytesRead != int64(len(data)) {
				t.Errorf("read %d bytes, want the pack's %d", v.BytesRead, len(data))
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > packBytes/3 {
				t.Errorf("verify allocated %d MiB for a %d MiB pack: it holds the pack, not a window", alloc>>20, packBytes>>20)
			}
			if g, rg := be.gets.Load(), be.ranges.Load(); g != tc.gets || rg != tc.ranges {
				t.Errorf("pack reads: %d whole, %d ranged; want %d and %d", g, rg, tc.gets, tc.ranges)
			}
		})
	}
}

// TestVerifyReadDataFindsDamage: whatever part of a pack is damaged, verify
// --read-data names that pack, and only it, and says what is wrong.
func TestVerifyReadDataFindsDamage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, p string, size int64)
		want   string
	}{
		{"byte flipped in a block", func(t *testing.T, p string, _ int64) { flipAt(t, p, 1000) }, "does not match its id"},
		{"byte flipped in the trailer", func(t *testing.T, p string, size int64) { flipAt(t, p, size-20) }, "does not match its id"},
		{"byte appended", func(t *testing.T, p string, _ int64) { appendTo(t, p, []byte{0}) }, "pack footer"},
		{"truncated", func(t *testing.T, p string, size int64) { truncateTo(t, p, size-1) }, "pack footer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			r, cache := testRepo(t)
			src := filepath.Join(t.TempDir(), "data")
			rng := rand.New(rand.NewPCG(5, 6))
			treetest.Write(t, src, map[string]treetest.Spec{"f": {Content: string(randomBlock(rng, 1<<20))}})
			save(t, r, cache, src, "s")
			root := r.Backend().(*dirbackend.Backend).Root()
			packs, _ := filepath.Glob(filepath.Join(root, "packs", "*", "*"))
			if len(packs) != 1 {
				t.Fatalf("%d packs, want 1", len(packs))
			}
			fi, _ := os.Stat(packs[0])
			tc.damage(t, packs[0], fi.Size())
			r2, err := archive.Open(ctx, r.Backend())
			if err != nil {
				t.Fatal(err)
			}
			v, err := maintain.Verify(ctx, r2, maintain.VerifyOptions{ReadData: true})
			if err != nil {
				t.Fatal(err)
			}
			if len(v.Problems) != 1 || v.Problems[0].Object != "packs/"+filepath.Base(filepath.Dir(packs[0]))+"/"+filepath.Base(packs[0]) || !strings.Contains(v.Problems[0].Error, tc.want) {
				t.Fatalf("problems %+v, want one naming %s: %q", v.Problems, filepath.Base(packs[0]), tc.want)
			}
		})
	}
}

func appendTo(t *testing.T, p string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err == nil {
		_, err = f.Write(b)
		f.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
}

func truncateTo(t *testing.T, p string, n int64) {
	t.Helper()
	if err := os.Truncate(p, n); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyNamesABlockWrittenWrong: a pack that matches its id but holds
// a block that does not match the id its trailer and the index give (a
// writer's bug, not damage since) is named with the block.
func TestVerifyNamesABlockWrittenWrong(t *testing.T) {
	ctx := context.Background()
	be, _ := dirbackend.New(filepath.Join(t.TempDir(), "store"), true)
	r, err := archive.OpenOrInit(ctx, be)
	if err != nil {
		t.Fatal(err)
	}
	good, bad := []byte("a block that is what it says"), []byte("a block under another's id")
	claimed := format.Hash([]byte("what the bad block claims to be"))
	pb := format.NewPackBuilder(1 << 20)
	pb.Add(format.Hash(good), good, len(good), format.EncodingRaw)
	pb.Add(claimed, bad, len(bad), format.EncodingRaw)
	id, data, entries := pb.Finish()
	if err := r.PutPack(ctx, id, data); err != nil {
		t.Fatal(err)
	}
	if _, err := r.PutIndex(ctx, []format.IndexPack{{Pack: id, Entries: entries}}); err != nil {
		t.Fatal(err)
	}
	v, err := maintain.Verify(ctx, r, maintain.VerifyOptions{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Problems) != 1 || !strings.Contains(v.Problems[0].Object, id.String()) || !strings.Contains(v.Problems[0].Error, claimed.Short()) {
		t.Fatalf("problems %+v, want one naming pack %s and block %s", v.Problems, id.Short(), claimed.Short())
	}
}
