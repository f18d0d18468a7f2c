package restorer

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/statepack/statepack/archive/format"
)

// TestReplaceFile: whatever is at the path, the finished temporary file
// takes its place atomically or not at all; a regular file it replaces is
// unlinked (no copy of it lingers under a temporary name), and what is
// not a regular file is never moved aside.
func TestReplaceFile(t *testing.T) {
	for _, tc := range []struct {
		name     string
		make     func(t *testing.T, p string)
		overFile bool // what the walk found
		fails    bool
	}{
		{name: "over a regular file", overFile: true, make: writeOld},
		{name: "over a regular file, walk not told", overFile: false, make: writeOld},
		{name: "nothing there any more", overFile: true, make: func(*testing.T, string) {}},
		{name: "a symlink there now", overFile: true, make: func(t *testing.T, p string) {
			if err := os.Symlink("elsewhere", p); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "a directory there now", overFile: true, fails: true, make: func(t *testing.T, p string) {
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
			writeOld(t, filepath.Join(p, "inside"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p, tmp := filepath.Join(dir, "db"), filepath.Join(dir, format.RestoreTmpPrefix+"x")
			tc.make(t, p)
			var old *os.File
			if st, err := os.Lstat(p); err == nil && st.Mode().IsRegular() {
				if old, err = os.Open(p); err != nil {
					t.Fatal(err)
				}
				defer old.Close()
			}
			if err := os.WriteFile(tmp, []byte("new"), 0o644); err != nil {
				t.Fatal(err)
			}
			err := replaceFile(tmp, p, tc.overFile)
			if tc.fails {
				if err == nil {
					t.Fatal("replaced a directory")
				}
				if b, err := os.ReadFile(filepath.Join(p, "inside")); err != nil || string(b) != "old" {
					t.Fatalf("the directory's file: %q, %v", b, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(p); err != nil || string(b) != "new" {
				t.Fatalf("%s holds %q, %v", p, b, err)
			}
			entries, err := os.ReadDir(dir)
			if err != nil || len(entries) != 1 {
				t.Fatalf("directory holds %v, %v; want the file alone", entries, err)
			}
			if old != nil {
				st, err := old.Stat()
				if err != nil {
					t.Fatal(err)
				}
				if n := st.Sys().(*syscall.Stat_t).Nlink; n != 0 {
					t.Errorf("the replaced file still has %d links", n)
				}
			}
		})
	}
}

func writeOld(t *testing.T, p string) {
	t.Helper()
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
}
