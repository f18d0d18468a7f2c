package restorer

import (
	"slices"
	"testing"

	"github.com/statepack/statepack/archive/format"
)

// TestSpreadByDir: every file and symlink once, no directory, and each
// round takes one entry from every directory that has one left.
func TestSpreadByDir(t *testing.T) {
	e := func(p string, typ format.EntryType) format.Entry { return format.Entry{Path: p, Type: typ} }
	target := []format.Entry{
		e("a", format.TypeDir), e("a/1", format.TypeFile), e("a/2", format.TypeFile), e("a/3", format.TypeSymlink),
		e("b", format.TypeDir), e("b/1", format.TypeFile),
		e("c", format.TypeDir), e("c/1", format.TypeFile), e("c/2", format.TypeFile),
		e("top", format.TypeFile),
	}
	var got []string
	for _, i := range SpreadByDir(target) {
		got = append(got, target[i].Path)
	}
	want := []string{"a/1", "b/1", "c/1", "top", "a/2", "c/2", "a/3"}
	if !slices.Equal(got, want) {
		t.Fatalf("spreadByDir = %q, want %q", got, want)
	}
	if len(SpreadByDir(nil)) != 0 {
		t.Fatal("entries from nothing")
	}
}
