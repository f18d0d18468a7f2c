package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/statepack/statepack/internal/miniotest"
)

func TestMain(m *testing.M) { os.Exit(miniotest.Main(m)) }

// What the tests stamp into the image, to find it back in `statepack version`.
const (
	testVersion = "v9.8.7-imagetest"
	testCommit  = "0123456789abcdef0123456789abcdef01234567"
	testCACerts = "-----BEGIN CERTIFICATE-----\nnot a real bundle: the tests check it is shipped as it is\n-----END CERTIFICATE-----\n"
)

// builtImage is an image made as `make image` makes it, written as the
// tarball `docker load` reads, and read back from it.
type builtImage struct {
	binary  string // the image's statepack, which runs on the host too
	tarball string
	img     v1.Image
	config  *v1.ConfigFile
}

// buildTestImage builds the binary and the image into a temporary
// directory (the go build cache makes every build after the first quick).
func buildTestImage(t *testing.T) builtImage {
	t.Helper()
	if _, ok := elfMachines[runtime.GOARCH]; !ok {
		t.Skipf("the image is built for amd64 and arm64, not %s", runtime.GOARCH)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "statepack")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := buildBinary(ctx, buildOptions{Go: "go", Arch: runtime.GOARCH, Version: testVersion, Commit: testCommit, Out: bin}); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(ca, []byte(testCACerts), 0o600); err != nil {
		t.Fatal(err)
	}
	img, err := buildImage(spec{Binary: bin, CACerts: ca, Arch: runtime.GOARCH, Version: testVersion, Commit: testCommit,
		Created: time.Unix(1700000000, 0).UTC()})
	if err != nil {
		t.Fatal(err)
	}
	tags, err := imageTags(defaultRepo, testVersion)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "dist", "statepack-image.tar")
	if err := writeTarball(out, img, tags); err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(defaultRepo + ":latest")
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := tarball.ImageFromPath(out, &tag)
	if err != nil {
		t.Fatalf("read the tarball back as docker load would: %v", err)
	}
	cfg, err := loaded.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return builtImage{binary: bin, tarball: out, img: loaded, config: cfg}
}

// layerEntry is one path of the image's file system.
type layerEntry struct {
	hdr  *tar.Header
	body []byte // regular files' content
}

// files reads the image's flattened file system, keyed by clean absolute path.
func (b builtImage) files(t *testing.T) map[string]layerEntry {
	t.Helper()
	rc := mutate.Extract(b.img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	out := map[string]layerEntry{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read the image's layers: %v", err)
		}
		var body []byte
		if hdr.Typeflag == tar.TypeReg {
			if body, err = io.ReadAll(tr); err != nil {
				t.Fatal(err)
			}
		}
		out[filepath.Join("/", hdr.Name)] = layerEntry{hdr: hdr, body: body}
	}
	return out
}

// extract writes the image's file system under a new temporary root as a
// container runtime would: modes (sticky bit included), owners, times.
func (b builtImage) extract(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	files := b.files(t)
	var dirs []string
	for p, e := range files {
		target := filepath.Join(root, p)
		mode := os.FileMode(e.hdr.Mode).Perm()
		if e.hdr.Mode&0o1000 != 0 {
			mode |= os.ModeSticky
		}
		switch e.hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				t.Fatal(err)
			}
			dirs = append(dirs, p)
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(target, e.body, 0o600); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("%s: the image holds a %c entry, which the tests do not extract", p, e.hdr.Typeflag)
		}
		if err := os.Lchown(target, e.hdr.Uid, e.hdr.Gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(target, mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range dirs {
		e := files[p]
		if err := os.Chtimes(filepath.Join(root, p), e.hdr.ModTime, e.hdr.ModTime); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// needRoot skips a test that chroots and switches uids when it cannot.
func needRoot(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("running the image's entrypoint under chroot needs linux")
	}
	if os.Geteuid() != 0 {
		t.Skip("running the image's entrypoint under chroot as another uid needs root: run these tests as root to check the image")
	}
}

// container runs the image's entrypoint in an extracted root, the way a
// container runtime would as far as statepack can tell: chrooted, as a
// given uid and gid with no supplementary groups, in the image's working
// directory, with the image's environment plus the caller's.
type container struct {
	t      *testing.T
	root   string
	config *v1.ConfigFile
}

// runResult is one run of the entrypoint.
type runResult struct {
	args           []string
	stdout, stderr string
	code           int
}

func (r runResult) String() string {
	return fmt.Sprintf("statepack %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// parseUser reads a docker `user` value of numeric ids ("uid" or
// "uid:gid"), or root.
func parseUser(u string) (uid, gid uint32, err error) {
	if u == "" || u == "root" {
		return 0, 0, nil
	}
	us, gs, hasGroup := strings.Cut(u, ":")
	if us == "root" {
		us = "0"
	}
	if !hasGroup {
		gs = us
	}
	uid64, err1 := strconv.ParseUint(us, 10, 32)
	gid64, err2 := strconv.ParseUint(gs, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("user %q: the image has no passwd file, so only numeric ids (or root) work: %w", u, err)
	}
	return uint32(uid64), uint32(gid64), nil
}

// exec runs the entrypoint with args as user ("" for the image's), with
// env added to the image's (and overriding it).
func (c container) exec(user string, env map[string]string, args ...string) runResult {
	c.t.Helper()
	if user == "" {
		user = c.config.Config.User
	}
	uid, gid, err := parseUser(user)
	if err != nil {
		c.t.Fatal(err)
	}
	entry := c.config.Config.Entrypoint
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, entry[0])
	cmd.Args = append(append([]string{}, entry...), args...)
	cmd.Dir = c.config.Config.WorkingDir
	environ := map[string]string{}
	for _, kv := range c.config.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		environ[k] = v
	}
	for k, v := range env {
		environ[k] = v
	}
	for k, v := range environ {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Chroot:     c.root,
		Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}},
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); cmd.ProcessState == nil {
		c.t.Fatalf("run the entrypoint %s in %s as %s: %v", entry[0], c.root, user, err)
	}
	return runResult{args: args, stdout: stdout.String(), stderr: stderr.String(), code: cmd.ProcessState.ExitCode()}
}

// onHost runs the image's statepack on the host, outside any root, with
// exactly env (and PATH), as the machine that pushes or checks a remote.
func (b builtImage) onHost(t *testing.T, env map[string]string, args ...string) {
	t.Helper()
	cmd := exec.Command(b.binary, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("statepack %s on the host: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// mkdirOwned makes dir under the root (parents as root, 0755) owned by uid:gid.
func (c container) mkdirOwned(dir string, uid, gid int) string {
	c.t.Helper()
	p := filepath.Join(c.root, dir)
	if err := os.MkdirAll(p, 0o755); err != nil {
		c.t.Fatal(err)
	}
	if err := os.Chown(p, uid, gid); err != nil {
		c.t.Fatal(err)
	}
	return p
}

// copyTree copies a directory tree (regular files and directories, modes
// kept) from src to dst, as moving a remote between machines would.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case fi.IsDir():
			return os.MkdirAll(target, fi.Mode().Perm())
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, b, fi.Mode().Perm())
		}
		return fmt.Errorf("%s: not a file or directory", p)
	})
	if err != nil {
		t.Fatalf("copy %s to %s: %v", src, dst, err)
	}
}
