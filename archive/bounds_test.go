package archive

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/chunker"
	"github.com/statepack/statepack/remote/dirbackend"
)

// Bounds on what remote objects may expand into (issue 15, item 5): each
// object is bounded by what statepack itself writes of its kind, before
// anything is read or allocated for it (invariant 5).

// newBoundsRepo returns an empty repository on a directory backend, and
// the directory.
func NewBoundsRepo(t *testing.T) (*Repository, string) { return NewBoundsRepoFor(t) }

// newBoundsRepoFor is newBoundsRepo for a test, benchmark or fuzz target.
func NewBoundsRepoFor(t testing.TB) (*Repository, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	be, err := dirbackend.New(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := format.NewConfig(chunker.DefaultParams(), 0)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Init(context.Background(), be, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r, dir
}

// putList stores a list block of n entries, each a 1-byte block, and
// returns its reference.
func putList(t *testing.T, r *Repository, n int) format.BlockRef {
	t.Helper()
	refs := make([]format.BlockRef, n)
	for i := range refs {
		refs[i] = format.BlockRef{ID: format.Hash([]byte{byte(i), byte(i >> 8)}), Size: 1}
	}
	return PutListOf(t, r, refs)
}

// putListOf stores the list block of refs, with extra blocks beside it in
// one pack, and returns the list's reference.
func PutListOf(t *testing.T, r *Repository, refs []format.BlockRef, extra ...[]byte) format.BlockRef {
	t.Helper()
	list := format.EncodeList(nil, refs)
	id := format.Hash(list)
	b := format.NewPackBuilder(1 << 20)
	for _, x := range extra {
		b.Add(format.Hash(x), x, len(x), format.EncodingRaw)
	}
	b.Add(id, list, len(list), format.EncodingRaw)
	pack, data, entries := b.Finish()
	ctx := context.Background()
	if err := r.PutPack(ctx, pack, data); err != nil {
		t.Fatal(err)
	}
	if _, err := r.PutIndex(ctx, []format.IndexPack{{Pack: pack, Entries: entries}}); err != nil {
		t.Fatal(err)
	}
	return format.BlockRef{ID: id, Size: uint32(len(list))}
}

// listedManifest is a manifest of one file of size bytes whose blocks
// are in list named times.
func ListedManifest(list format.BlockRef, times int, size int64) []byte {
	lists := make([]format.BlockRef, times)
	for i := range lists {
		lists[i] = list
	}
	return format.EncodeManifest(&format.Manifest{Version: format.ManifestV2, State: "s", Entries: []format.Entry{
		{Path: "f", Type: format.TypeFile, Mode: 0o644, Size: size, Lists: lists},
	}})
}

// TestDecodeManifestListBounds: a manifest's lists expand to at most
// listEntries blocks per reference (what statepack writes, however often
// one list is named), and a file's lists to at least one byte and at most
// MaxBlockSize per block; all checked at decode, before any list is read.
func TestDecodeManifestListBounds(t *testing.T) {
	full := format.BlockRef{ID: format.Hash([]byte("full")), Size: format.MaxListEntries * format.ListEntrySize}
	small := format.BlockRef{ID: format.Hash([]byte("small")), Size: format.ListEntries * format.ListEntrySize}
	for _, tc := range []struct {
		name   string
		data   []byte
		wantIn string // "" for accepted
	}{
		{"a full list named 7,900 times", ListedManifest(full, 7900, 7900*format.MaxListEntries), "expand to 32358400 blocks"},
		{"a full list named twice", ListedManifest(full, 2, 2*format.MaxListEntries), "expand to 8192 blocks"},
		{"more blocks than bytes", ListedManifest(small, 1, format.ListEntries-1), "32 blocks for a file of 31 bytes"},
		{"more bytes than blocks can hold", ListedManifest(small, 1, format.ListEntries*format.MaxBlockSize+1), "32 blocks for a file of"},
		{"a list of 32 named 1,000 times (a file of zeros)", ListedManifest(small, 1000, 1000*format.ListEntries*(256<<10)), ""},
		{"one block a byte", ListedManifest(small, 3, 3*format.ListEntries), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := format.DecodeManifest(tc.data)
			switch {
			case tc.wantIn == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.wantIn != "" && (!errors.Is(err, format.ErrCorrupt) || !strings.Contains(err.Error(), tc.wantIn)):
				t.Fatalf("got %v, want corrupt naming %q", err, tc.wantIn)
			}
		})
	}
}

// allocated returns the bytes fn allocates.
func Allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestLoadManifestListBombAllocs: a 276 KB manifest naming one list block
// of 4,096 entries 7,900 times made LoadManifest allocate 1.1 GB for 32
// million block references; it is refused having allocated little more
// than the manifest. A file whose lists do not add up to its size is
// refused before its blocks are allocated.
func TestLoadManifestListBombAllocs(t *testing.T) {
	r, _ := NewBoundsRepo(t)
	ctx := context.Background()
	full := putList(t, r, format.MaxListEntries)
	small := putList(t, r, format.ListEntries)
	for _, tc := range []struct {
		name   string
		data   []byte
		wantIn string
		limit  uint64
	}{
		{"7,900 references to a full list", ListedManifest(full, 7900, 7900*format.MaxListEntries), "expand to", 4 << 20},
		{"lists that do not add up", ListedManifest(small, 7900, 7900*format.ListEntries+1), "add up to", 4 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := r.PutManifestBytes(ctx, tc.data)
			if err != nil {
				t.Fatal(err)
			}
			var lerr error
			alloc := Allocated(func() { _, lerr = r.LoadManifest(ctx, id) })
			if !errors.Is(lerr, format.ErrCorrupt) || !strings.Contains(lerr.Error(), tc.wantIn) {
				t.Errorf("got %v, want corrupt naming %q", lerr, tc.wantIn)
			}
			if alloc > tc.limit {
				t.Errorf("allocated %d MiB for a %d KiB manifest, want under %d MiB", alloc>>20, len(tc.data)>>10, tc.limit>>20)
			}
		})
	}
}

// TestPutIndexSplitsLargePacks: a pack of more than maxIndexEntries
// blocks (a pack of tiny blocks) has its entries spread over several
// index objects, so that none exceeds what readers accept, and every
// entry is found again.
func TestPutIndexSplitsLargePacks(t *testing.T) {
	r, dir := NewBoundsRepo(t)
	ctx := context.Background()
	const n = 3*format.MaxIndexEntries + 7
	entries := make([]format.PackEntry, n)
	for i := range entries {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], uint32(i))
		entries[i] = format.PackEntry{ID: format.Hash(b[:]), Offset: uint32(i) * 8, Stored: 8, Raw: 8}
	}
	small := []format.PackEntry{{ID: format.Hash([]byte("small")), Stored: 8, Raw: 8}}
	pack, other := format.Hash([]byte("big pack")), format.Hash([]byte("small pack"))
	names, err := r.PutIndex(ctx, []format.IndexPack{{Pack: pack, Entries: entries}, {Pack: other, Entries: small}})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		st, err := os.Stat(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > format.MaxIndexObjectSize {
			t.Errorf("%s has %d bytes, over the %d readers accept", name, st.Size(), format.MaxIndexObjectSize)
		}
	}
	r2, err := Open(ctx, r.Backend())
	if err != nil {
		t.Fatal(err)
	}
	idx, err := r2.LoadIndex(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if idx.Len() != n+1 {
		t.Errorf("index holds %d blocks, want %d", idx.Len(), n+1)
	}
	for _, e := range []format.PackEntry{entries[0], entries[n-1], small[0]} {
		if _, ok := idx.Lookup(e.ID); !ok {
			t.Errorf("block %s lost", e.ID.Short())
		}
	}
}

// sparseObject makes object name in the directory repository dir a
// sparse file of size bytes ending with tail.
func sparseObject(t *testing.T, dir, name string, size int64, tail []byte) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, size); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(tail, size-int64(len(tail))); err != nil {
		t.Fatal(err)
	}
}

// TestOversizedIndexObject: an index object larger than any statepack
// writes is refused by its size before it is read, whichever reader
// meets it: loading the index, verify, and FindBlocks.
func TestOversizedIndexObject(t *testing.T) {
	for _, tc := range []struct {
		name string
		read func(r *Repository) error
	}{
		{"LoadIndex", func(r *Repository) error { _, err := r.LoadIndex(context.Background()); return err }},
		{"FindBlocks", func(r *Repository) error {
			_, err := r.FindBlocks(context.Background(), map[format.ID]struct{}{format.Hash([]byte("x")): {}})
			return err
		}},
		{"ReadIndexObject", func(r *Repository) error {
			_, err := r.ReadIndexObject(context.Background(), format.Hash([]byte("oversized")))
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, dir := NewBoundsRepo(t)
			name := format.IndexName(format.Hash([]byte("oversized")))
			sparseObject(t, dir, name, 100<<20, []byte(format.IndexMagic))
			var err error
			alloc := Allocated(func() { err = tc.read(r) })
			if !errors.Is(err, format.ErrCorrupt) || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "larger than 5308424 bytes") {
				t.Errorf("got %v, want corrupt naming %s as too large", err, name)
			}
			if alloc > 1<<20 {
				t.Errorf("allocated %d MiB refusing a 100 MiB index object", alloc>>20)
			}
		})
	}
}

// TestReadPackTrailerStreams: a footer claiming as many entries as its
// pack could hold costs what its valid entries do, not what it claims:
// a trailer of zeros (a sparse file) is refused at its first entry; a
// valid trailer reads back as DecodePackTrailer decodes it.
func TestReadPackTrailerStreams(t *testing.T) {
	r, dir := NewBoundsRepo(t)
	ctx := context.Background()
	const size = 64 << 20
	n := uint32((size - format.PackFooterSize - 100) / (format.PackEntrySize + 1))
	footer := append(binary.LittleEndian.AppendUint32(nil, n), format.PackMagic...)
	sparse := format.Hash(footer)
	sparseObject(t, dir, format.PackName(sparse), size, footer)
	var err error
	alloc := Allocated(func() { _, err = r.ReadPackTrailer(ctx, sparse, size) })
	if !errors.Is(err, format.ErrCorrupt) || !strings.Contains(err.Error(), "entry 0: empty block") {
		t.Errorf("got %v, want the first entry refused", err)
	}
	if alloc > 1<<20 {
		t.Errorf("allocated %d MiB for a trailer claiming %d entries", alloc>>20, n)
	}

	b := format.NewPackBuilder(1 << 20)
	for i := range 5000 {
		block := []byte(strings.Repeat("x", 1+i%7))
		b.Add(format.Hash(append(block, byte(i), byte(i>>8))), block, len(block), format.EncodingRaw)
	}
	id, data, _ := b.Finish()
	if err := r.PutPack(ctx, id, data); err != nil {
		t.Fatal(err)
	}
	got, err := r.ReadPackTrailer(ctx, id, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	tsize, _ := format.PackTrailerSize(data[len(data)-format.PackFooterSize:], int64(len(data)))
	want, err := format.DecodePackTrailer(data[int64(len(data))-tsize:], int64(len(data)))
	if err != nil || len(got) != len(want) || got[0] != want[0] || got[len(got)-1] != want[len(want)-1] {
		t.Errorf("streamed trailer of %d entries differs from the decoded %d (%v)", len(got), len(want), err)
	}
}

// TestPackTrailerSizeBounds: a footer may claim at most one entry per
// stored byte of its pack.
func TestPackTrailerSizeBounds(t *testing.T) {
	footer := func(n uint32) []byte { return append(binary.LittleEndian.AppendUint32(nil, n), format.PackMagic...) }
	for _, tc := range []struct {
		name string
		n    uint32
		size int64
		ok   bool
	}{
		{"empty pack", 0, format.PackFooterSize, true},
		{"one byte a block", 10, 10*(format.PackEntrySize+1) + format.PackFooterSize, true},
		{"blocks of no bytes", 10, 10*format.PackEntrySize + format.PackFooterSize, false},
		{"47M entries in a 2 GiB pack", 47_000_000, 47_000_000*format.PackEntrySize + 108, false},
		{"over the reader's bound", 1, format.MaxPackSize + 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := format.PackTrailerSize(footer(tc.n), tc.size)
			if (err == nil) != tc.ok {
				t.Errorf("got %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestLargeManifestHashedFirst: a snapshot object larger than hashFirst
// is hashed as it streams before it is held, so a sparse 100 MiB file
// named as a snapshot costs little to refuse (it was read whole), and a
// real manifest that large still loads.
func TestLargeManifestHashedFirst(t *testing.T) {
	r, dir := NewBoundsRepo(t)
	ctx := context.Background()
	sparse := format.Hash([]byte("a sparse snapshot"))
	sparseObject(t, dir, format.SnapshotName(sparse), 100<<20, []byte("SPM1"))
	var err error
	alloc := Allocated(func() { _, err = r.LoadManifestUnexpanded(ctx, sparse) })
	var ie *format.IntegrityError
	if !errors.As(err, &ie) {
		t.Errorf("got %v, want the snapshot named as damaged", err)
	}
	if alloc > 2*hashFirst {
		t.Errorf("allocated %d MiB refusing a 100 MiB snapshot", alloc>>20)
	}

	m := &format.Manifest{Version: format.ManifestV1, State: "big"}
	for i := range 250_000 {
		p := fmt.Sprintf("f%07d", i)
		m.Entries = append(m.Entries, format.Entry{Path: p, Type: format.TypeFile, Mode: 0o644, Size: 1, Blocks: []format.BlockRef{{ID: format.Hash([]byte(p)), Size: 1}}})
	}
	data := format.EncodeManifest(m)
	if len(data) <= hashFirst {
		t.Fatalf("manifest of %d bytes: not past hashFirst", len(data))
	}
	id, err := r.PutManifestBytes(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.LoadManifestUnexpanded(ctx, id)
	if err != nil || len(got.Entries) != len(m.Entries) {
		t.Fatalf("a real %d MiB manifest: %v", len(data)>>20, err)
	}
}

// TestBlockListsWalkWithoutExpanding: a manifest may name one list block
// of 32 entries a hundred thousand times (3.6 MB, as statepack writes a
// 3.2 million-block file of zeros): expanding it takes 115 MB, walking it
// (verify, show, pull without restore) takes what the manifest and its
// one list block do, and sees every block as AllBlocks of the expanded
// manifest does.
func TestBlockListsWalkWithoutExpanding(t *testing.T) {
	r, _ := NewBoundsRepo(t)
	ctx := context.Background()
	list := putList(t, r, format.ListEntries)
	const times = 100_000
	id, err := r.PutManifestBytes(ctx, ListedManifest(list, times, times*format.ListEntries))
	if err != nil {
		t.Fatal(err)
	}
	var m *format.Manifest
	var lists *format.BlockLists
	alloc := Allocated(func() { m, lists, err = r.LoadManifestLists(ctx, id) })
	if err != nil {
		t.Fatal(err)
	}
	if alloc > 24<<20 {
		t.Errorf("LoadManifestLists allocated %d MiB, want what the 3.6 MB manifest takes", alloc>>20)
	}
	walked := 0
	alloc = Allocated(func() { lists.Each(m, func(*format.Entry, format.BlockRef) { walked++ }) })
	if want := times * (format.ListEntries + 1); walked != want || alloc > 1<<20 {
		t.Errorf("walked %d blocks allocating %d KiB, want %d allocating nothing", walked, alloc>>10, want)
	}
	if n := m.Entries[0].BlockCount(); n != times*format.ListEntries {
		t.Errorf("BlockCount = %d, want %d", n, times*format.ListEntries)
	}
	if d := lists.Distinct(m); len(d) != format.ListEntries {
		t.Errorf("%d distinct blocks, want %d", len(d), format.ListEntries)
	}
	if err := lists.Expand(m); err != nil || len(m.Entries[0].Blocks) != times*format.ListEntries {
		t.Fatalf("Expand: %v, %d blocks", err, len(m.Entries[0].Blocks))
	}
	expanded := 0
	m.AllBlocks(func(*format.Entry, format.BlockRef) { expanded++ })
	if expanded != walked {
		t.Errorf("AllBlocks sees %d blocks, Each %d", expanded, walked)
	}
}
