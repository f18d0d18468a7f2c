package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRelease builds the release for the host's system only (the others
// take minutes and cannot run here), then checks what a user downloads:
// the archive's name and entries, a static binary that reports the stamped
// version and commit, checksums that `sha256sum -c` accepts, and that a
// second build writes the same bytes.
func TestRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("builds statepack")
	}
	host := platform{runtime.GOOS, runtime.GOARCH}
	if !slices.Contains(defaultPlatforms, host) {
		t.Skipf("statepack is not released for %s", host)
	}
	const version = "v1.2.3"
	ctx := context.Background()
	root, err := moduleRoot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantCommit := "unknown"
	if out, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output(); err == nil {
		wantCommit = strings.TrimSpace(string(out))
	}

	dist := filepath.Join(t.TempDir(), "dist")
	files, err := release(ctx, options{Version: version, Dist: dist, Platforms: []platform{host}})
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dist, "statepack_v1.2.3_"+host.OS+"_"+host.Arch+".tar.gz")
	checksums := filepath.Join(dist, "statepack_v1.2.3_checksums.txt")
	if !reflect.DeepEqual(files, []string{archive, checksums}) {
		t.Fatalf("release wrote %q, want %q", files, []string{archive, checksums})
	}
	if got, want := dirNames(t, dist), []string{filepath.Base(checksums), filepath.Base(archive)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("dist holds %q", got)
	}

	// The archive: statepack, then the documents, owned by root, dated by
	// the commit rather than the clock.
	want := []string{"statepack", "README.md"}
	if _, err := os.Stat(filepath.Join(root, "LICENSE")); err == nil {
		want = []string{"statepack", "LICENSE", "README.md"}
	}
	mtime, err := sourceDate(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "statepack")
	var names []string
	for _, f := range readArchive(t, archive) {
		names = append(names, f.hdr.Name)
		wantMode := int64(0o644)
		if f.hdr.Name == "statepack" {
			wantMode = 0o755
			if err := os.WriteFile(bin, f.data, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if f.hdr.Typeflag != tar.TypeReg || f.hdr.Mode != wantMode || f.hdr.Uid != 0 || f.hdr.Gid != 0 || f.hdr.Uname != "" || f.hdr.Gname != "" || !f.hdr.ModTime.Equal(mtime) {
			t.Errorf("%s: type %c mode %o uid %d gid %d owner %q:%q mtime %v; want a regular file, mode %o, owned by 0:0, dated %v",
				f.hdr.Name, f.hdr.Typeflag, f.hdr.Mode, f.hdr.Uid, f.hdr.Gid, f.hdr.Uname, f.hdr.Gname, f.hdr.ModTime, wantMode, mtime)
		}
		if f.hdr.Name == "README.md" {
			readme, err := os.ReadFile(filepath.Join(root, "README.md"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(f.data, readme) {
				t.Errorf("README.md in the archive differs from the repository's")
			}
		}
	}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("archive holds %q, want %q", names, want)
	}

	// The binary: stamped, and static where that is possible (darwin
	// binaries always link libSystem).
	out, err := exec.Command(bin, "version", "--json").Output()
	if err != nil {
		t.Fatalf("statepack version --json: %v", err)
	}
	var v struct{ Version, Commit string }
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("version --json: %v\n%s", err, out)
	}
	if v.Version != version || v.Commit != wantCommit {
		t.Errorf("release binary says version %q commit %q, want %q %q", v.Version, v.Commit, version, wantCommit)
	}
	if host.OS == "linux" {
		checkStatic(t, bin)
	}

	// The checksums, by our reading of the format and by sha256sum's.
	sums, err := os.ReadFile(checksums)
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`^([0-9a-f]{64})  (\S+)$`)
	lines := strings.Split(strings.TrimSuffix(string(sums), "\n"), "\n")
	if len(lines) != 1 {
		t.Fatalf("checksums has %d lines, want 1:\n%s", len(lines), sums)
	}
	m := line.FindStringSubmatch(lines[0])
	if m == nil || m[2] != filepath.Base(archive) || m[1] != sha256File(t, archive) {
		t.Errorf("checksums line %q, want %s  %s", lines[0], sha256File(t, archive), filepath.Base(archive))
	}
	if sha256sum, err := exec.LookPath("sha256sum"); err == nil {
		check := exec.Command(sha256sum, "-c", filepath.Base(checksums))
		check.Dir = dist
		if out, err := check.CombinedOutput(); err != nil {
			t.Errorf("sha256sum -c: %v\n%s", err, out)
		}
	}

	// Reproducible: a second build, elsewhere, writes the same bytes.
	again := filepath.Join(t.TempDir(), "dist")
	if _, err := release(ctx, options{Version: version, Dist: again, Platforms: []platform{host}}); err != nil {
		t.Fatal(err)
	}
	for _, name := range dirNames(t, dist) {
		a, err := os.ReadFile(filepath.Join(dist, name))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(again, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between two builds of one commit", name)
		}
	}
}

// TestReleaseVersion: a version that a download URL could not be built
// from is refused before anything is built or written.
func TestReleaseVersion(t *testing.T) {
	for _, v := range []string{"", "1.2.3", "v1.2", "v1.2.3-rc.1", "v01.2.3", "v1.2.3 ", "latest", "v1.2.3/../x"} {
		dist := filepath.Join(t.TempDir(), "dist")
		_, err := release(context.Background(), options{Version: v, Dist: dist})
		if err == nil || !strings.Contains(err.Error(), "vX.Y.Z") {
			t.Errorf("version %q: err %v, want one naming vX.Y.Z", v, err)
		}
		if _, err := os.Stat(dist); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("version %q: created %s", v, dist)
		}
	}
	for _, v := range []string{"v0.0.1", "v1.2.3", "v10.20.30"} {
		if !versionPattern.MatchString(v) {
			t.Errorf("version %q refused", v)
		}
	}
}

// TestReleaseMakeTarget: `make release` without a good VERSION stops with
// a message that says what to pass, before building anything.
func TestReleaseMakeTarget(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	root, err := moduleRoot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"release"}, {"release", "VERSION=1.2.3"}, {"release", "VERSION=v1.2"}} {
		cmd := exec.Command("make", append([]string{"--no-print-directory", "-C", root}, args...)...)
		// Not the VERSION of the caller's environment or of a `make test
		// VERSION=…` above us, with which this would build a release.
		for _, kv := range os.Environ() {
			if k, _, _ := strings.Cut(kv, "="); k != "VERSION" && k != "MAKEFLAGS" && k != "MAKEOVERRIDES" && k != "MFLAGS" && k != "MAKELEVEL" {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("make %s succeeded:\n%s", strings.Join(args, " "), out)
			continue
		}
		if !strings.Contains(string(out), "VERSION=vX.Y.Z") || strings.Contains(string(out), "go build") {
			t.Errorf("make %s:\n%s", strings.Join(args, " "), out)
		}
	}
}

// TestReleaseArchiveBytes: the packaging alone depends on nothing but its
// inputs: not the clock, the files' owners or times on disk, or the
// gzip writer's defaults.
func TestReleaseArchiveBytes(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "statepack")
	if err := os.WriteFile(src, []byte("binary"), 0o700); err != nil {
		t.Fatal(err)
	}
	mtime := time.Unix(1700000000, 0).UTC()
	entries := []entry{{name: "statepack", path: src, mode: 0o755}}
	a := filepath.Join(dir, "a.tar.gz")
	sumA, err := writeArchive(a, entries, mtime)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(src, time.Now(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	b := filepath.Join(dir, "b.tar.gz")
	sumB, err := writeArchive(b, entries, mtime)
	if err != nil {
		t.Fatal(err)
	}
	if sumA != sumB || sumA != sha256File(t, a) {
		t.Errorf("sums %s %s, file %s", sumA, sumB, sha256File(t, a))
	}
	if zr := gunzip(t, a); zr.Name != "" || !zr.ModTime.IsZero() {
		t.Errorf("gzip header names %q, dated %v", zr.Name, zr.ModTime)
	}
}

type archived struct {
	hdr  *tar.Header
	data []byte
}

func readArchive(t *testing.T, path string) []archived {
	t.Helper()
	tr := tar.NewReader(gunzip(t, path))
	var files []archived
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, archived{hdr, data})
	}
}

func gunzip(t *testing.T, path string) *gzip.Reader {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return zr
}

// checkStatic fails unless bin is an ELF file that needs no dynamic
// loader and no shared library.
func checkStatic(t *testing.T, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("release binary is dynamically linked (program header %v)", p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("release binary needs %q", libs)
	}
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}
