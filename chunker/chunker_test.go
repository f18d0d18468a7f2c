package chunker

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.json from the current chunker (a repository format change)")

const goldenPath = "testdata/golden.json"

// smallParams are the smallest valid bounds, so short inputs still cut into
// many chunks.
var smallParams = Params{Min: 64, Avg: 256, Max: 1024}

// randomData returns n bytes of a splitmix64 stream from seed. The tests use
// their own generator, not math/rand, so the golden inputs can never change
// under them with a Go release.
func randomData(seed uint64, n int) []byte {
	b := make([]byte, n+8)
	s := seed
	for i := 0; i < n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], splitmix64(&s))
	}
	return b[:n:n]
}

// textData returns n bytes of repetitive, log-like text with small
// variations: the low-entropy content (JSON state files, logs) that a real
// data directory is full of.
func textData(n int) []byte {
	var b bytes.Buffer
	s := uint64(42)
	regions := []string{"us-east-1", "eu-west-1", "ap-south-1"}
	for i := 0; b.Len() < n; i++ {
		r := splitmix64(&s)
		fmt.Fprintf(&b, `{"id": %d, "table": "orders", "region": %q, "status": "active", "retries": %d}`+"\n",
			i, regions[r%3], (r>>8)%4)
	}
	return b.Bytes()[:n:n]
}

var (
	random8M  = sync.OnceValue(func() []byte { return randomData(1, 8<<20) })
	random16M = sync.OnceValue(func() []byte { return randomData(2, 16<<20) })
	random64M = sync.OnceValue(func() []byte { return randomData(3, 64<<20) })
	text4M    = sync.OnceValue(func() []byte { return textData(4 << 20) })
)

// cutAll reads r to the end with a Chunker and returns the chunk lengths,
// checking that the chunks put back together are want.
func cutAll(t testing.TB, c *Chunker, r io.Reader, want []byte) []int {
	t.Helper()
	c.Reset(r)
	var lengths []int
	var got []byte
	for {
		chunk, err := c.Next()
		if err == io.EOF {
			if chunk != nil {
				t.Fatalf("Next returned %d bytes with io.EOF", len(chunk))
			}
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if len(chunk) == 0 {
			t.Fatalf("Next returned an empty chunk")
		}
		if cap(chunk) != len(chunk) {
			t.Fatalf("chunk capacity %d exceeds its length %d: appending would overwrite the buffer", cap(chunk), len(chunk))
		}
		lengths = append(lengths, len(chunk))
		got = append(got, chunk...)
	}
	if _, err := c.Next(); err != io.EOF {
		t.Fatalf("Next after the end = %v, want io.EOF again", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("concatenated chunks (%d bytes) differ from the input (%d bytes)", len(got), len(want))
	}
	return lengths
}

// checkBounds checks that lengths cut n bytes into chunks within
// [Min, Max], except the last, which may be shorter.
func checkBounds(t testing.TB, lengths []int, n int, p Params) {
	t.Helper()
	sum := 0
	for i, l := range lengths {
		sum += l
		if l > p.Max || l <= 0 || (l < p.Min && i != len(lengths)-1) {
			t.Fatalf("chunk %d of %d has length %d, outside [%d, %d]", i, len(lengths), l, p.Min, p.Max)
		}
	}
	if sum != n {
		t.Fatalf("chunk lengths sum to %d, want %d", sum, n)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		p       Params
		wantErr string // substring; empty means valid
	}{
		{"default", DefaultParams(), ""},
		{"smallest", Params{Min: 64, Avg: 128, Max: 129}, ""},
		{"small", smallParams, ""},
		{"largest", Params{Min: 1 << 20, Avg: 32 << 20, Max: 64 << 20}, ""},
		{"min not power of two", Params{Min: 1000, Avg: 4096, Max: 10000}, ""},
		{"zero", Params{}, "minimum size 0 is below 64"},
		{"negative min", Params{Min: -1, Avg: 64 << 10, Max: 256 << 10}, "minimum size -1"},
		{"min too small", Params{Min: 63, Avg: 128, Max: 256}, "minimum size 63"},
		{"max too large", Params{Min: 1 << 20, Avg: 32 << 20, Max: 64<<20 + 1}, "maximum size 67108865"},
		{"avg equals min", Params{Min: 4096, Avg: 4096, Max: 8192}, "average size 4096 must be greater than minimum size 4096"},
		{"avg below min", Params{Min: 8192, Avg: 4096, Max: 16384}, "average size 4096"},
		{"max equals avg", Params{Min: 1024, Avg: 4096, Max: 4096}, "maximum size 4096 must be greater than average size 4096"},
		{"max below avg", Params{Min: 1024, Avg: 4096, Max: 2048}, "maximum size 2048"},
		{"avg not power of two", Params{Min: 1024, Avg: 5000, Max: 10000}, "average size 5000 is not a power of two"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate(%v) = %v, want nil", tt.p, err)
				}
				c, err := New(bytes.NewReader(nil), tt.p)
				if err != nil {
					t.Fatalf("New(%v) = %v", tt.p, err)
				}
				if c.Params() != tt.p {
					t.Fatalf("Params() = %v, want %v", c.Params(), tt.p)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate(%v) = %v, want an error containing %q", tt.p, err, tt.wantErr)
			}
			if _, err := New(bytes.NewReader(nil), tt.p); err == nil {
				t.Fatalf("New(%v) accepted invalid params", tt.p)
			}
			if _, err := Boundaries(nil, tt.p); err == nil {
				t.Fatalf("Boundaries(%v) accepted invalid params", tt.p)
			}
		})
	}
}

func TestDefaultParams(t *testing.T) {
	want := Params{Min: 16384, Avg: 65536, Max: 262144}
	if got := DefaultParams(); got != want {
		t.Fatalf("DefaultParams() = %v, want %v", got, want)
	}
}

// TestMasks pins the normalization level 2 masks: log2(Avg)±2 top bits.
func TestMasks(t *testing.T) {
	tests := []struct {
		avg          int
		maskS, maskL uint64
	}{
		{256, 0xffc0000000000000, 0xfc00000000000000},      // 10 and 6 bits
		{64 << 10, 0xffffc00000000000, 0xfffc000000000000}, // 18 and 14 bits
		{32 << 20, 0xffffffe000000000, 0xfffffe0000000000}, // 27 and 23 bits
		{128, 0xff80000000000000, 0xf800000000000000},      // 9 and 5 bits
	}
	for _, tt := range tests {
		p := Params{Min: 64, Avg: tt.avg, Max: 2 * tt.avg}
		s, l := p.masks()
		if s != tt.maskS || l != tt.maskL {
			t.Errorf("avg %d: masks %#x, %#x, want %#x, %#x", tt.avg, s, l, tt.maskS, tt.maskL)
		}
	}
}

// goldenCase is one pinned input: how to make it, the params, and the chunk
// lengths format 1 cuts it into.
type goldenCase struct {
	Name        string `json:"name"`
	Params      Params `json:"params"`
	Size        int    `json:"size"`
	InputSHA256 string `json:"input_sha256"`
	Lengths     []int  `json:"lengths"`
}

type goldenFile struct {
	Format     int          `json:"format"`
	GearSeed   string       `json:"gear_seed"`
	GearSHA256 string       `json:"gear_sha256"`
	Cases      []goldenCase `json:"cases"`
}

// goldenInputs are the pinned inputs: random data at several params,
// low-entropy text, all zeros (every chunk hits Max), and odd sizes.
var goldenInputs = []struct {
	name string
	p    Params
	data func() []byte
}{
	{"random-8MiB-default", DefaultParams(), random8M},
	{"random-8MiB-avg8K", Params{Min: 2 << 10, Avg: 8 << 10, Max: 32 << 10}, random8M},
	{"random-8MiB-avg32K", Params{Min: 8 << 10, Avg: 32 << 10, Max: 128 << 10}, random8M},
	{"random-8MiB-avg256K", Params{Min: 64 << 10, Avg: 256 << 10, Max: 1 << 20}, random8M},
	{"random-8MiB-min-not-avg/4", Params{Min: 5000, Avg: 64 << 10, Max: 100000}, random8M},
	{"random-1000001B-default", DefaultParams(), func() []byte { return random8M()[:1000001] }},
	{"random-256KiB-small", smallParams, func() []byte { return random8M()[:256<<10] }},
	{"text-4MiB-default", DefaultParams(), text4M},
	{"text-256KiB-small", smallParams, func() []byte { return text4M()[:256<<10] }},
	{"zero-1MiB-default", DefaultParams(), func() []byte { return make([]byte, 1<<20) }},
	{"zero-10000B-small", smallParams, func() []byte { return make([]byte, 10000) }},
}

func gearDigest() string {
	var b [256 * 8]byte
	for i, v := range gear {
		binary.LittleEndian.PutUint64(b[8*i:], v)
	}
	sum := sha256.Sum256(b[:])
	return hex.EncodeToString(sum[:])
}

func computeGolden(t *testing.T) goldenFile {
	g := goldenFile{
		Format:     1,
		GearSeed:   fmt.Sprintf("%#016x", uint64(gearSeed)),
		GearSHA256: gearDigest(),
	}
	for _, in := range goldenInputs {
		data := in.data()
		lengths, err := Boundaries(data, in.p)
		if err != nil {
			t.Fatalf("%s: %v", in.name, err)
		}
		sum := sha256.Sum256(data)
		g.Cases = append(g.Cases, goldenCase{
			Name:        in.name,
			Params:      in.p,
			Size:        len(data),
			InputSHA256: hex.EncodeToString(sum[:]),
			Lengths:     lengths,
		})
	}
	return g
}

// encodeGolden writes one case per line so that a diff of the file shows
// which case moved.
func encodeGolden(g goldenFile) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "{\n  \"format\": %d,\n  \"gear_seed\": %q,\n  \"gear_sha256\": %q,\n  \"cases\": [\n",
		g.Format, g.GearSeed, g.GearSHA256)
	for i, c := range g.Cases {
		line, err := json.Marshal(c)
		if err != nil {
			panic(err)
		}
		b.WriteString("    ")
		b.Write(line)
		if i < len(g.Cases)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("  ]\n}\n")
	return b.Bytes()
}

// TestGolden pins chunk boundaries, which are repository format 1: if this
// fails, existing repositories would stop deduplicating against new saves.
// Rewrite the file with -update only together with a format version bump.
func TestGolden(t *testing.T) {
	got := computeGolden(t)
	if *update {
		if err := os.MkdirAll(filepath.Dir(goldenPath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenPath, encodeGolden(got), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", goldenPath)
		return
	}
	raw, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatalf("%v (generate it with go test ./chunker -update)", err)
	}
	var want goldenFile
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatalf("decode %s: %v", goldenPath, err)
	}
	if want.Format != 1 {
		t.Fatalf("%s is for format %d, this chunker is format 1", goldenPath, want.Format)
	}
	if got.GearSeed != want.GearSeed || got.GearSHA256 != want.GearSHA256 {
		t.Fatalf("gear table changed: seed %s digest %s, golden seed %s digest %s: this breaks repository format 1",
			got.GearSeed, got.GearSHA256, want.GearSeed, want.GearSHA256)
	}
	wantCases := map[string]goldenCase{}
	for _, c := range want.Cases {
		wantCases[c.Name] = c
	}
	if len(wantCases) != len(got.Cases) {
		t.Errorf("%s has %d cases, the test makes %d", goldenPath, len(wantCases), len(got.Cases))
	}
	for _, g := range got.Cases {
		t.Run(g.Name, func(t *testing.T) {
			w, ok := wantCases[g.Name]
			switch {
			case !ok:
				t.Fatalf("case missing from %s", goldenPath)
			case w.Params != g.Params || w.Size != g.Size || w.InputSHA256 != g.InputSHA256:
				t.Fatalf("the test input changed (params %v size %d sha256 %s, golden %v %d %s): fix the generator, not the golden file",
					g.Params, g.Size, g.InputSHA256, w.Params, w.Size, w.InputSHA256)
			}
			for i := range min(len(g.Lengths), len(w.Lengths)) {
				if g.Lengths[i] != w.Lengths[i] {
					t.Fatalf("chunk %d has length %d, golden %d: boundaries changed, which breaks repository format 1",
						i, g.Lengths[i], w.Lengths[i])
				}
			}
			if len(g.Lengths) != len(w.Lengths) {
				t.Fatalf("%d chunks, golden %d: boundaries changed, which breaks repository format 1", len(g.Lengths), len(w.Lengths))
			}
			checkBounds(t, g.Lengths, g.Size, g.Params)
		})
	}
}

// TestGearTable pins the first gear values, so a change to splitmix64 or the
// seed is caught with a precise message even before the golden vectors.
func TestGearTable(t *testing.T) {
	// splitmix64's published first output for seed 0 checks the generator.
	var s uint64
	if got := splitmix64(&s); got != 0xe220a8397b1dcdaf {
		t.Fatalf("splitmix64(0) = %#x, want 0xe220a8397b1dcdaf", got)
	}
	if gear != newGear(gearSeed) {
		t.Fatal("gear differs from newGear(gearSeed)")
	}
	seen := map[uint64]bool{}
	for _, v := range gear {
		if seen[v] {
			t.Fatalf("gear value %#x repeats", v)
		}
		seen[v] = true
	}
}

// readers wraps data in the reader shapes a Chunker must cope with; each
// must give the same boundaries.
var readers = []struct {
	name string
	wrap func([]byte) io.Reader
}{
	{"bytes", func(b []byte) io.Reader { return bytes.NewReader(b) }},
	{"one-byte", func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) }},
	{"half", func(b []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) }},
	{"data-err", func(b []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) }},
	{"data-err-one-byte", func(b []byte) io.Reader { return iotest.DataErrReader(iotest.OneByteReader(bytes.NewReader(b))) }},
	{"stutter", func(b []byte) io.Reader { return &stutterReader{r: bytes.NewReader(b)} }},
}

// stutterReader returns (0, nil) before every read of odd length, the
// legal-but-unhelpful reader the io.Reader contract allows.
type stutterReader struct {
	r     io.Reader
	stall bool
}

func (s *stutterReader) Read(p []byte) (int, error) {
	s.stall = !s.stall
	if s.stall {
		return 0, nil
	}
	if len(p) > 7777 {
		p = p[:7777]
	}
	return s.r.Read(p)
}

func TestReaders(t *testing.T) {
	inputs := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"one byte", []byte{7}},
		{"random 3MiB", random8M()[:3<<20]},
		{"text 1MiB", text4M()[:1<<20]},
		{"zero 600KiB", make([]byte, 600<<10)},
		{"random Min", random8M()[:16<<10]},
		{"random Min+1", random8M()[:16<<10+1]},
		{"random Max", random8M()[:256<<10]},
		{"random Max+1", random8M()[:256<<10+1]},
		{"random 2Max+1MiB", random8M()[:2*(256<<10)+1<<20]},
	}
	for _, p := range []Params{DefaultParams(), smallParams} {
		for _, in := range inputs {
			want, err := Boundaries(in.data, p)
			if err != nil {
				t.Fatal(err)
			}
			checkBounds(t, want, len(in.data), p)
			c, err := New(nil, p)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range readers {
				t.Run(fmt.Sprintf("%v/%s/%s", p, in.name, r.name), func(t *testing.T) {
					got := cutAll(t, c, r.wrap(in.data), in.data)
					if !slices.Equal(got, want) {
						t.Fatalf("boundaries %v differ from Boundaries %v", got, want)
					}
				})
			}
		}
	}
}

func TestEmptyReader(t *testing.T) {
	c, err := New(bytes.NewReader(nil), DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if chunk, err := c.Next(); chunk != nil || err != io.EOF {
			t.Fatalf("Next on an empty reader = %d bytes, %v; want nil, io.EOF", len(chunk), err)
		}
	}
}

// TestReadError checks that a failing reader's error comes back wrapped,
// stays, and is never preceded by a truncated chunk posing as the last one.
func TestReadError(t *testing.T) {
	errBoom := errors.New("boom")
	data := random8M()[:2<<20]
	p := DefaultParams()
	all, _ := Boundaries(data, p)
	for _, k := range []int{0, 1, 100 << 10, 1 << 20, 1<<20 + 12345, 2<<20 - 1} {
		t.Run(fmt.Sprint(k), func(t *testing.T) {
			r := io.MultiReader(bytes.NewReader(data[:k]), iotest.ErrReader(errBoom))
			c, err := New(r, p)
			if err != nil {
				t.Fatal(err)
			}
			off := 0
			for i := 0; ; i++ {
				chunk, err := c.Next()
				if err != nil {
					if !errors.Is(err, errBoom) {
						t.Fatalf("Next = %v, want an error wrapping %v", err, errBoom)
					}
					if !strings.HasPrefix(err.Error(), "chunker: read: ") {
						t.Fatalf("error %q lacks context", err)
					}
					if k-off >= p.Max {
						t.Fatalf("error at offset %d, though %d bytes were read and fix the next boundary", off, k)
					}
					if _, err2 := c.Next(); err2 != err {
						t.Fatalf("second Next = %v, want the same error %v", err2, err)
					}
					return
				}
				if k-off < p.Max {
					t.Fatalf("chunk at offset %d returned with only %d bytes read", off, k)
				}
				if len(chunk) != all[i] || !bytes.Equal(chunk, data[off:off+len(chunk)]) {
					t.Fatalf("chunk %d differs from the boundaries of the whole stream", i)
				}
				off += len(chunk)
			}
		})
	}
}

// badReader claims to read more than it was given.
type badReader struct{}

func (badReader) Read(p []byte) (int, error) { return len(p) + 1, nil }

// stuckReader never makes progress nor fails.
type stuckReader struct{}

func (stuckReader) Read([]byte) (int, error) { return 0, nil }

func TestBrokenReaders(t *testing.T) {
	tests := []struct {
		name string
		r    io.Reader
		want error
	}{
		{"invalid count", badReader{}, errBadRead},
		{"no progress", stuckReader{}, io.ErrNoProgress},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.r, smallParams)
			if err != nil {
				t.Fatal(err)
			}
			if chunk, err := c.Next(); chunk != nil || !errors.Is(err, tt.want) {
				t.Fatalf("Next = %d bytes, %v; want an error wrapping %v", len(chunk), err, tt.want)
			}
		})
	}
}

func hashChunks(data []byte, lengths []int) [][32]byte {
	hs := make([][32]byte, len(lengths))
	for i, l := range lengths {
		hs[i] = sha256.Sum256(data[:l])
		data = data[l:]
	}
	return hs
}

// TestEditLocality is why content-defined chunking exists: an edit changes
// only the chunks around it, and every other chunk, before and after, is the
// same block.
func TestEditLocality(t *testing.T) {
	orig := random16M()
	p := DefaultParams()
	insert := []byte("statepack edit!")
	tests := []struct {
		name string
		edit func([]byte) []byte
	}{
		{"insert 5 at 1000", func(b []byte) []byte { return splice(b, 1000, 0, insert[:5]) }},
		{"delete 5 at 1000", func(b []byte) []byte { return splice(b, 1000, 5, nil) }},
		{"insert 15 at 8MiB", func(b []byte) []byte { return splice(b, 8<<20, 0, insert) }},
		{"delete 100 at 8MiB", func(b []byte) []byte { return splice(b, 8<<20, 100, nil) }},
		{"overwrite 1 at 8MiB", func(b []byte) []byte { return splice(b, 8<<20, 1, []byte{^b[8<<20]}) }},
		{"insert 1 at start", func(b []byte) []byte { return splice(b, 0, 0, insert[:1]) }},
		{"insert 64KiB at 4MiB", func(b []byte) []byte { return splice(b, 4<<20, 0, randomData(99, 64<<10)) }},
	}
	origLengths, _ := Boundaries(orig, p)
	origHashes := hashChunks(orig, origLengths)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			edited := tt.edit(orig)
			lengths, _ := Boundaries(edited, p)
			checkBounds(t, lengths, len(edited), p)
			hashes := hashChunks(edited, lengths)
			// Multisets: count chunks only on one side.
			count := map[[32]byte]int{}
			for _, h := range origHashes {
				count[h]++
			}
			for _, h := range hashes {
				count[h]--
			}
			removed, added := 0, 0
			for _, n := range count {
				if n > 0 {
					removed += n
				} else {
					added -= n
				}
			}
			// Unchanged chunks must be a common prefix and suffix: the
			// edit disturbs one contiguous run.
			prefix := 0
			for prefix < min(len(hashes), len(origHashes)) && hashes[prefix] == origHashes[prefix] {
				prefix++
			}
			suffix := 0
			for suffix < min(len(hashes), len(origHashes))-prefix &&
				hashes[len(hashes)-1-suffix] == origHashes[len(origHashes)-1-suffix] {
				suffix++
			}
			t.Logf("%d chunks before, %d after: %d removed, %d added, %d same before the edit, %d same after",
				len(origHashes), len(hashes), removed, added, prefix, suffix)
			maxChanged := 3
			if len(edited)-len(orig) > p.Max { // a large insertion adds its own chunks
				maxChanged += (len(edited) - len(orig)) / p.Min
			}
			if removed > 3 || added > maxChanged {
				t.Errorf("%d chunks removed and %d added; want at most 3 and %d", removed, added, maxChanged)
			}
			if len(origHashes)-prefix-suffix != removed || len(hashes)-prefix-suffix != added {
				t.Errorf("changed chunks are not one contiguous run around the edit")
			}
		})
	}
}

// splice returns a copy of b with del bytes at off replaced by ins.
func splice(b []byte, off, del int, ins []byte) []byte {
	out := make([]byte, 0, len(b)-del+len(ins))
	out = append(out, b[:off]...)
	out = append(out, ins...)
	return append(out, b[off+del:]...)
}

// cutRef is the cut rule of format 1 written the plain way, one byte and
// one test at a time: the reference that cut's two-bytes-a-step loop must
// match exactly.
func cutRef(data []byte, lo, avg, hi int, maskS, maskL uint64) int {
	n := min(len(data), hi)
	if n <= lo {
		return n
	}
	var fp uint64
	for i := lo; i < n; i++ {
		fp = fp<<1 + gear[data[i]]
		mask := maskL
		if i < avg {
			mask = maskS
		}
		if fp&mask == 0 {
			return i + 1
		}
	}
	return n
}

// refBoundaries is Boundaries with cutRef.
func refBoundaries(data []byte, p Params) []int {
	maskS, maskL := p.masks()
	var lengths []int
	for len(data) > 0 {
		n := cutRef(data, p.Min, p.Avg, p.Max, maskS, maskL)
		lengths = append(lengths, n)
		data = data[n:]
	}
	return lengths
}

// TestCutMatchesReference holds the unrolled cut to cutRef on data that
// cuts rarely (random), often (text, zeros) and at every parity of
// offset and length, with Min, Avg and Max odd and even.
func TestCutMatchesReference(t *testing.T) {
	params := []Params{DefaultParams(), smallParams, {Min: 5000, Avg: 64 << 10, Max: 100000},
		{Min: 64, Avg: 128, Max: 256}, {Min: 65, Avg: 128, Max: 257}, {Min: 99, Avg: 1024, Max: 4097}}
	inputs := map[string][]byte{
		"random": random8M()[:2<<20], "text": text4M()[:1<<20], "zeros": make([]byte, 300<<10),
		"random-odd": randomData(9, 100001),
	}
	for name, data := range inputs {
		for _, p := range params {
			t.Run(fmt.Sprintf("%s/%v", name, p), func(t *testing.T) {
				maskS, maskL := p.masks()
				for off := range 3 {
					d := data[off:]
					for len(d) > 0 {
						want := cutRef(d, p.Min, p.Avg, p.Max, maskS, maskL)
						if got := cut(d, p.Min, p.Avg, p.Max, maskS, maskL); got != want {
							t.Fatalf("offset %d: cut %d, reference %d", len(data)-len(d), got, want)
						}
						// Every shorter end of the stream as well, near the cut.
						for _, end := range []int{want - 1, want + 1, p.Min + 1, p.Avg - 1, p.Avg, p.Avg + 1} {
							if end <= 0 || end > len(d) {
								continue
							}
							w := cutRef(d[:end], p.Min, p.Avg, p.Max, maskS, maskL)
							if g := cut(d[:end], p.Min, p.Avg, p.Max, maskS, maskL); g != w {
								t.Fatalf("offset %d, %d bytes left: cut %d, reference %d", len(data)-len(d), end, g, w)
							}
						}
						d = d[want:]
					}
				}
			})
		}
	}
}

// TestAverageSize checks that normalized chunking keeps the mean near Avg.
// The data is fixed, so this cannot flake.
func TestAverageSize(t *testing.T) {
	data := random16M()
	for _, avg := range []int{1 << 10, 8 << 10, 32 << 10, 64 << 10, 128 << 10, 256 << 10} {
		p := Params{Min: avg / 4, Avg: avg, Max: avg * 4}
		t.Run(fmt.Sprint(p), func(t *testing.T) {
			lengths, _ := Boundaries(data, p)
			mean := float64(len(data)) / float64(len(lengths))
			atMax := 0
			for _, l := range lengths {
				if l == p.Max {
					atMax++
				}
			}
			t.Logf("%d chunks, mean %.0f (%.2fx avg), %d at max", len(lengths), mean, mean/float64(avg), atMax)
			if mean < float64(avg)/2 || mean > float64(avg)*2 {
				t.Errorf("mean chunk size %.0f outside [%d, %d]", mean, avg/2, avg*2)
			}
		})
	}
}

// TestReset checks that a pooled Chunker gives the same results after
// Reset, keeps its buffer, and does not allocate while cutting.
func TestReset(t *testing.T) {
	a := random8M()[:3<<20]
	b := text4M()[:2<<20]
	p := DefaultParams()
	wantA, _ := Boundaries(a, p)
	wantB, _ := Boundaries(b, p)

	c, err := New(bytes.NewReader(a), p)
	if err != nil {
		t.Fatal(err)
	}
	buf := &c.buf[0]
	// Stop half-way through a, then switch streams.
	for range len(wantA) / 2 {
		if _, err := c.Next(); err != nil {
			t.Fatal(err)
		}
	}
	for i, tc := range []struct {
		data []byte
		want []int
	}{{b, wantB}, {a, wantA}, {a, wantA}} {
		got := cutAll(t, c, bytes.NewReader(tc.data), tc.data)
		if !slices.Equal(got, tc.want) {
			t.Fatalf("round %d after Reset: boundaries differ", i)
		}
	}
	if &c.buf[0] != buf {
		t.Fatal("Reset replaced the buffer")
	}

	// A Reset after a read error clears it.
	c.Reset(iotest.ErrReader(errors.New("boom")))
	if _, err := c.Next(); err == nil {
		t.Fatal("want read error")
	}
	if got := cutAll(t, c, bytes.NewReader(b), b); !slices.Equal(got, wantB) {
		t.Fatal("boundaries differ after Reset from an error")
	}

	r := bytes.NewReader(a)
	allocs := testing.AllocsPerRun(5, func() {
		r.Reset(a)
		c.Reset(r)
		for {
			if _, err := c.Next(); err != nil {
				break
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("cutting a stream after Reset allocates %v times", allocs)
	}
}

// fuzzChunkers keeps one Chunker per Params across fuzz executions, the
// way callers pool them, so each execution does not allocate and zero a
// fresh 1 MiB buffer; that also exercises Reset.
var fuzzChunkers sync.Map // Params -> *Chunker

// maxFuzzInput caps the input a fuzz execution cuts. Chunks are at most
// 8 KiB with the fuzz params, so 32 KiB still spans several Max-sized
// chunks, and executions stay cheap enough for the fuzzer to minimize the
// inputs it finds.
const maxFuzzInput = 32 << 10

// FuzzChunker checks the invariants on arbitrary input with small params
// chosen by the fuzzer: bounds, concatenation, the same boundaries from every
// reader shape, and that a chunk's boundary depends only on the data from
// its start.
func FuzzChunker(f *testing.F) {
	f.Add(uint8(0), []byte{})
	f.Add(uint8(1), []byte("x"))
	f.Add(uint8(2), bytes.Repeat([]byte("abc"), 400))
	f.Add(uint8(7), make([]byte, 3000))
	f.Add(uint8(13), randomData(5, 3000))
	f.Add(uint8(255), randomData(6, 4000))
	f.Add(uint8(4), textData(2000))
	f.Fuzz(func(t *testing.T, sel uint8, data []byte) {
		if len(data) > maxFuzzInput {
			data = data[:maxFuzzInput]
		}
		p := Params{Min: 64 << (sel & 1), Avg: 256 << (sel >> 1 & 1)}
		p.Max = p.Avg << (1 + sel>>2&3)
		if sel>>4&1 == 1 {
			p.Min += int(sel >> 5) // a Min that is not a power of two
		}
		want, err := Boundaries(data, p)
		if err != nil {
			t.Fatal(err)
		}
		checkBounds(t, want, len(data), p)
		if ref := refBoundaries(data, p); !slices.Equal(want, ref) {
			t.Fatalf("Boundaries %v, reference %v", want, ref)
		}
		v, ok := fuzzChunkers.Load(p)
		if !ok {
			c, err := New(nil, p)
			if err != nil {
				t.Fatal(err)
			}
			v, _ = fuzzChunkers.LoadOrStore(p, c)
		}
		c := v.(*Chunker)
		for _, r := range readers {
			got := cutAll(t, c, r.wrap(data), data)
			if !slices.Equal(got, want) {
				t.Fatalf("%s reader: boundaries %v, Boundaries %v", r.name, got, want)
			}
		}
		if len(want) > 1 {
			i := len(want) / 2
			off := 0
			for _, l := range want[:i] {
				off += l
			}
			rest, _ := Boundaries(data[off:], p)
			if !slices.Equal(rest, want[i:]) {
				t.Fatalf("cutting from chunk %d's start gives %v, want %v", i, rest, want[i:])
			}
		}
	})
}

var benchParams = []struct {
	name string
	p    Params
}{
	{"avg=64K(default)", DefaultParams()},
	{"avg=32K", Params{Min: 8 << 10, Avg: 32 << 10, Max: 128 << 10}},
	{"avg=128K", Params{Min: 32 << 10, Avg: 128 << 10, Max: 512 << 10}},
	{"avg=256K", Params{Min: 64 << 10, Avg: 256 << 10, Max: 1 << 20}},
}

// BenchmarkChunker measures the whole path a save takes: reads into the
// buffer, refills and cutting, over 64 MiB of random data.
func BenchmarkChunker(b *testing.B) {
	data := random64M()
	for _, bp := range benchParams {
		b.Run(bp.name, func(b *testing.B) {
			r := bytes.NewReader(data)
			c, err := New(r, bp.p)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				r.Reset(data)
				c.Reset(r)
				for {
					if _, err := c.Next(); err != nil {
						if err != io.EOF {
							b.Fatal(err)
						}
						break
					}
				}
			}
		})
	}
}

// BenchmarkCut measures the hot loop alone, without reader copies.
func BenchmarkCut(b *testing.B) {
	data := random64M()
	for _, bp := range benchParams {
		b.Run(bp.name, func(b *testing.B) {
			maskS, maskL := bp.p.masks()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				for d := data; len(d) > 0; {
					d = d[cut(d, bp.p.Min, bp.p.Avg, bp.p.Max, maskS, maskL):]
				}
			}
		})
	}
}
