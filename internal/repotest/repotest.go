// Package repotest holds the helpers that the tests of archive and of its
// sub-packages share: a fresh local store, a save or restore that fails
// the test instead of returning an error, an awkward tree. It is imported
// only by tests (external test packages: an internal test of archive
// could not import it without an import cycle).
package repotest

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/restorer"
	"github.com/statepack/statepack/archive/saver"
	"github.com/statepack/statepack/internal/treetest"
	"github.com/statepack/statepack/remote/dirbackend"
)

// Repo opens a fresh local store in a temp dir and returns it with its
// cache directory.
func Repo(t *testing.T) (*archive.Repository, string) {
	t.Helper()
	dir := t.TempDir()
	be, err := dirbackend.New(filepath.Join(dir, "store"), true)
	if err != nil {
		t.Fatal(err)
	}
	r, err := archive.OpenOrInit(context.Background(), be)
	if err != nil {
		t.Fatal(err)
	}
	return r, filepath.Join(dir, "store", "cache")
}

// Save saves dir as state, or fails the test.
func Save(t *testing.T, r *archive.Repository, cache, dir, state string) *saver.Result {
	t.Helper()
	res, err := saver.Save(context.Background(), r, saver.Options{DataDir: dir, State: state, CacheDir: cache})
	if err != nil {
		t.Fatalf("save: %v", err)
	}
	return res
}

// Restore restores snapshot id into dir, or fails the test.
func Restore(t *testing.T, r *archive.Repository, cache, dir string, id format.ID) *restorer.Result {
	t.Helper()
	res, err := restorer.Restore(context.Background(), r, restorer.Options{DataDir: dir, Snapshot: id, CacheDir: cache})
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	return res
}

// Must fails the test on an error.
func Must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Awkward is a tree of what file systems make awkward: deep paths, unicode
// and spaces, modes, links of every kind, a read-only directory, a large
// file, a name sorting between a directory and its files, a SQLite file.
var Awkward = map[string]treetest.Spec{
	"empty":                     {},
	"emptydir":                  {Dir: true},
	"a/b/c/d/e/f/g/deep.txt":    {Content: "deep"},
	"unicode/ünïcödé ñame.txt":  {Content: "unicode"},
	"with space/file name.json": {Content: `{"a": 1}`},
	"readonly.txt":              {Content: "ro", Mode: 0o444},
	"exec.sh":                   {Content: "#!/bin/sh\n", Mode: 0o755},
	"links/rel":                 {Link: "../exec.sh"},
	"links/abs":                 {Link: "/etc/hostname"},
	"links/dangling":            {Link: "does/not/exist"},
	"big.bin":                   {Content: strings.Repeat("0123456789abcdef", 1<<16)},
	"rodir":                     {Dir: true, Mode: 0o555},
	"a.b":                       {Content: "sorts between a and a/b"},
	"dynamodb/local.db":         {Content: treetest.SQLite(300, 1)}, // cut by page, its block list out of line
}

// AwkwardDir writes the Awkward tree into a new directory and returns it
// with what it holds.
func AwkwardDir(t *testing.T) (string, treetest.Tree) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	treetest.Write(t, dir, Awkward)
	return dir, treetest.MustRead(t, dir)
}

// PastRacyWindow waits until files written so far are older than the
// window in which the stat cache distrusts them (a file changed in the
// same timestamp tick as its stat was taken). Waiting longer only makes
// the test more certain, never flaky.
func PastRacyWindow() { time.Sleep(250 * time.Millisecond) }

// RandomBlock returns n incompressible bytes.
func RandomBlock(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}
