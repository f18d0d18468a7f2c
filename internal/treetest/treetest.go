// Package treetest builds and compares real directory trees for tests:
// what a restore must reproduce exactly (paths, types, content, modes,
// mtimes, symlink targets, empty directories).
package treetest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Node is what a test compares for one path.
type Node struct {
	Type    string // file, dir, symlink
	Mode    fs.FileMode
	MTime   int64 // ns; directories included
	Size    int64
	Content string // sha256 of file content
	Target  string
}

// Tree maps slash paths relative to the root to their nodes.
type Tree map[string]Node

// Read describes the tree under root (root itself excluded).
func Read(root string) (Tree, error) {
	t := Tree{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel := filepath.ToSlash(p[len(root)+1:])
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		n := Node{Mode: fi.Mode(), MTime: fi.ModTime().UnixNano()}
		switch {
		case fi.Mode().IsRegular():
			n.Type, n.Size = "file", fi.Size()
			if n.Content, err = hashFile(p); err != nil {
				return err
			}
		case fi.IsDir():
			n.Type = "dir"
		case fi.Mode()&fs.ModeSymlink != 0:
			n.Type = "symlink"
			n.MTime = 0 // symlink mtimes are restored but some tools ignore them
			if n.Target, err = os.Readlink(p); err != nil {
				return err
			}
		default:
			n.Type = "special"
		}
		t[rel] = n
		return nil
	})
	return t, err
}

// hashFile digests a file's content as its non-zero 4 KiB pages with their
// offsets, reading only the extents that hold data: two files with the
// same size get the same digest exactly when their bytes are equal, and a
// sparse file of gigabytes costs only its data.
func hashFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for off := int64(0); off < st.Size(); {
		data, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
		if err != nil {
			break // no more data (ENXIO), or no hole support: handled below
		}
		hole, err := unix.Seek(int(f.Fd()), data, unix.SEEK_HOLE)
		if err != nil {
			hole = st.Size()
		}
		for pos := data; pos < hole; {
			n, err := f.ReadAt(buf[:min(int64(len(buf)), hole-pos)], pos)
			hashPages(h, buf[:n], pos)
			pos += int64(n)
			if err != nil && err != io.EOF {
				return "", err
			}
			if n == 0 {
				break
			}
		}
		off = hole
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func hashPages(h io.Writer, b []byte, off int64) {
	for len(b) > 0 {
		page := b[:min(4096, len(b))]
		nonzero := false
		for _, c := range page {
			if c != 0 {
				nonzero = true
				break
			}
		}
		if nonzero {
			fmt.Fprintf(h, "%d:", off)
			h.Write(page)
		}
		off += int64(len(page))
		b = b[len(page):]
	}
}

// Diff lists the differences between two trees, empty when equal.
func Diff(want, got Tree) []string {
	var out []string
	for p, w := range want {
		g, ok := got[p]
		switch {
		case !ok:
			out = append(out, "missing "+p)
		case g != w:
			out = append(out, fmt.Sprintf("differs %s: want %+v, got %+v", p, w, g))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			out = append(out, "extra "+p)
		}
	}
	sort.Strings(out)
	return out
}

// T is the part of testing.TB the helpers use.
type T interface {
	Helper()
	Fatalf(format string, args ...any)
}

// MustRead is Read for tests.
func MustRead(t T, root string) Tree {
	t.Helper()
	tr, err := Read(root)
	if err != nil {
		t.Fatalf("read tree %s: %v", root, err)
	}
	return tr
}

// AssertEqual fails the test when the trees differ, listing a few
// differences.
func AssertEqual(t T, want, got Tree) {
	t.Helper()
	if d := Diff(want, got); len(d) > 0 {
		if len(d) > 10 {
			d = append(d[:10], fmt.Sprintf("... and %d more", len(d)-10))
		}
		t.Fatalf("trees differ:\n%s", strings.Join(d, "\n"))
	}
}

// Spec describes a file to Write: content, mode and symlink target.
type Spec struct {
	Content string
	Mode    fs.FileMode // 0 means 0644 for files, 0755 for dirs
	Dir     bool
	Link    string
}

// Write creates the given paths under root (parents as needed) with a
// fixed mtime so trees are reproducible.
func Write(t T, root string, files map[string]Spec) {
	t.Helper()
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	mt := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	for _, p := range paths {
		s := files[p]
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatalf("%v", err)
		}
		var err error
		switch {
		case s.Dir:
			err = os.MkdirAll(full, orMode(s.Mode, 0o755))
		case s.Link != "":
			err = os.Symlink(s.Link, full)
		default:
			err = os.WriteFile(full, []byte(s.Content), orMode(s.Mode, 0o644))
			if err == nil {
				err = os.Chmod(full, orMode(s.Mode, 0o644))
			}
			if err == nil {
				err = os.Chtimes(full, mt, mt)
			}
		}
		if err != nil {
			t.Fatalf("write %s: %v", p, err)
		}
	}
}

func orMode(m, def fs.FileMode) fs.FileMode {
	if m == 0 {
		return def
	}
	return m
}

// SQLite returns the bytes of a file that looks like an SQLite database of
// pages 4 KiB pages to statepack (the header's magic and page size), with
// content derived from seed: half random, half text, like table pages.
func SQLite(pages int, seed uint64) string {
	b := make([]byte, pages*4096)
	copy(b, "SQLite format 3\x00")
	b[16], b[17] = 0x10, 0x00 // page size 4096, big-endian
	x := seed*0x9e3779b97f4a7c15 + 1
	for i := 100; i < len(b); i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		if i/2048%2 == 0 {
			for j := 0; j < 8 && i+j < len(b); j++ {
				b[i+j] = byte(x >> (8 * j))
			}
		} else {
			copy(b[i:min(i+8, len(b))], "row data")
		}
	}
	return string(b)
}
