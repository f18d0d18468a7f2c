package actiontest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// ArchiveName is the release archive of statepack version for goos and
// goarch, as `make release` names it.
func ArchiveName(version, goos, goarch string) string {
	return fmt.Sprintf("statepack_%s_%s_%s.tar.gz", version, goos, goarch)
}

// ChecksumsName is the release's checksums file, as `make release` names
// it: sha256sum lines, "<hex>  <file>".
func ChecksumsName(version string) string {
	return fmt.Sprintf("statepack_%s_checksums.txt", version)
}

// Release is a statepack release served on 127.0.0.1: the host's archive
// and the checksums file, under URL as GitHub serves a release's files
// under https://github.com/OWNER/REPO/releases/download/VERSION.
type Release struct {
	Version string
	URL     string // the release-url input of the actions
	Archive string // the name of the host's archive

	mu    sync.Mutex
	files map[string][]byte
	gets  map[string]int
}

// ServeRelease packs binary (a statepack built for the host) into the
// host's release archive, writes the checksums file, and serves both until
// the test ends. It skips the test on a host GitHub has no runner for.
func ServeRelease(t testing.TB, binary, version string) *Release {
	t.Helper()
	if RunnerOS() != "Linux" || RunnerArch() != "X64" && RunnerArch() != "ARM64" {
		t.Skipf("statepack has no release for %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	archive, err := PackArchive(binary)
	if err != nil {
		t.Fatal(err)
	}
	rel := &Release{Version: version, Archive: ArchiveName(version, runtime.GOOS, runtime.GOARCH),
		files: map[string][]byte{}, gets: map[string]int{}}
	rel.files[rel.Archive] = archive
	rel.files[ChecksumsName(version)] = []byte(ChecksumLine(rel.Archive, archive))

	prefix := "/download/" + version + "/"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, prefix)
		rel.mu.Lock()
		data, found := rel.files[name]
		if ok && found && r.Method == http.MethodGet {
			rel.gets[name]++
		}
		rel.mu.Unlock()
		if !ok || !found {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
	}))
	t.Cleanup(srv.Close)
	rel.URL = srv.URL + strings.TrimSuffix(prefix, "/")
	return rel
}

// PackArchive returns the release archive holding the binary at path as
// `statepack`: a gzipped tar, as `make release` builds it.
func PackArchive(path string) ([]byte, error) {
	exe, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	gz, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(gz)
	hdr := &tar.Header{Name: "statepack", Mode: 0o755, Size: int64(len(exe)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if _, err := tw.Write(exe); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ChecksumLine is name's line in the checksums file, as sha256sum prints it.
func ChecksumLine(name string, data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]) + "  " + name + "\n"
}

// Put replaces (or adds) a file of the release, for tests of what the
// actions do with a damaged one.
func (r *Release) Put(name string, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.files[name] = data
}

// File returns a file of the release.
func (r *Release) File(name string) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.files[name])
}

// Downloads is how many times the archive has been fetched.
func (r *Release) Downloads() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gets[r.Archive]
}

// Remove takes a file out of the release: it answers 404 from now on.
func (r *Release) Remove(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.files, name)
}
