package backendtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/statepack/statepack/remote/backend"
)

func testLocation(t *testing.T, b backend.Backend) {
	if b.Location() == "" {
		t.Error("Location() is empty")
	}
}

// testPutGet round-trips objects of several sizes under realistic names.
func testPutGet(t *testing.T, b backend.Backend) {
	cases := []struct {
		name string
		data []byte
	}{
		{"config", []byte(`{"version":1}`)},
		{"empty", nil},
		{"one", []byte{0}},
		{packName(1), randomBytes(100_000, 1)},
		{"snapshots/" + strings.Repeat("ab", 32), randomBytes(4097, 2)},
		{"refs/orders-e2e", []byte("snapshot-id\n")},
	}
	for _, c := range cases {
		put(t, b, c.name, c.data)
	}
	for _, c := range cases {
		if got := get(t, b, c.name); !bytes.Equal(got, c.data) {
			t.Errorf("Get(%s): %d bytes, want the %d written", c.name, len(got), len(c.data))
		}
	}
}

func testPutOverwrites(t *testing.T, b backend.Backend) {
	put(t, b, "config", []byte("first"))
	put(t, b, "config", []byte("second, longer"))
	if got := get(t, b, "config"); string(got) != "second, longer" {
		t.Errorf("after a second Put, Get = %q", got)
	}
}

// testPutLarge streams 20 MiB from a plain reader (no Seek, no ReadAt).
func testPutLarge(t *testing.T, b backend.Backend) {
	const n = 20 << 20
	name := packName(2)
	if err := b.Put(ctx(t), name, newStream(n, 3), n); err != nil {
		t.Fatalf("Put: %v", err)
	}
	rc, err := b.Get(ctx(t), name)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	defer rc.Close()
	h := sha256.New()
	got, err := io.Copy(h, rc)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if got != n || [32]byte(h.Sum(nil)) != streamSum(t, n, 3) {
		t.Errorf("read back %d bytes with a different hash, want %d identical bytes", got, n)
	}
	if info, err := b.Stat(ctx(t), name); err != nil || info.Size != n {
		t.Errorf("Stat = %+v, %v; want size %d", info, err, n)
	}
}

// failingReader yields n bytes of data, then err.
type failingReader struct {
	n   int
	err error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, r.err
	}
	k := min(len(p), r.n)
	clear(p[:k])
	r.n -= k
	return k, nil
}

var errReader = errors.New("reader broke")

// testPutFailingReader: a Put whose data fails midway stores nothing, and
// leaves an object already under the name untouched.
func testPutFailingReader(t *testing.T, b backend.Backend) {
	r := &failingReader{n: 1 << 20, err: errReader}
	if err := b.Put(ctx(t), "packs/00/fresh", r, 4<<20); err == nil {
		t.Fatal("Put with a failing reader succeeded")
	}
	assertMissing(t, b, "packs/00/fresh")

	put(t, b, "packs/00/old", []byte("old content"))
	r = &failingReader{n: 1 << 20, err: errReader}
	if err := b.Put(ctx(t), "packs/00/old", r, 4<<20); err == nil {
		t.Fatal("Put with a failing reader succeeded")
	}
	if got := get(t, b, "packs/00/old"); string(got) != "old content" {
		t.Errorf("failed Put changed the object to %d bytes", len(got))
	}
	assertOnly(t, b, "packs/00/old")
}

// testPutShortReader: data shorter than the size given is an error.
func testPutShortReader(t *testing.T, b backend.Backend) {
	if err := b.Put(ctx(t), "index/short", bytes.NewReader(make([]byte, 100)), 200); err == nil {
		t.Fatal("Put of 100 bytes announced as 200 succeeded")
	}
	assertMissing(t, b, "index/short")
	assertOnly(t, b)
}

// cancellingReader cancels its context after n bytes and keeps going, as
// a Ctrl-C in the middle of an upload would.
type cancellingReader struct {
	r      io.Reader
	n      int64
	cancel context.CancelFunc
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n -= int64(k)
	if c.n <= 0 {
		c.cancel()
	}
	return k, err
}

// testPutCancelled: cancelling the context stops a large streamed Put,
// and nothing becomes visible under its name.
func testPutCancelled(t *testing.T, b backend.Backend) {
	const n = 48 << 20
	c, cancel := context.WithCancel(ctx(t))
	defer cancel()
	r := &cancellingReader{r: newStream(n, 4), n: 4 << 20, cancel: cancel}
	err := b.Put(c, packName(3), r, n)
	if err == nil {
		t.Fatal("cancelled Put succeeded")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Put: %v, want an error matching context.Canceled", err)
	}
	assertMissing(t, b, packName(3))
	assertOnly(t, b)

	if err := b.Put(c, "config", bytes.NewReader([]byte("x")), 1); err == nil {
		t.Error("Put with a cancelled context succeeded")
	}
	assertOnly(t, b)
}

func testGetRange(t *testing.T, b backend.Backend) {
	data := randomBytes(1000, 5)
	name := packName(4)
	put(t, b, name, data)
	ok := []struct {
		name           string
		offset, length int64
	}{
		{"start", 0, 10},
		{"middle", 400, 123},
		{"end", 990, 10},
		{"whole", 0, 1000},
		{"one byte", 999, 1},
		{"zero at start", 0, 0},
		{"zero in middle", 500, 0},
		{"zero at end", 1000, 0},
	}
	for _, c := range ok {
		rc, err := b.GetRange(ctx(t), name, c.offset, c.length)
		if err != nil {
			t.Errorf("%s: GetRange(%d, %d): %v", c.name, c.offset, c.length, err)
			continue
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Errorf("%s: read: %v", c.name, err)
		} else if want := data[c.offset : c.offset+c.length]; !bytes.Equal(got, want) {
			t.Errorf("%s: GetRange(%d, %d) returned %d bytes, not the %d expected", c.name, c.offset, c.length, len(got), len(want))
		}
	}
	bad := []struct {
		name           string
		offset, length int64
		pastEnd        bool // ErrOutOfRange, which readers branch on
	}{
		{"runs past the end", 995, 10, true},
		{"starts at the end", 1000, 1, true},
		{"starts past the end", 2000, 10, true},
		{"zero past the end", 1001, 0, true},
		{"negative offset", -1, 10, false},
		{"negative length", 0, -1, false},
	}
	for _, c := range bad {
		rc, err := b.GetRange(ctx(t), name, c.offset, c.length)
		switch {
		case err == nil:
			rc.Close()
			t.Errorf("%s: GetRange(%d, %d) succeeded, want an error", c.name, c.offset, c.length)
		case errors.Is(err, backend.ErrNotFound):
			t.Errorf("%s: GetRange(%d, %d) = %v: the object exists, not ErrNotFound", c.name, c.offset, c.length, err)
		case c.pastEnd && !errors.Is(err, backend.ErrOutOfRange):
			t.Errorf("%s: GetRange(%d, %d) = %v, want ErrOutOfRange", c.name, c.offset, c.length, err)
		}
	}
}

// testGetRangeOverflow: a length so large that offset+length overflows is
// still a range past the end, not "the rest of the object".
func testGetRangeOverflow(t *testing.T, b backend.Backend) {
	put(t, b, "index/i", randomBytes(100, 7))
	for _, off := range []int64{0, 1, 99} {
		if rc, err := b.GetRange(ctx(t), "index/i", off, math.MaxInt64); err == nil {
			n, _ := io.Copy(io.Discard, rc)
			rc.Close()
			t.Errorf("GetRange(%d, MaxInt64) succeeded with %d bytes, want an error", off, n)
		}
	}
}

func testStat(t *testing.T, b backend.Backend) {
	put(t, b, "index/a", randomBytes(12345, 6))
	put(t, b, "index/empty", nil)
	for name, size := range map[string]int64{"index/a": 12345, "index/empty": 0} {
		info, err := b.Stat(ctx(t), name)
		if err != nil {
			t.Fatalf("Stat(%s): %v", name, err)
		}
		if info.Name != name || info.Size != size || info.ModTime.IsZero() {
			t.Errorf("Stat(%s) = %+v, want name %s, size %d and a modification time", name, info, name, size)
		}
	}
}

// testDelete removes objects; a missing one is fine.
func testDelete(t *testing.T, b backend.Backend) {
	put(t, b, "locks/a", []byte("a"))
	put(t, b, "locks/b", []byte("b"))
	if err := b.Delete(ctx(t), "locks/a"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	assertMissing(t, b, "locks/a")
	assertOnly(t, b, "locks/b")
	for _, name := range []string{"locks/a", "locks/never", "nothing/here/at/all"} {
		if err := b.Delete(ctx(t), name); err != nil {
			t.Errorf("Delete(%s) of a missing object: %v", name, err)
		}
	}
}

// testNotFound: every read of a missing object matches ErrNotFound, in
// an empty backend and beside other objects.
func testNotFound(t *testing.T, b backend.Backend) {
	checkNotFound(t, b, "config")
	checkNotFound(t, b, "refs/main")
	put(t, b, "packs/ab/ab01", []byte("x"))
	checkNotFound(t, b, "packs/ab/ab02")
	checkNotFound(t, b, "packs/cd/cd01")
}

// testNotFoundNested: a name that is a prefix of other objects ("packs"),
// or that continues an object's name as if it were a directory
// ("packs/ab/ab01/x"), is a missing object like any other, as on S3.
func testNotFoundNested(t *testing.T, b backend.Backend) {
	put(t, b, "packs/ab/ab01", []byte("x"))
	for _, name := range []string{"packs", "packs/ab", "packs/ab/ab01/deeper"} {
		checkNotFound(t, b, name)
	}
}

// checkNotFound checks that every read of name reports ErrNotFound.
func checkNotFound(t *testing.T, b backend.Backend, name string) {
	t.Helper()
	if _, err := b.Get(ctx(t), name); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Get(%s) = %v, want ErrNotFound", name, err)
	}
	if _, err := b.GetRange(ctx(t), name, 0, 1); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("GetRange(%s) = %v, want ErrNotFound", name, err)
	}
	if _, err := b.GetRange(ctx(t), name, 0, 0); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("GetRange(%s, 0, 0) = %v, want ErrNotFound", name, err)
	}
	if _, err := b.Stat(ctx(t), name); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Stat(%s) = %v, want ErrNotFound", name, err)
	}
	if _, _, err := b.GetVersioned(ctx(t), name); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("GetVersioned(%s) = %v, want ErrNotFound", name, err)
	}
}

// invalidNames are names no backend may accept: each would leave the
// repository, alias another name, or hide from List.
var invalidNames = []string{
	"", "/", "/abs", "/etc/passwd", "../x", "../../x", "a/../../x", "a/../b",
	"./a", "a/./b", "a/.", "a//b", "a/", ".hidden", "packs/.tmp-x", "..", ".",
	"a\x00b", "\x00",
}

func testInvalidNames(t *testing.T, b backend.Backend) {
	for _, name := range invalidNames {
		if err := b.Put(ctx(t), name, bytes.NewReader([]byte("x")), 1); err == nil {
			t.Errorf("Put(%q) succeeded", name)
		}
		if _, err := b.PutIf(ctx(t), name, []byte("x"), ""); err == nil {
			t.Errorf("PutIf(%q) succeeded", name)
		}
		if rc, err := b.Get(ctx(t), name); err == nil {
			rc.Close()
			t.Errorf("Get(%q) succeeded", name)
		}
		if _, err := b.Stat(ctx(t), name); err == nil {
			t.Errorf("Stat(%q) succeeded", name)
		}
		if _, _, err := b.GetVersioned(ctx(t), name); err == nil {
			t.Errorf("GetVersioned(%q) succeeded", name)
		}
		if err := b.Delete(ctx(t), name); err == nil {
			t.Errorf("Delete(%q) succeeded", name)
		}
	}
	names, _ := list(t, b, "")
	if len(names) != 0 {
		t.Errorf("after refused writes, List shows %q", names)
	}
}

func testList(t *testing.T, b backend.Backend) {
	all := []string{
		"config", packName(10), packName(11), "packs/ab/ab01", "packs/ab/ab02",
		"packs/abc/x", "index/i1", "snapshots/s1", "refs/main", "refs/dev", "locks/l1",
	}
	for i, name := range all {
		put(t, b, name, make([]byte, i))
	}
	r := &failingReader{n: 10, err: errReader}
	_ = b.Put(ctx(t), "packs/ab/failed", r, 100) // must not show up
	prefixes := []string{"", "packs/", "packs/ab/", "packs/ab", "refs/", "refs/m", "config", "nothing/"}
	for _, prefix := range prefixes {
		want := filterPrefix(all, prefix)
		slices.Sort(want)
		got, sizes := list(t, b, prefix)
		if !slices.Equal(got, want) {
			t.Errorf("List(%q) = %q, want %q", prefix, got, want)
		}
		for _, name := range got {
			if i := slices.Index(all, name); i >= 0 && sizes[name] != int64(i) {
				t.Errorf("List(%q): %s has size %d, want %d", prefix, name, sizes[name], i)
			}
		}
	}
}

func filterPrefix(names []string, prefix string) []string {
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out
}

// testListEscapingPrefix: a prefix that climbs out of the repository
// lists nothing from outside it.
func testListEscapingPrefix(t *testing.T, b backend.Backend) {
	put(t, b, "config", []byte("x"))
	for _, prefix := range []string{"../", "../..", "/", "./"} {
		var names []string
		err := b.List(ctx(t), prefix, func(oi backend.ObjectInfo) error {
			names = append(names, oi.Name)
			return nil
		})
		if len(names) != 0 {
			t.Errorf("List(%q) = %q (err %v), want nothing", prefix, names, err)
		}
	}
}

var errStop = errors.New("stop listing")

func testListStopsOnError(t *testing.T, b backend.Backend) {
	for i := range 5 {
		put(t, b, packName(20+i), []byte("x"))
	}
	calls := 0
	err := b.List(ctx(t), "packs/", func(backend.ObjectInfo) error {
		calls++
		return errStop
	})
	if !errors.Is(err, errStop) || calls != 1 {
		t.Errorf("List with a failing callback: err %v after %d calls; want errStop after 1", err, calls)
	}
}
