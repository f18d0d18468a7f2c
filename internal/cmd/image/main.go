// Command image builds statepack's container image without a Docker
// daemon (`make image`): a static linux binary, the build machine's CA
// certificates, a /tmp and a /data, and nothing else, written as a
// docker-style tarball that `docker load -i` and `podman load -i` read and
// that `crane push` or `skopeo copy docker-archive:...` send to a registry.
//
// The image runs as any uid: every file is readable by all, /tmp and /data
// are writable by all (sticky), and HOME and the store default to /data, so
// a Kubernetes runAsUser or a compose `user:` needs nothing else. By default
// it runs as uid 65532, not root.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		out     = flag.String("o", "dist/statepack-image.tar", "write the docker-style image tarball to `FILE`")
		version = flag.String("version", "dev", "the `VERSION` stamped into the binary and the image's tag")
		commit  = flag.String("commit", "unknown", "the source `COMMIT` stamped into the binary and the image's labels")
		arch    = flag.String("arch", runtime.GOARCH, "the image's `ARCH`itecture (amd64, arm64)")
		binary  = flag.String("binary", "", "use this static linux statepack `FILE` instead of building one")
		caCerts = flag.String("ca", defaultCACerts, "the CA certificates `FILE` to ship")
		repo    = flag.String("repo", defaultRepo, "the image's `NAME`: it is tagged NAME:VERSION and NAME:latest")
		goCmd   = flag.String("go", "go", "the go `COMMAND` that builds the binary")
	)
	flag.Parse()
	if flag.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	created, err := sourceDate()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	bin := *binary
	if bin == "" {
		dir, err := os.MkdirTemp("", "statepack-image-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		bin = filepath.Join(dir, "statepack")
		if err := buildBinary(ctx, buildOptions{Go: *goCmd, Arch: *arch, Version: *version, Commit: *commit, Out: bin}); err != nil {
			return err
		}
	}
	img, err := buildImage(spec{Binary: bin, CACerts: *caCerts, Arch: *arch, Version: *version, Commit: *commit, Created: created})
	if err != nil {
		return err
	}
	tags, err := imageTags(*repo, *version)
	if err != nil {
		return err
	}
	if err := writeTarball(*out, img, tags); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("wrote %s (%s, linux/%s, %s): docker load -i %s\n", *out, tags[0], *arch, digest, *out)
	return nil
}

// sourceDate is the image's creation time: SOURCE_DATE_EPOCH when set (the
// Makefile sets the commit's time), else the epoch, so that the same
// sources give the same image digest.
func sourceDate() (time.Time, error) {
	v := os.Getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	sec, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: not a number of seconds", v)
	}
	return time.Unix(sec, 0).UTC(), nil
}
