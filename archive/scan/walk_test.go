package scan

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/statepack/statepack/archive/format"
	"golang.org/x/sys/unix"
)

// TestScanTreeParallelWalk: the parallel walk finds what a sequential
// filepath.WalkDir finds, less what save leaves out (excluded subtrees,
// restore's temporary files, names that are not UTF-8, special files),
// with the warnings in path order however the workers were scheduled.
func TestScanTreeParallelWalk(t *testing.T) {
	root := t.TempDir()
	mk := func(rel string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(rel), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for d := range 12 {
		for f := range 5 {
			mk(fmt.Sprintf("svc%02d/us-east-1/sub%d/file%d", d, f%2, f))
		}
		if err := syscall.Mkfifo(filepath.Join(root, fmt.Sprintf("svc%02d/pipe", d)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mk("skip/me/too")
	mk("svc03/" + format.RestoreTmpPrefix + "0123456789abcdef") // restore's leftover: skipped
	mk("svc04/" + format.RestoreTmpPrefix + "notes")            // a user's file: found
	mk("bad\xffname/inside")
	if err := os.Symlink("svc00", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "empty/dir"), 0o755); err != nil {
		t.Fatal(err)
	}

	var want []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel := filepath.ToSlash(p[len(root)+1:])
		if rel == "skip" || strings.HasPrefix(rel, "bad\xff") {
			return fs.SkipDir
		}
		if strings.HasSuffix(rel, "/pipe") || format.IsRestoreTemp(path.Base(rel)) {
			return nil
		}
		want = append(want, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)

	for run := range 5 { // scheduling differs run to run; the result may not
		var warnings []string
		found, err := ScanTree(root, Filter{Exclude: []string{"skip"}}, func(s string) { warnings = append(warnings, s) })
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range found {
			got = append(got, e.Path)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("run %d: scanTree found\n%q\nwant\n%q", run, got, want)
		}
		if len(warnings) != 14 || !strings.Contains(warnings[0], "UTF-8") || !strings.Contains(warnings[1], "svc00/pipe") ||
			!strings.Contains(warnings[4], "interrupted restore") || !strings.Contains(warnings[13], "svc11/pipe") {
			t.Fatalf("run %d: warnings not one per skipped path in path order: %q", run, warnings)
		}
	}
}

// TestScanTreeUnreadableDir: a path the walk cannot stat or read is an
// error naming it, not a subtree silently left out of the snapshot. A path
// longer than PATH_MAX is one even root cannot open.
func TestScanTreeUnreadableDir(t *testing.T) {
	root := t.TempDir()
	name := strings.Repeat("d", 250)
	fd, err := unix.Open(root, unix.O_DIRECTORY|unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 { // 20 levels of 251 bytes: past 4096
		if err := unix.Mkdirat(fd, name, 0o755); err != nil {
			t.Fatal(err)
		}
		next, err := unix.Openat(fd, name, unix.O_DIRECTORY|unix.O_RDONLY, 0)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		fd = next
	}
	unix.Close(fd)
	t.Cleanup(func() { removeDeep(t, root, name) })
	_, err = ScanTree(root, Filter{}, func(string) {})
	if err == nil || !strings.Contains(err.Error(), root+"/"+name) || !errors.Is(err, unix.ENAMETOOLONG) {
		t.Fatalf("scanTree = %.200v..., want an error naming the path it could not read", err)
	}
}

// removeDeep removes a chain of nested directories too deep for a path.
func removeDeep(t *testing.T, root, name string) {
	t.Helper()
	var fds []int
	fd, err := unix.Open(root, unix.O_DIRECTORY|unix.O_RDONLY, 0)
	for err == nil {
		fds = append(fds, fd)
		fd, err = unix.Openat(fd, name, unix.O_DIRECTORY|unix.O_RDONLY, 0)
	}
	for i := len(fds) - 1; i >= 0; i-- {
		if i < len(fds)-1 {
			_ = unix.Unlinkat(fds[i], name, unix.AT_REMOVEDIR)
		}
		unix.Close(fds[i])
	}
}
