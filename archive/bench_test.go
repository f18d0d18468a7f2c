package archive_test

// Micro-benchmarks of the hot paths of save, restore, push and pull:
// hashing, compression, block decoding, manifest encoding, index lookups,
// and a whole Save and Restore of a generated LocalStack-like tree. Run
// them with `make gobench`, or for a CPU profile of the pipelines:
//
//	go test -run '^$' -bench 'Save|Restore' -cpuprofile cpu.out ./archive
//	go tool pprof -top archive.test cpu.out
//
// Where a baseline makes a number meaningful, it is measured in the same
// run as an earlier sibling sub-benchmark, and the later one reports its
// time as a multiple of it: metric "x-read-zstd" of BenchmarkSave/save is
// save time / read-zstd time.
//
// DESIGN.md asks that a manifest of 100,000 entries decode in well under
// 100 ms. BenchmarkDecodeManifest reports the time per decode in ms and
// as a share of that budget ("budget"); it is a measurement to read, not a
// test that fails, since timing on a shared machine is not a pass/fail
// signal.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/restorer"
	"github.com/statepack/statepack/archive/saver"
	"github.com/statepack/statepack/chunker"
	"github.com/statepack/statepack/internal/datagen"
	"github.com/statepack/statepack/remote/dirbackend"
)

// Sizes of the generated trees: one for whole-pipeline benchmarks, a
// smaller one as a corpus of realistic blocks.
const (
	treeSize   = 64 << 20
	corpusSize = 16 << 20
	blockSize  = 64 << 10
)

// genTree generates a LocalStack-like tree of size bytes (seed 1) under a
// temporary directory of b and returns its root.
func genTree(b *testing.B, size int64) string {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "data")
	if _, err := datagen.Generate(dir, datagen.Options{Seed: 1, Size: size}); err != nil {
		b.Fatal(err)
	}
	return dir
}

// corpus is a set of blocks cut by the default chunker from a generated
// tree, shared by the block-level benchmarks.
var corpus struct {
	once   sync.Once
	blocks [][]byte
	bytes  int64
	err    error
}

// corpusBlocks returns the shared corpus, generating it on first use.
func corpusBlocks(b *testing.B) ([][]byte, int64) {
	b.Helper()
	corpus.once.Do(func() {
		dir, err := os.MkdirTemp("", "statepack-bench-corpus-")
		if err != nil {
			corpus.err = err
			return
		}
		defer os.RemoveAll(dir)
		root := filepath.Join(dir, "data")
		if _, err := datagen.Generate(root, datagen.Options{Seed: 1, Size: corpusSize}); err != nil {
			corpus.err = err
			return
		}
		corpus.blocks, corpus.err = chunkTree(root)
		for _, blk := range corpus.blocks {
			corpus.bytes += int64(len(blk))
		}
	})
	if corpus.err != nil {
		b.Fatal(corpus.err)
	}
	return corpus.blocks, corpus.bytes
}

// chunkTree cuts every regular file under root with the default chunker
// parameters and returns copies of the chunks.
func chunkTree(root string) ([][]byte, error) {
	var out [][]byte
	ck, err := chunker.New(nil, chunker.DefaultParams())
	if err != nil {
		return nil, err
	}
	err = walkFiles(root, func(p string) error {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		ck.Reset(f)
		for {
			c, err := ck.Next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			out = append(out, bytes.Clone(c))
		}
	})
	return out, err
}

// walkFiles calls fn for every regular file under root, in lexical order.
func walkFiles(root string, fn func(path string) error) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			return fn(p)
		}
		return nil
	})
}

// randomBytes returns n bytes from a seeded generator.
func randomBytes(n int, seed uint64) []byte {
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	buf := make([]byte, n)
	_, _ = r.Read(buf)
	return buf
}

// BenchmarkHash measures BLAKE3-256 of 64 KiB blocks (format.Hash), the
// id of every block and object.
func BenchmarkHash(b *testing.B) {
	data := randomBytes(blockSize, 1)
	b.SetBytes(blockSize)
	for b.Loop() {
		format.Hash(data)
	}
}

// pipelineEncoder are the encoder options of the save pipeline
// (archive/blockwriter.go).
var pipelineEncoder = archive.BlockEncoderOptions(chunker.DefaultParams().Max)

// encoderChoices are the pipeline's encoder and the alternatives the
// issue asks to decide between, measured on the same blocks.
var encoderChoices = []struct {
	name string
	opts []zstd.EOption
}{
	{"fastest", pipelineEncoder},
	{"fastest-64K-zstd-blocks", []zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true), zstd.WithEncoderCRC(false)}},
	{"fastest-fullmem", append(slices.Clone(pipelineEncoder), zstd.WithLowerEncoderMem(false))},
	{"fastest-noentropy", append(slices.Clone(pipelineEncoder), zstd.WithNoEntropyCompression(true))},
	{"default", []zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false)}},
}

// newBlockEncoder returns an encoder with opts, by default the pipeline's.
func newBlockEncoder(b *testing.B, opts ...zstd.EOption) *zstd.Encoder {
	if len(opts) == 0 {
		opts = pipelineEncoder
	}
	enc, err := zstd.NewWriter(nil, opts...)
	if err != nil {
		b.Fatal(err)
	}
	return enc
}

// blockSets are the inputs of the compression benchmarks: generated
// LocalStack-like blocks (a mix of compressible records and random
// object bodies, as datagen makes them) and purely random blocks.
func blockSets(b *testing.B) []struct {
	name   string
	blocks [][]byte
	bytes  int64
} {
	gen, n := corpusBlocks(b)
	var random [][]byte
	for i := range 64 {
		random = append(random, randomBytes(blockSize, uint64(i)))
	}
	return []struct {
		name   string
		blocks [][]byte
		bytes  int64
	}{{"localstack", gen, n}, {"random", random, 64 * blockSize}}
}

// BenchmarkCompress measures zstd on one core, block by block as the
// save pipeline compresses, with the pipeline's options ("fastest") and
// the alternatives; "ratio" is stored/raw bytes (a block that does not
// shrink is stored raw).
func BenchmarkCompress(b *testing.B) {
	for _, set := range blockSets(b) {
		for _, choice := range encoderChoices {
			b.Run(set.name+"/"+choice.name, func(b *testing.B) {
				enc := newBlockEncoder(b, choice.opts...)
				defer enc.Close()
				out := make([]byte, 0, 2*blockSize)
				var stored int64
				b.SetBytes(set.bytes)
				for b.Loop() {
					stored = 0
					for _, blk := range set.blocks {
						out = enc.EncodeAll(blk, out[:0])
						stored += int64(min(len(out), len(blk)))
					}
				}
				b.ReportMetric(float64(stored)/float64(set.bytes), "ratio")
			})
		}
	}
}

// storedBlock is a block as a pack holds it.
type storedBlock struct {
	id     format.ID
	loc    format.Location
	stored []byte
}

// storeBlocks encodes blocks the way the save pipeline does: zstd when it
// shrinks the block, raw otherwise.
func storeBlocks(b *testing.B, blocks [][]byte) []storedBlock {
	enc := newBlockEncoder(b)
	defer enc.Close()
	out := make([]storedBlock, len(blocks))
	for i, blk := range blocks {
		s := storedBlock{id: format.Hash(blk), stored: blk}
		s.loc = format.Location{Raw: uint32(len(blk)), Encoding: format.EncodingRaw}
		if z := enc.EncodeAll(blk, nil); len(z) < len(blk) {
			s.stored, s.loc.Encoding = z, format.EncodingZstd
		}
		s.loc.Stored = uint32(len(s.stored))
		out[i] = s
	}
	return out
}

// BenchmarkDecodeBlock measures what every restored or pulled block
// costs: decompression bounded by the raw length, then BLAKE3 of the
// result compared with the id.
func BenchmarkDecodeBlock(b *testing.B) {
	for _, set := range blockSets(b) {
		b.Run(set.name, func(b *testing.B) {
			stored := storeBlocks(b, set.blocks)
			dst := make([]byte, 0, chunker.DefaultParams().Max)
			b.SetBytes(set.bytes)
			for b.Loop() {
				for _, s := range stored {
					var err error
					if dst, err = format.DecodeBlock(s.id, s.loc, s.stored, dst); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// manifestEntries is the size of the manifest the design budgets for.
const manifestEntries = 100_000

// bigManifest builds a manifest of n entries shaped like a LocalStack
// DATA_DIR: directories of about 100 files each, files of 1 to 4 blocks.
func bigManifest(n int) *format.Manifest {
	rng := rand.New(rand.NewPCG(1, 2))
	m := &format.Manifest{Version: format.FormatVersion, State: "bench", Created: time.Unix(1700000000, 0).UTC()}
	mtime := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC).UnixNano()
	for d := 0; len(m.Entries) < n; d++ {
		dir := fmt.Sprintf("api_states/000000000000/us-east-1/dynamodb/table-%05d", d)
		m.Entries = append(m.Entries, format.Entry{Path: dir, Type: format.TypeDir, Mode: 0o755, MTime: mtime})
		for f := 0; f < 99 && len(m.Entries) < n; f++ {
			e := format.Entry{Path: fmt.Sprintf("%s/item-%03d.json", dir, f), Type: format.TypeFile, Mode: 0o644, MTime: mtime + int64(f)}
			for range 1 + rng.IntN(4) {
				var id format.ID
				for i := range id {
					id[i] = byte(rng.Uint32())
				}
				size := uint32(16<<10 + rng.IntN(240<<10))
				e.Blocks = append(e.Blocks, format.BlockRef{ID: id, Size: size})
				e.Size += int64(size)
			}
			m.Entries = append(m.Entries, e)
		}
	}
	// Intermediate directories, so the manifest describes a valid tree.
	for _, p := range []string{"api_states", "api_states/000000000000", "api_states/000000000000/us-east-1",
		"api_states/000000000000/us-east-1/dynamodb"} {
		m.Entries = append(m.Entries, format.Entry{Path: p, Type: format.TypeDir, Mode: 0o755, MTime: mtime})
	}
	slices.SortFunc(m.Entries, func(a, b format.Entry) int { return strings.Compare(a.Path, b.Path) })
	return m
}

// BenchmarkEncodeManifest measures encoding a 100,000-entry manifest.
func BenchmarkEncodeManifest(b *testing.B) {
	m := bigManifest(manifestEntries)
	var n int
	for b.Loop() {
		n = len(format.EncodeManifest(m))
	}
	b.ReportMetric(float64(n), "bytes")
}

// BenchmarkDecodeManifest measures decoding and validating a
// 100,000-entry manifest; "ms" is the time per decode and "budget" its
// share of the 100 ms that DESIGN.md allows.
func BenchmarkDecodeManifest(b *testing.B) {
	data := format.EncodeManifest(bigManifest(manifestEntries))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if _, err := format.DecodeManifest(data); err != nil {
			b.Fatal(err)
		}
		n++
	}
	ms := b.Elapsed().Seconds() * 1e3 / float64(max(n, 1))
	b.ReportMetric(ms, "ms")
	b.ReportMetric(ms/100, "budget")
}

// indexEntries is the size of the index the lookup benchmark searches.
const indexEntries = 1_000_000

// bigIndex builds an index of n random block ids in packs of 300 blocks
// (a 16 MiB pack of 52 KiB blocks) and returns it with its ids, and the
// heap bytes it took per entry.
func bigIndex(n int) (*archive.Index, []format.ID, float64) {
	rng := rand.NewChaCha8([32]byte{7})
	ids := make([]format.ID, n)
	for i := range ids {
		_, _ = rng.Read(ids[i][:])
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	x := archive.NewIndex()
	const perPack = 300
	for start := 0; start < n; start += perPack {
		var pack format.ID
		_, _ = rng.Read(pack[:])
		entries := make([]format.PackEntry, 0, perPack)
		for i, id := range ids[start:min(start+perPack, n)] {
			entries = append(entries, format.PackEntry{ID: id, Offset: uint32(i) * 50000, Stored: 50000, Raw: 65536, Encoding: format.EncodingZstd})
		}
		x.AddPack(pack, entries)
	}
	x.Len() // merges what is pending
	runtime.GC()
	runtime.ReadMemStats(&after)
	perEntry := float64(after.HeapAlloc-min(before.HeapAlloc, after.HeapAlloc)) / float64(n)
	runtime.KeepAlive(x)
	return x, ids, perEntry
}

// BenchmarkIndexLookup measures one lookup in an index of a million
// blocks, for a block that is there and for one that is not (what save
// asks for every new block, and push for every block of a snapshot).
// "heap-B/entry" is the index's memory per block.
func BenchmarkIndexLookup(b *testing.B) {
	x, ids, perEntry := bigIndex(indexEntries)
	rng := rand.New(rand.NewPCG(3, 4))
	hits := make([]format.ID, 1<<16)
	misses := make([]format.ID, len(hits))
	for i := range hits {
		hits[i] = ids[rng.IntN(len(ids))]
		for j := range misses[i] {
			misses[i][j] = byte(rng.Uint32())
		}
	}
	for _, c := range []struct {
		name string
		ids  []format.ID
		want bool
	}{{"hit", hits, true}, {"miss", misses, false}} {
		b.Run(c.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				if _, ok := x.Lookup(c.ids[i&(len(c.ids)-1)]); ok != c.want {
					b.Fatalf("lookup = %v, want %v", ok, c.want)
				}
				i++
			}
			b.ReportMetric(perEntry, "heap-B/entry")
		})
	}
}

// lookupEntries is the size of the index the lookup cache benchmark
// finds blocks in.
const lookupEntries = 1 << 20

// lookupRepo writes an index of n random blocks (packs of 256, index
// objects of 65,536 entries, as a big remote's) on a directory
// repository, and returns it with a sample of its block ids.
func lookupRepo(b *testing.B, n int) (*archive.Repository, []format.ID) {
	ctx := context.Background()
	be, err := dirbackend.New(filepath.Join(b.TempDir(), "remote"), true)
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := format.NewConfig(chunker.DefaultParams(), 0)
	if err != nil {
		b.Fatal(err)
	}
	r, err := archive.Init(ctx, be, cfg)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.NewChaCha8([32]byte{9})
	var sample []format.ID
	for n > 0 {
		var packs []format.IndexPack
		for k := 0; k < 1<<16 && n > 0; k += 256 {
			p := format.IndexPack{Entries: make([]format.PackEntry, min(256, n))}
			n -= len(p.Entries)
			_, _ = rng.Read(p.Pack[:])
			for j := range p.Entries {
				e := &p.Entries[j]
				_, _ = rng.Read(e.ID[:])
				e.Offset, e.Stored, e.Raw, e.Encoding = uint32(j)*40000, 40000, 65536, format.EncodingZstd
			}
			sample = append(sample, p.Entries[0].ID)
			packs = append(packs, p)
		}
		data := format.EncodeIndex(packs)
		if err := be.Put(ctx, "index/"+format.Hash(data).String(), bytes.NewReader(data), int64(len(data))); err != nil {
			b.Fatal(err)
		}
	}
	return r, sample
}

// BenchmarkLookupCache measures FindBlocks on a repository of a million
// blocks with a warm lookup cache, which is what a push to a big remote
// asks before it sends anything: "one-hit" and "one-miss" ask for one
// block, "push-256" for 256 blocks the index lacks (a 16 MiB state).
// Each lists the index, opens the cache and verifies its tables (1.3
// MiB), and reads and verifies one bucket per block. "scan" is the same
// question without a cache (every index object read), "build" a cold
// cache: every index object read and the cache written.
func BenchmarkLookupCache(b *testing.B) {
	ctx := context.Background()
	r, sample := lookupRepo(b, lookupEntries)
	cache := filepath.Join(b.TempDir(), "cache")
	r.UseLookupCache(cache)
	rng := rand.New(rand.NewPCG(5, 6))
	absent := func(n int) map[format.ID]struct{} {
		want := map[format.ID]struct{}{}
		for len(want) < n {
			var id format.ID
			for i := range id {
				id[i] = byte(rng.Uint32())
			}
			want[id] = struct{}{}
		}
		return want
	}
	find := func(b *testing.B, r *archive.Repository, want func() map[format.ID]struct{}, found int) {
		for b.Loop() {
			got, err := r.FindBlocks(ctx, want())
			if err != nil || len(got) != found {
				b.Fatalf("found %d blocks, want %d: %v", len(got), found, err)
			}
		}
	}
	b.Run("build", func(b *testing.B) {
		for b.Loop() {
			if err := os.RemoveAll(cache); err != nil {
				b.Fatal(err)
			}
			if _, err := r.FindBlocks(ctx, absent(1)); err != nil {
				b.Fatal(err)
			}
		}
	})
	if _, err := r.FindBlocks(ctx, absent(1)); err != nil {
		b.Fatal(err)
	}
	b.Run("one-hit", func(b *testing.B) {
		find(b, r, func() map[format.ID]struct{} {
			return map[format.ID]struct{}{sample[rng.IntN(len(sample))]: {}}
		}, 1)
	})
	b.Run("one-miss", func(b *testing.B) { find(b, r, func() map[format.ID]struct{} { return absent(1) }, 0) })
	b.Run("push-256", func(b *testing.B) { find(b, r, func() map[format.ID]struct{} { return absent(256) }, 0) })
	plain, err := archive.Open(ctx, r.Backend())
	if err != nil {
		b.Fatal(err)
	}
	b.Run("scan", func(b *testing.B) { find(b, plain, func() map[format.ID]struct{} { return absent(256) }, 0) })
}

// timings keeps the time per operation of sibling sub-benchmarks, so the
// parent can log their ratios.
type timings map[string]time.Duration

// record stores the time per operation of b, which ran n operations.
func (t timings) record(b *testing.B, name string, n int) {
	t[name] = b.Elapsed() / time.Duration(max(n, 1))
}

// reportRatio reports t[a]/t[base] as the metric "x-base" of b when both
// were measured in this run (a sub-benchmark filter may skip the baseline).
func (t timings) reportRatio(b *testing.B, a, base string) {
	if t[a] > 0 && t[base] > 0 {
		b.ReportMetric(float64(t[a])/float64(t[base]), "x-"+base)
	}
}

// cpuTime is the user and system time this process has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCores reports the CPU time used since start per second of
// measured time, as the metric "cores": 2 means both cores of the target
// machine were busy.
func reportCores(b *testing.B, start time.Duration) {
	b.ReportMetric((cpuTime()-start).Seconds()/b.Elapsed().Seconds(), "cores")
}

// settle flushes dirty pages outside the timer, so that an operation that
// syncs (the local store flushes the file system before it moves a ref)
// does not pay for what an earlier iteration or baseline left unwritten.
func settle(b *testing.B) {
	b.StopTimer()
	syscall.Sync()
	b.StartTimer()
}

// treeBytes is the total size of the regular files under root.
func treeBytes(b *testing.B, root string) int64 {
	var n int64
	err := walkFiles(root, func(p string) error {
		fi, err := os.Stat(p)
		n += fi.Size()
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// readTree reads every file under root into w with one reused buffer.
func readTree(root string, w io.Writer, buf []byte) error {
	return walkFiles(root, func(p string) error {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.CopyBuffer(struct{ io.Writer }{w}, f, buf)
		return err
	})
}

// newStore creates an empty local store under dir.
func newStore(b *testing.B, dir string) *archive.Repository {
	be, err := dirbackend.New(dir, true)
	if err != nil {
		b.Fatal(err)
	}
	r, err := archive.OpenOrInit(context.Background(), be)
	if err != nil {
		b.Fatal(err)
	}
	return r
}

// openStore opens an existing local store, as each CLI command does.
func openStore(b *testing.B, dir string) *archive.Repository {
	be, err := dirbackend.New(dir, false)
	if err != nil {
		b.Fatal(err)
	}
	r, err := archive.Open(context.Background(), be)
	if err != nil {
		b.Fatal(err)
	}
	return r
}

// BenchmarkSave measures a cold save of a 64 MiB generated tree into a
// fresh store, next to two baselines on the same files: reading them
// (read-tree, what cp or tar must do at least) and reading them through a
// zstd stream at SpeedFastest on every core into a file (read-zstd, the
// in-process counterpart of tar -I 'zstd -1 -T0').
func BenchmarkSave(b *testing.B) {
	root := genTree(b, treeSize)
	size := treeBytes(b, root)
	t := timings{}
	b.Run("read-tree", func(b *testing.B) {
		buf := make([]byte, 1<<20)
		b.SetBytes(size)
		n := 0
		for ; b.Loop(); n++ {
			if err := readTree(root, io.Discard, buf); err != nil {
				b.Fatal(err)
			}
		}
		t.record(b, "read-tree", n)
	})
	b.Run("read-zstd", func(b *testing.B) {
		b.SetBytes(size)
		n := 0
		for ; b.Loop(); n++ {
			settle(b)
			compressTree(b, root, filepath.Join(b.TempDir(), "tree.zst"))
		}
		t.record(b, "read-zstd", n)
	})
	b.Run("save", func(b *testing.B) {
		dir := b.TempDir()
		b.SetBytes(size)
		cpu, n := cpuTime(), 0
		for ; b.Loop(); n++ {
			store := filepath.Join(dir, fmt.Sprint(n))
			settle(b)
			r := newStore(b, store)
			if _, err := saver.Save(context.Background(), r, saver.Options{DataDir: root, State: "bench", CacheDir: filepath.Join(store, "cache")}); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			os.RemoveAll(store)
			b.StartTimer()
		}
		t.record(b, "save", n)
		reportCores(b, cpu)
		t.reportRatio(b, "save", "read-zstd") // target < 1.0, as against tar|zstd
		t.reportRatio(b, "save", "read-tree")
	})
}

// compressTree streams every file under root through one zstd encoder
// (SpeedFastest, all cores) into the file out.
func compressTree(b *testing.B, root, out string) {
	f, err := os.Create(out)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	enc, err := zstd.NewWriter(f, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)))
	if err != nil {
		b.Fatal(err)
	}
	if err := readTree(root, enc, make([]byte, 1<<20)); err != nil {
		b.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRestore measures a cold restore of a 64 MiB generated tree
// into an empty directory, next to copy-tree, the counterpart of cp -a:
// the same files copied with their modes and times.
func BenchmarkRestore(b *testing.B) {
	root := genTree(b, treeSize)
	size := treeBytes(b, root)
	store := filepath.Join(b.TempDir(), "store")
	res, err := saver.Save(context.Background(), newStore(b, store), saver.Options{DataDir: root, State: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	t := timings{}
	b.Run("copy-tree", func(b *testing.B) {
		b.SetBytes(size)
		n := 0
		for ; b.Loop(); n++ {
			dst := filepath.Join(b.TempDir(), "copy")
			settle(b)
			if err := copyTree(root, dst); err != nil {
				b.Fatal(err)
			}
		}
		t.record(b, "copy-tree", n)
	})
	b.Run("restore", func(b *testing.B) {
		b.SetBytes(size)
		cpu, n := cpuTime(), 0
		for ; b.Loop(); n++ {
			dst := filepath.Join(b.TempDir(), "restored")
			settle(b)
			r := openStore(b, store)
			if _, err := restorer.Restore(context.Background(), r, restorer.Options{DataDir: dst, Snapshot: res.Snapshot}); err != nil {
				b.Fatal(err)
			}
		}
		t.record(b, "restore", n)
		reportCores(b, cpu)
		t.reportRatio(b, "restore", "copy-tree") // target <= 1.2, as against cp -a
	})
}

// copyTree copies the tree under src to dst (which must not exist) with
// modes, times and symlinks, as cp -a does.
func copyTree(src, dst string) error {
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		to := filepath.Join(dst, p[len(src):])
		switch {
		case d.IsDir():
			return os.Mkdir(to, 0o700)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, to)
		}
		return copyFile(p, to)
	})
	if err != nil {
		return err
	}
	return copyDirMeta(src, dst)
}

// copyFile copies one regular file with its mode and times.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chtimes(dst, fi.ModTime(), fi.ModTime())
}

// copyDirMeta gives the directories of dst the modes and times of those
// of src, deepest first, once their content is in place.
func copyDirMeta(src, dst string) error {
	var dirs []string
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return err
	})
	for _, p := range slices.Backward(dirs) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, p[len(src):])
		if err := os.Chmod(to, fi.Mode().Perm()); err != nil {
			return err
		}
		if err := os.Chtimes(to, fi.ModTime(), fi.ModTime()); err != nil {
			return err
		}
	}
	return err
}

// BenchmarkReadPackBlocks measures the verify path of a pull: reading
// every block of a 64 MiB generated tree from its packs by coalesced
// ranges, decompressing and hashing each. Run with -benchmem: the span
// and block buffers come from a bounded free list, so allocations per
// read stay a few small ones per pack, not a span buffer per range.
func BenchmarkReadPackBlocks(b *testing.B) {
	ctx := context.Background()
	root := genTree(b, treeSize)
	store := filepath.Join(b.TempDir(), "store")
	res, err := saver.Save(ctx, newStore(b, store), saver.Options{DataDir: root, State: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	r := openStore(b, store)
	if _, err := r.LoadIndex(ctx); err != nil {
		b.Fatal(err)
	}
	m, err := r.LoadManifest(ctx, res.Snapshot)
	if err != nil {
		b.Fatal(err)
	}
	seen := map[format.ID]bool{}
	var all []archive.BlockAt
	var raw int64
	m.AllBlocks(func(_ *format.Entry, ref format.BlockRef) {
		if seen[ref.ID] {
			return
		}
		seen[ref.ID] = true
		loc, ok := r.Index().Lookup(ref.ID)
		if !ok {
			b.Fatalf("block %s not indexed", ref.ID.Short())
		}
		all = append(all, archive.BlockAt{ID: ref.ID, Loc: loc})
		raw += int64(ref.Size)
	})
	groups := archive.GroupByPack(all)
	b.SetBytes(raw)
	b.ReportAllocs()
	for b.Loop() {
		for pack, blocks := range groups {
			if err := r.ReadPackBlocks(ctx, pack, blocks, func(archive.BlockAt, []byte, []byte) error { return nil }); err != nil {
				b.Fatal(err)
			}
		}
	}
}
