package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/statepack/statepack/internal/testbin"
)

// TestVersionFrom: the linker flags of a release win; without them a
// `go install …@v1.2.3` names its module version, a plain `go build` in a
// checkout its VCS revision, and anything else is "dev" at "unknown".
func TestVersionFrom(t *testing.T) {
	vcs := []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"}}
	for _, tc := range []struct {
		name            string
		version, commit string
		info            *debug.BuildInfo
		wantV, wantC    string
	}{
		{"release", "v1.2.3", "abc1234", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs}, "v1.2.3", "abc1234"},
		{"go install at a tag", "", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "v1.2.3", "unknown"},
		{"go build in a checkout", "", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs}, "dev", "0123456789abcdef0123456789abcdef01234567"},
		{"go build without VCS", "", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "dev", "unknown"},
		{"no build information", "", "", nil, "dev", "unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := versionFrom(tc.version, tc.commit, tc.info)
			if v.Version != tc.wantV || v.Commit != tc.wantC {
				t.Errorf("got version %q commit %q, want %q %q", v.Version, v.Commit, tc.wantV, tc.wantC)
			}
		})
	}
}

// TestVersionPlainBuild: a binary built without the release's linker
// flags and without VCS stamping says "dev" at "unknown", not an empty
// version. (TestVersion covers a binary built with -ldflags -X.)
func TestVersionPlainBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), "statepack")
	build := exec.Command("go", "build", "-buildvcs=false", "-o", bin, testbin.Package)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version", "--json").Output()
	if err != nil {
		t.Fatalf("statepack version --json: %v", err)
	}
	var v versionOutput
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("version --json: %v\n%s", err, out)
	}
	if v.Version != "dev" || v.Commit != "unknown" {
		t.Errorf("plain build: version %q commit %q, want dev unknown", v.Version, v.Commit)
	}
}

// TestUnsupportedOS: building for a system other than linux fails, and
// the output names the supported system rather than only the unix calls
// that are missing there.
func TestUnsupportedOS(t *testing.T) {
	for _, goos := range []string{"windows", "freebsd", "darwin"} {
		t.Run(goos, func(t *testing.T) {
			build := exec.Command("go", "build", "-o", filepath.Join(t.TempDir(), "statepack"), testbin.Package)
			build.Env = append(os.Environ(), "GOOS="+goos, "CGO_ENABLED=0")
			out, err := build.CombinedOutput()
			if err == nil {
				t.Fatalf("GOOS=%s go build succeeded", goos)
			}
			if _, ok := err.(*exec.ExitError); !ok {
				t.Fatalf("go build: %v", err)
			}
			msg := string(out)
			if !strings.Contains(msg, "statepack supports linux only") || strings.Contains(msg, "undefined:") {
				t.Errorf("GOOS=%s go build does not name the supported systems:\n%s", goos, msg)
			}
		})
	}
}
