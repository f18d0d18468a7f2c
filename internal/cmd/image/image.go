package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// The image's layout and defaults. The tests and the compose recipe in
// docs/ci-recipes.md rely on them.
const (
	// binPath is the entrypoint; PATH holds its directory, so that a
	// Kubernetes `command: [statepack, ...]` finds it too.
	binPath = "/usr/local/bin/statepack"
	// caPath is where Go's crypto/x509 looks first on Linux.
	caPath = "/etc/ssl/certs/ca-certificates.crt"
	// dataDir is HOME and holds the store: writable by any uid, and the
	// place to mount a volume that keeps the store between runs.
	dataDir = "/data"
	// storeDir is the default store (STATEPACK_STORE).
	storeDir = dataDir + "/store"
	// defaultUser is the uid:gid the image runs as unless told otherwise:
	// not root (the distroless "nonroot" ids), with no passwd entry needed.
	defaultUser = "65532:65532"
	// defaultCACerts is where Debian, Ubuntu and Alpine keep the bundle.
	defaultCACerts = "/etc/ssl/certs/ca-certificates.crt"
	// defaultRepo is the image's name once loaded.
	defaultRepo = "statepack"
	// sourceURL is the org.opencontainers.image.source label.
	sourceURL = "https://github.com/statepack/statepack"
)

// imageEnv is the environment the image sets: the store and HOME in the
// writable /data whatever the uid. DATA_DIR and the remote are the user's.
var imageEnv = []string{
	"PATH=/usr/local/bin",
	"HOME=" + dataDir,
	"STATEPACK_STORE=" + storeDir,
}

// spec is what goes into the image.
type spec struct {
	Binary  string // a static linux statepack for Arch
	CACerts string // the CA bundle to ship
	Arch    string // GOARCH
	Version string
	Commit  string
	Created time.Time
}

// buildImage assembles the image in memory: one layer and its config.
func buildImage(s spec) (v1.Image, error) {
	if err := checkStatic(s.Binary, s.Arch); err != nil {
		return nil, err
	}
	layer, err := rootLayer(s)
	if err != nil {
		return nil, err
	}
	cfg := &v1.ConfigFile{
		Architecture: s.Arch,
		OS:           "linux",
		Created:      v1.Time{Time: s.Created},
		RootFS:       v1.RootFS{Type: "layers"}, // docker load refuses any other
		Config: v1.Config{
			Entrypoint: []string{binPath},
			Env:        imageEnv,
			User:       defaultUser,
			WorkingDir: dataDir,
			Labels: map[string]string{
				"org.opencontainers.image.title":       "statepack",
				"org.opencontainers.image.description": "save, restore and share an application's data directory",
				"org.opencontainers.image.version":     s.Version,
				"org.opencontainers.image.revision":    s.Commit,
				"org.opencontainers.image.source":      sourceURL,
				"org.opencontainers.image.created":     s.Created.Format(time.RFC3339),
			},
		},
	}
	if s.Arch == "arm64" {
		cfg.Variant = "v8"
	}
	img, err := mutate.ConfigFile(empty.Image, cfg)
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	img, err = mutate.Append(img, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: s.Created},
			CreatedBy: "statepack internal/cmd/image",
			Comment:   "statepack " + s.Version + ", CA certificates, /tmp, /data",
		},
	})
	if err != nil {
		return nil, fmt.Errorf("image layer: %w", err)
	}
	return img, nil
}

// entry is one path of the layer.
type entry struct {
	path string      // relative, no leading slash
	mode os.FileMode // permission bits, with os.ModeSticky
	dir  bool
	file string // the host file to copy, for regular files
}

// rootEntries are the layer's paths, parents first. Every path is owned
// by root and readable (directories searchable) by all; /tmp and /data are
// writable by all, as /tmp is on any system.
func rootEntries(s spec) []entry {
	dir := func(p string) entry { return entry{path: p, mode: 0o755, dir: true} }
	shared := func(p string) entry { return entry{path: p, mode: 0o777 | os.ModeSticky, dir: true} }
	return []entry{
		dir("etc"), dir("etc/ssl"), dir("etc/ssl/certs"),
		{path: caPath[1:], mode: 0o644, file: s.CACerts},
		dir("usr"), dir("usr/local"), dir("usr/local/bin"),
		{path: binPath[1:], mode: 0o755, file: s.Binary},
		shared("tmp"),
		shared(dataDir[1:]),
	}
}

// rootLayer writes the layer's tar in memory (the binary is the bulk: tens
// of MB) and hands it to go-containerregistry, which compresses and digests it.
func rootLayer(s spec) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range rootEntries(s) {
		hdr := &tar.Header{
			Name:    e.path,
			Mode:    int64(e.mode.Perm()),
			ModTime: s.Created,
			Uname:   "root",
			Gname:   "root",
			Format:  tar.FormatPAX,
		}
		if e.mode&os.ModeSticky != 0 {
			hdr.Mode |= 0o1000 // c_ISVTX
		}
		var body []byte
		if e.dir {
			hdr.Typeflag, hdr.Name = tar.TypeDir, e.path+"/"
		} else {
			var err error
			if body, err = os.ReadFile(e.file); err != nil {
				return nil, fmt.Errorf("read %s for %s: %w", e.file, "/"+e.path, err)
			}
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("layer: %s: %w", e.path, err)
		}
		if _, err := tw.Write(body); err != nil {
			return nil, fmt.Errorf("layer: %s: %w", e.path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	raw := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(raw)), nil
	})
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	return layer, nil
}

// elfMachines maps the architectures the image is built for to ELF's.
var elfMachines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// checkStatic refuses a binary the image could not run: not linux for
// arch, or dynamically linked (the image has no libc), as a binary built
// with cgo would be.
func checkStatic(path, arch string) error {
	want, ok := elfMachines[arch]
	if !ok {
		return fmt.Errorf("architecture %q: the image is built for amd64 or arm64", arch)
	}
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s is not a linux binary: %w", path, err)
	}
	defer f.Close()
	if f.Machine != want {
		return fmt.Errorf("%s is built for %s, not %s", path, f.Machine, arch)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked; the image has no libc: build it with CGO_ENABLED=0", path)
		}
	}
	return nil
}

// imageTags are the names `docker load` gives the image.
func imageTags(repo, version string) ([]name.Tag, error) {
	versions := []string{version}
	if version != "latest" {
		versions = append(versions, "latest")
	}
	var tags []name.Tag
	for _, v := range versions {
		t, err := name.NewTag(repo + ":" + v)
		if err != nil {
			return nil, fmt.Errorf("image tag %s:%s: %w (a tag is letters, digits, '_', '.' and '-')", repo, v, err)
		}
		tags = append(tags, t)
	}
	return tags, nil
}

// writeTarball writes img as a docker-style tarball (manifest.json,
// config, gzipped layer) under every tag, atomically: a failed build
// leaves no half-written tarball for `docker load` to choke on.
func writeTarball(path string, img v1.Image, tags []name.Tag) (err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".image-*.tar")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	refs := map[name.Reference]v1.Image{}
	for _, t := range tags {
		refs[t] = img
	}
	if err := tarball.MultiRefWrite(refs, f); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := errors.Join(f.Chmod(0o644), f.Sync(), f.Close()); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
