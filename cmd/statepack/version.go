package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/urfave/cli/v2"

	"github.com/statepack/statepack/archive/format"
)

// Set at build time by `make release` (internal/cmd/release) with
//
//	go build -ldflags "-X main.version=v1.2.3 -X main.commit=abc1234"
//
// so a release binary names the tag and commit it was built from. When
// empty they come from the module's build information: the module version
// for `go install ...@v1.2.3`, and the VCS revision for a plain `go build`
// in a checkout.
var (
	version string
	commit  string
)

// versionOutput is `statepack version --json`.
//
//	version         statepack's version ("v1.2.3", or "dev")
//	commit          the source commit ("unknown" when not recorded)
//	go_version      the Go release it was built with
//	format_version  the repository format it reads and writes
type versionOutput struct {
	Version       string `json:"version"`
	Commit        string `json:"commit"`
	GoVersion     string `json:"go_version"`
	FormatVersion int    `json:"format_version"`
}

func buildVersion() versionOutput {
	info, _ := debug.ReadBuildInfo()
	return versionFrom(version, commit, info)
}

// versionFrom fills in what the linker flags left empty from the build
// information (nil when the binary carries none), so the fallbacks can be
// tested without building a binary per case.
func versionFrom(version, commit string, info *debug.BuildInfo) versionOutput {
	v := versionOutput{Version: version, Commit: commit, GoVersion: runtime.Version(), FormatVersion: format.FormatVersion}
	if info != nil {
		if v.Version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			v.Version = info.Main.Version
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && v.Commit == "" {
				v.Commit = s.Value
			}
		}
	}
	if v.Version == "" {
		v.Version = "dev"
	}
	if v.Commit == "" {
		v.Commit = "unknown"
	}
	return v
}

func (v versionOutput) print(w io.Writer) {
	fmt.Fprintf(w, "statepack %s (commit %s, %s, repository format %d)\n", v.Version, v.Commit, v.GoVersion, v.FormatVersion)
}

func (s *session) versionCommand() *cli.Command {
	return &cli.Command{
		Name:        "version",
		Usage:       "print the version, commit, Go version and repository format",
		ArgsUsage:   " ",
		Description: "Example:\n\n   statepack version --json",
		Action: s.action(0, 0, func(c *cli.Context) error {
			v := buildVersion()
			return s.emit(v, v.print)
		}),
	}
}
