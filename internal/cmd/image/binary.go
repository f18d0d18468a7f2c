package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
)

// buildOptions say how to build the image's binary.
type buildOptions struct {
	Go      string // the go command
	Arch    string // GOARCH; GOOS is linux
	Version string // main.version
	Commit  string // main.commit
	Out     string // the binary's path
}

// mainPackage is the command the image runs.
const mainPackage = "github.com/statepack/statepack/cmd/statepack"

// buildBinary builds statepack as the image needs it: static (CGO_ENABLED=0:
// the image has no libc), for linux/Arch, without the build machine's paths
// (-trimpath), and stamped with the version and commit that `statepack
// version` shows.
func buildBinary(ctx context.Context, o buildOptions) error {
	ldflags := fmt.Sprintf("-X main.version=%s -X main.commit=%s", o.Version, o.Commit)
	cmd := exec.CommandContext(ctx, o.Go, "build", "-trimpath", "-ldflags", ldflags, "-o", o.Out, mainPackage)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+o.Arch)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build statepack for linux/%s: %w", o.Arch, err)
	}
	return nil
}
