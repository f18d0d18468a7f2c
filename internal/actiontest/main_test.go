package actiontest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/statepack/statepack/internal/miniotest"
	"github.com/statepack/statepack/internal/testbin"
)

// releaseDir holds the binary the tests' releases hold; TestMain removes it.
var releaseDir string

func TestMain(m *testing.M) {
	code := miniotest.Main(m)
	if releaseDir != "" {
		_ = os.RemoveAll(releaseDir)
	}
	os.Exit(code)
}

// releaseBinary builds statepack once, as a release is built (no cgo, no
// local paths), and has testbin's runs use it too.
var releaseBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "statepack-actiontest-")
	if err != nil {
		return "", err
	}
	releaseDir = dir
	bin := filepath.Join(dir, "statepack")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "-ldflags", "-X main.version=v0.0.0-test -X main.commit=testcommit", testbin.Package)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build statepack: %v\n%s", err, out)
	}
	return bin, os.Setenv("STATEPACK_BIN", bin)
})

// statepackBinary is releaseBinary for a test.
func statepackBinary(t *testing.T) string {
	t.Helper()
	bin, err := releaseBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// repoRoot is the repository: restore/ and save/ are under it.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// defaultVersion is the statepack release the actions install unless
// told otherwise; the test's release server serves the test's binary
// under that name.
func defaultVersion(t *testing.T) string {
	t.Helper()
	meta, err := ReadMetadata(filepath.Join(repoRoot(t), "restore"))
	if err != nil {
		t.Fatal(err)
	}
	return meta.Inputs["version"].Default
}
