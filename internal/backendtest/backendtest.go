// Package backendtest is the conformance suite every backend.Backend
// passes, in the manner of kopia's blobtesting and restic's backend/test:
// the directory backend and the S3 backend run the same tests, so each is
// a faithful stand-in for the other.
//
//	func TestConformance(t *testing.T) {
//		backendtest.Run(t, func(t *testing.T) backend.Backend { return newEmptyBackend(t) })
//	}
//
// newBackend must return an empty backend of its own for every call;
// subtests run in parallel.
package backendtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"testing"

	"github.com/statepack/statepack/remote/backend"
)

// Run runs the whole suite, each test as a parallel subtest with a fresh
// backend from newBackend.
func Run(t *testing.T, newBackend func(t *testing.T) backend.Backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b backend.Backend)
	}{
		{"Location", testLocation},
		{"PutGet", testPutGet},
		{"PutOverwrites", testPutOverwrites},
		{"PutLarge", testPutLarge},
		{"PutFailingReader", testPutFailingReader},
		{"PutShortReader", testPutShortReader},
		{"PutCancelled", testPutCancelled},
		{"GetRange", testGetRange},
		{"GetRangeOverflow", testGetRangeOverflow},
		{"Stat", testStat},
		{"List", testList},
		{"ListStopsOnError", testListStopsOnError},
		{"ListEscapingPrefix", testListEscapingPrefix},
		{"Delete", testDelete},
		{"NotFound", testNotFound},
		{"NotFoundNested", testNotFoundNested},
		{"InvalidNames", testInvalidNames},
		{"PutIf", testPutIf},
		{"PutIfRace", testPutIfRace},
		{"PutIfCreateRace", testPutIfCreateRace},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newBackend(t))
		})
	}
}

// ctx returns the test's context: cancelled when the test ends.
func ctx(t *testing.T) context.Context { return t.Context() }

// randomBytes returns n deterministic pseudo-random bytes.
func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(seedBytes(seed)).Read(b)
	return b
}

func seedBytes(seed uint64) [32]byte {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return s
}

// stream is a reader of n pseudo-random bytes that is not an io.Seeker,
// io.ReaderAt or io.WriterTo, so a backend must truly stream it.
type stream struct{ r io.Reader }

func newStream(n int64, seed uint64) *stream {
	return &stream{io.LimitReader(rand.NewChaCha8(seedBytes(seed)), n)}
}

func (s *stream) Read(p []byte) (int, error) { return s.r.Read(p) }

// streamSum is the SHA-256 of what newStream(n, seed) yields.
func streamSum(t *testing.T, n int64, seed uint64) [32]byte {
	h := sha256.New()
	if _, err := io.Copy(h, newStream(n, seed)); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

// put stores data under name or fails the test.
func put(t *testing.T, b backend.Backend, name string, data []byte) {
	t.Helper()
	if err := b.Put(ctx(t), name, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put(%s): %v", name, err)
	}
}

// get reads the whole object or fails the test.
func get(t *testing.T, b backend.Backend, name string) []byte {
	t.Helper()
	rc, err := b.Get(ctx(t), name)
	if err != nil {
		t.Fatalf("Get(%s): %v", name, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%s): read: %v", name, err)
	}
	return data
}

// list returns the sorted names under prefix, and their sizes.
func list(t *testing.T, b backend.Backend, prefix string) ([]string, map[string]int64) {
	t.Helper()
	var names []string
	sizes := map[string]int64{}
	var mu sync.Mutex
	err := b.List(ctx(t), prefix, func(oi backend.ObjectInfo) error {
		mu.Lock()
		defer mu.Unlock()
		names = append(names, oi.Name)
		sizes[oi.Name] = oi.Size
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	sort.Strings(names)
	return names, sizes
}

// assertMissing checks that name is not an object, by Stat and by List.
func assertMissing(t *testing.T, b backend.Backend, name string) {
	t.Helper()
	if _, err := b.Stat(ctx(t), name); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Stat(%s) = %v, want ErrNotFound", name, err)
	}
	names, _ := list(t, b, "")
	if slices.Contains(names, name) {
		t.Errorf("List shows %s", name)
	}
}

// assertOnly checks that List("") shows exactly want: no temporary or
// partial objects beside them.
func assertOnly(t *testing.T, b backend.Backend, want ...string) {
	t.Helper()
	names, _ := list(t, b, "")
	sort.Strings(want)
	if !slices.Equal(names, want) {
		t.Errorf("List(\"\") = %q, want %q", names, want)
	}
}

// packName returns a realistic pack name: packs/<xx>/<64 hex digits>.
func packName(i int) string {
	id := fmt.Sprintf("%064x", sha256.Sum256([]byte{byte(i), byte(i >> 8)}))
	return "packs/" + id[:2] + "/" + id
}
