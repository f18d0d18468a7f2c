// Command release builds statepack's release archives, the files that the
// GitHub Action and the README's install steps download by name:
//
//	dist/statepack_<version>_<os>_<arch>.tar.gz   statepack, README.md and LICENSE (if any)
//	dist/statepack_<version>_checksums.txt        `sha256sum` lines for the archives
//
// `make release VERSION=v1.2.3` runs it from the module root as
//
//	go run ./internal/cmd/release -version v1.2.3 [-dist dist] [-commit abc1234] [os/arch ...]
//
// for linux on amd64 and arm64 unless platforms are named (statepack
// supports linux only: see cmd/statepack/unsupported_os.go). The binaries
// are built with CGO_ENABLED=0 (static) and -trimpath, and stamped with the
// version and the commit (`git rev-parse --short HEAD`, "unknown" outside a
// checkout) that `statepack version` prints.
//
// The archives are reproducible: two runs on one commit with one Go
// toolchain write identical bytes. Entries are in a fixed order, owned by
// uid and gid 0, and dated SOURCE_DATE_EPOCH if set, else the commit's
// time, else the Unix epoch; the gzip header carries no name or time.
// Packaging is written here rather than with the host's tar, whose flags
// for that differ between GNU and BSD tar.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// platform is one GOOS/GOARCH pair a release is built for.
type platform struct{ OS, Arch string }

func (p platform) String() string { return p.OS + "/" + p.Arch }

// defaultPlatforms are the systems statepack supports (cmd/statepack
// refuses to build for any other GOOS) on the two architectures CI runners
// and laptops use.
var defaultPlatforms = []platform{{"linux", "amd64"}, {"linux", "arm64"}}

// mainPackage is what the archives hold; `go install` of it installs the
// same program.
const mainPackage = "./cmd/statepack"

// versionPattern is the only version form the archive names allow, so a
// download URL built from a tag always matches a file.
var versionPattern = regexp.MustCompile(`^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`)

// archiveName is the file a platform's binary is published as. The GitHub
// Action downloads by this name: changing it breaks every installed
// workflow.
func archiveName(version string, p platform) string {
	return fmt.Sprintf("statepack_%s_%s_%s.tar.gz", version, p.OS, p.Arch)
}

// checksumsName is the `sha256sum` file of a release's archives, which the
// Action and users check a download against.
func checksumsName(version string) string {
	return fmt.Sprintf("statepack_%s_checksums.txt", version)
}

// options say what to build; zero values are filled in by release.
type options struct {
	Version   string     // vX.Y.Z; required
	Commit    string     // stamped commit; empty means from git
	Root      string     // module root; empty means `go env GOMOD`'s directory
	Dist      string     // output directory; created if missing
	Platforms []platform // empty means defaultPlatforms
	Log       io.Writer  // progress and warnings; nil discards them
}

func main() {
	version := flag.String("version", "", "release version, vX.Y.Z (required)")
	commit := flag.String("commit", "", "commit to stamp (default: git rev-parse --short HEAD)")
	dist := flag.String("dist", "dist", "directory to write the archives and checksums to")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: release -version vX.Y.Z [-dist DIR] [-commit C] [os/arch ...]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	opts := options{Version: *version, Commit: *commit, Dist: *dist, Log: os.Stderr}
	for _, arg := range flag.Args() {
		goos, goarch, ok := strings.Cut(arg, "/")
		if !ok || goos == "" || goarch == "" {
			fmt.Fprintf(os.Stderr, "release: platform %q is not os/arch (e.g. linux/amd64)\n", arg)
			os.Exit(2)
		}
		opts.Platforms = append(opts.Platforms, platform{goos, goarch})
	}
	files, err := release(context.Background(), opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "release: %v\n", err)
		os.Exit(1)
	}
	for _, f := range files {
		fmt.Println(f)
	}
}

// release builds every platform, then packages them into opts.Dist,
// replacing the files of an earlier run of the same version, and writes
// the checksums file last. It returns the paths it wrote.
func release(ctx context.Context, opts options) ([]string, error) {
	if !versionPattern.MatchString(opts.Version) {
		return nil, fmt.Errorf("version %q does not look like vX.Y.Z (e.g. v1.2.3)", opts.Version)
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if len(opts.Platforms) == 0 {
		opts.Platforms = defaultPlatforms
	}
	if opts.Dist == "" {
		return nil, errors.New("no output directory")
	}
	if opts.Root == "" {
		root, err := moduleRoot(ctx)
		if err != nil {
			return nil, err
		}
		opts.Root = root
	}
	if opts.Commit == "" {
		opts.Commit = gitCommit(ctx, opts.Root)
		if dirty(ctx, opts.Root) {
			fmt.Fprintf(opts.Log, "release: warning: the working tree has uncommitted changes; the binaries say commit %s but are not built from it\n", opts.Commit)
		}
	}
	mtime, err := sourceDate(ctx, opts.Root)
	if err != nil {
		return nil, err
	}
	extras, err := extraFiles(opts.Root)
	if err != nil {
		return nil, err
	}

	work, err := os.MkdirTemp("", "statepack-release-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	bins := make([]string, len(opts.Platforms))
	for i, p := range opts.Platforms {
		bins[i] = filepath.Join(work, p.OS+"_"+p.Arch, "statepack")
		fmt.Fprintf(opts.Log, "release: building %s %s (commit %s)\n", opts.Version, p, opts.Commit)
		if err := build(ctx, opts.Root, bins[i], p, opts.Version, opts.Commit); err != nil {
			return nil, err
		}
	}

	// Every binary built: only now replace an earlier run's files, so a
	// failed build leaves dist/ as it was.
	if err := os.MkdirAll(opts.Dist, 0o755); err != nil {
		return nil, fmt.Errorf("create output directory: %w", err)
	}
	old, err := filepath.Glob(filepath.Join(opts.Dist, "statepack_"+opts.Version+"_*"))
	if err != nil {
		return nil, err
	}
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return nil, fmt.Errorf("remove the earlier build: %w", err)
		}
	}
	var written []string
	sums := map[string]string{}
	for i, p := range opts.Platforms {
		name := archiveName(opts.Version, p)
		entries := append([]entry{{name: "statepack", path: bins[i], mode: 0o755}}, extras...)
		sum, err := writeArchive(filepath.Join(opts.Dist, name), entries, mtime)
		if err != nil {
			return nil, fmt.Errorf("package %s: %w", p, err)
		}
		sums[name] = sum
		written = append(written, filepath.Join(opts.Dist, name))
	}
	checksums := filepath.Join(opts.Dist, checksumsName(opts.Version))
	if err := writeAtomic(checksums, []byte(checksumLines(sums))); err != nil {
		return nil, fmt.Errorf("write checksums: %w", err)
	}
	return append(written, checksums), nil
}

// build compiles one static, stamped binary. The environment pins what
// would otherwise come from the caller's: GOFLAGS (a -race or -tags of the
// developer), and the instruction-set levels, which must stay the
// baseline for a binary that runs on any machine of its architecture.
func build(ctx context.Context, root, out string, p platform, version, commit string) error {
	ldflags := fmt.Sprintf("-s -w -X main.version=%s -X main.commit=%s", version, commit)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", out, mainPackage)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Arch, "GOFLAGS=", "GOAMD64=v1", "GOARM64=v8.0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s for %s: %w\n%s", mainPackage, p, err, bytes.TrimSpace(out))
	}
	return nil
}

// entry is one file of an archive.
type entry struct {
	name string // name in the archive
	path string // file to copy
	mode int64
}

// extraFiles are the documents shipped beside the binary: README.md, which
// must exist, and LICENSE when the repository has one.
func extraFiles(root string) ([]entry, error) {
	var extras []entry
	if _, err := os.Stat(filepath.Join(root, "LICENSE")); err == nil {
		extras = append(extras, entry{name: "LICENSE", path: filepath.Join(root, "LICENSE"), mode: 0o644})
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(root, "README.md")); err != nil {
		return nil, fmt.Errorf("README.md for the archives: %w", err)
	}
	return append(extras, entry{name: "README.md", path: filepath.Join(root, "README.md"), mode: 0o644}), nil
}

// writeArchive writes a reproducible .tar.gz of entries to dst and returns
// its SHA-256 in hex.
func writeArchive(dst string, entries []entry, mtime time.Time) (string, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return "", err
	}
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		data, err := os.ReadFile(e.path)
		if err != nil {
			return "", err
		}
		hdr := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     e.name,
			Mode:     e.mode,
			Size:     int64(len(data)),
			ModTime:  mtime,
			Format:   tar.FormatUSTAR,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return "", fmt.Errorf("%s: %w", e.name, err)
		}
		if _, err := tw.Write(data); err != nil {
			return "", fmt.Errorf("%s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	if err := writeAtomic(dst, buf.Bytes()); err != nil {
		return "", err
	}
	sum := sha256.Sum256(buf.Bytes())
	return hex.EncodeToString(sum[:]), nil
}

// checksumLines renders sums in `sha256sum` format, sorted by name, so
// `sha256sum -c` in the output directory checks every archive.
func checksumLines(sums map[string]string) string {
	names := make([]string, 0, len(sums))
	for n := range sums {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%s  %s\n", sums[n], n)
	}
	return b.String()
}

// writeAtomic replaces path with data, so an interrupted run never leaves
// a truncated archive under a name that will be published.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// moduleRoot is the directory of the main module's go.mod, so the program
// works from any directory inside the repository (its test runs in its own).
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the statepack module (go env GOMOD is empty)")
	}
	return filepath.Dir(gomod), nil
}

// gitCommit is the short commit of HEAD, or "unknown" outside a checkout
// (a source tarball) or without git.
func gitCommit(ctx context.Context, root string) string {
	out, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if c := strings.TrimSpace(string(out)); err == nil && c != "" {
		return c
	}
	return "unknown"
}

// dirty reports uncommitted changes to tracked files, after which the
// stamped commit does not describe the binary.
func dirty(ctx context.Context, root string) bool {
	out, err := exec.CommandContext(ctx, "git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output()
	return err == nil && len(bytes.TrimSpace(out)) > 0
}

// sourceDate is the time stamped on every archive entry: SOURCE_DATE_EPOCH
// (the reproducible-builds convention) if set, else the time of HEAD's
// commit, else the Unix epoch. Never the clock: that would make two builds
// differ.
func sourceDate(ctx context.Context, root string) (time.Time, error) {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil || sec < 0 {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q is not a Unix time in seconds", s)
		}
		return time.Unix(sec, 0).UTC(), nil
	}
	out, err := exec.CommandContext(ctx, "git", "-C", root, "log", "-1", "--format=%ct", "HEAD").Output()
	if err == nil {
		if sec, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && sec >= 0 {
			return time.Unix(sec, 0).UTC(), nil
		}
	}
	return time.Unix(0, 0).UTC(), nil
}
