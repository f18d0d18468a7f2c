package main

import (
	"archive/tar"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/statepack/statepack/internal/datagen"
	"github.com/statepack/statepack/internal/treetest"
)

// TestImageContents checks the image as a registry and a runtime see it:
// a valid docker-style tarball under both tags, the config (entrypoint,
// environment, a non-root user), and a file system of exactly the binary,
// the CA bundle, /tmp and /data, all owned by root and readable by any uid.
func TestImageContents(t *testing.T) {
	b := buildTestImage(t)
	if err := validate.Image(b.img); err != nil {
		t.Fatalf("the image does not validate: %v", err)
	}

	// manifest.json: what `docker load` names the image.
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(b.tarball) })
	if err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	var tags []string
	for _, d := range m {
		tags = append(tags, d.RepoTags...)
	}
	slices.Sort(tags)
	if want := []string{"statepack:latest", "statepack:" + testVersion}; !slices.Equal(tags, want) {
		t.Errorf("the tarball's tags are %v, want %v", tags, want)
	}

	cfg := b.config
	if cfg.OS != "linux" || cfg.Architecture != runtime.GOARCH || cfg.RootFS.Type != "layers" {
		t.Errorf("platform %s/%s, rootfs type %q; want linux/%s, layers", cfg.OS, cfg.Architecture, cfg.RootFS.Type, runtime.GOARCH)
	}
	if !slices.Equal(cfg.Config.Entrypoint, []string{binPath}) || len(cfg.Config.Cmd) != 0 {
		t.Errorf("entrypoint %q, cmd %q; want [%s] and no cmd", cfg.Config.Entrypoint, cfg.Config.Cmd, binPath)
	}
	env := map[string]string{}
	for _, kv := range cfg.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	if env["STATEPACK_STORE"] != storeDir || env["HOME"] != dataDir || env["PATH"] != filepath.Dir(binPath) {
		t.Errorf("environment %q: want the store in %s, HOME %s and PATH %s", cfg.Config.Env, storeDir, dataDir, filepath.Dir(binPath))
	}
	for _, k := range []string{"DATA_DIR", "STATEPACK_REMOTE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		if _, ok := env[k]; ok {
			t.Errorf("the image sets %s, which is the user's to set", k)
		}
	}
	uid, _, err := parseUser(cfg.Config.User)
	if err != nil || uid == 0 {
		t.Errorf("user %q: want numeric non-root ids, so that Kubernetes' runAsNonRoot accepts the image (%v)", cfg.Config.User, err)
	}
	if l := cfg.Config.Labels; l["org.opencontainers.image.version"] != testVersion || l["org.opencontainers.image.revision"] != testCommit {
		t.Errorf("labels %v: want version %s and revision %s", l, testVersion, testCommit)
	}

	files := b.files(t)
	var paths []string
	for p := range files {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	want := []string{"/data", "/etc", "/etc/ssl", "/etc/ssl/certs", caPath, "/tmp", "/usr", "/usr/local", "/usr/local/bin", binPath}
	slices.Sort(want)
	if !slices.Equal(paths, want) {
		t.Errorf("the image holds %q, want exactly %q", paths, want)
	}
	for p, e := range files {
		mode := fs.FileMode(e.hdr.Mode)
		if e.hdr.Uid != 0 || e.hdr.Gid != 0 {
			t.Errorf("%s is owned by %d:%d, want root", p, e.hdr.Uid, e.hdr.Gid)
		}
		switch {
		case p == "/tmp" || p == dataDir:
			if e.hdr.Mode != 0o1777 || e.hdr.Typeflag != tar.TypeDir {
				t.Errorf("%s has mode %o, want a directory with 1777: any uid writes there", p, e.hdr.Mode)
			}
		case e.hdr.Typeflag == tar.TypeDir:
			if mode.Perm() != 0o755 {
				t.Errorf("%s has mode %v, want 0755", p, mode.Perm())
			}
		case p == binPath:
			if mode.Perm() != 0o755 {
				t.Errorf("%s has mode %v, want 0755: any uid runs it", p, mode.Perm())
			}
		default:
			if mode.Perm() != 0o644 {
				t.Errorf("%s has mode %v, want 0644: any uid reads it", p, mode.Perm())
			}
		}
	}
	if got := string(files[caPath].body); got != testCACerts {
		t.Errorf("%s holds %q, want the build machine's bundle", caPath, got)
	}
}

// TestEntrypointRestores runs the image's entrypoint, chrooted into its
// extracted file system as a uid that exists nowhere in it, the way a
// Kubernetes init container with runAsUser would: `pull STATE --restore`
// from a directory remote that a statepack on the host pushed must give
// back the saved tree exactly, with the store in the image's default
// place. `statepack version` must show what the build stamped. The same
// binary, run on the host, pushed the remote.
func TestEntrypointRestores(t *testing.T) {
	needRoot(t)
	b := buildTestImage(t)
	c := container{t: t, root: b.extract(t), config: b.config}

	v := c.exec("", nil, "version", "--json")
	if v.code != 0 {
		t.Fatalf("%s", v)
	}
	var version struct{ Version, Commit string }
	if err := json.Unmarshal([]byte(v.stdout), &version); err != nil {
		t.Fatalf("version --json: %v\n%s", err, v)
	}
	if version.Version != testVersion || version.Commit != testCommit {
		t.Errorf("statepack version in the image says %+v, want %s and %s", version, testVersion, testCommit)
	}

	// The remote, made on the host.
	host := t.TempDir()
	source, remote := filepath.Join(host, "data"), filepath.Join(host, "remote")
	if _, err := datagen.Generate(source, datagen.Options{Seed: 18, Size: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HOME": host, "STATEPACK_STORE": filepath.Join(host, "store"), "DATA_DIR": source, "STATEPACK_REMOTE": remote}
	b.onHost(t, env, "init", "--remote", remote)
	b.onHost(t, env, "save", "orders-e2e", "-m", "from the host")
	b.onHost(t, env, "push", "orders-e2e")
	want := treetest.MustRead(t, source)

	// Copied into the container's root, owned by root: read-only to the uid.
	copyTree(t, remote, filepath.Join(c.root, "srv", "remote"))
	const uid, gid = 4321, 4321
	c.mkdirOwned("/srv/localstack", uid, gid)
	env = map[string]string{"DATA_DIR": "/srv/localstack/state", "STATEPACK_REMOTE": "/srv/remote"}
	res := c.exec("4321:4321", env, "pull", "orders-e2e", "--restore")
	if res.code != 0 {
		t.Fatalf("%s", res)
	}
	t.Logf("%s", res)
	restored := filepath.Join(c.root, "srv", "localstack", "state")
	treetest.AssertEqual(t, want, treetest.MustRead(t, restored))
	for _, p := range []string{restored, filepath.Join(c.root, storeDir)} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != uid || st.Gid != gid {
			t.Errorf("%s is owned by %d:%d, want the uid that ran the image, %d:%d", p, st.Uid, st.Gid, uid, gid)
		}
	}

	// The same container again: the store kept in /data knows DATA_DIR,
	// so a second restore after a change puts the saved tree back.
	if err := os.WriteFile(filepath.Join(restored, "stray.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if res := c.exec("4321:4321", env, "pull", "orders-e2e", "--restore"); res.code != 0 {
		t.Fatalf("%s", res)
	}
	treetest.AssertEqual(t, want, treetest.MustRead(t, restored))
}
