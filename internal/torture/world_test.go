package torture

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"golang.org/x/sys/unix"

	"github.com/statepack/statepack/internal/datagen"
	"github.com/statepack/statepack/internal/miniotest"
	"github.com/statepack/statepack/internal/testbin"
	"github.com/statepack/statepack/internal/treetest"
)

// Backends a scenario runs against.
const (
	backendLocal = "local" // the local store only
	backendDir   = "dir"   // a directory remote
	backendMinIO = "minio" // an S3 remote on the shared MinIO
)

// interruptGrace bounds how long a command may take to stop after
// SIGINT.
const interruptGrace = 10 * time.Second

// world is one user's machine for one scenario: a DATA_DIR, a local store,
// perhaps a remote, and the binary run with them. Paths stay fixed for the
// scenario's lifetime (the stat cache is keyed by DATA_DIR's path); reset
// puts the template state back before every attack.
type world struct {
	t       *testing.T
	name    string
	backend string
	seed    int64
	mb      int64 // DATA_DIR size in MiB
	long    bool  // a torture run: bigger histories

	root, data, store, rdir, tmpl string

	run *testbin.Runner
	s3  *s3side // backendMinIO only

	trees map[string]treetest.Tree
	ids   map[string]string

	storeCaptured bool
	mu            sync.Mutex
	live          map[*exec.Cmd]bool
}

// s3side is a scenario's corner of a MinIO bucket: the working prefix the
// commands see and the template prefix reset copies from.
type s3side struct {
	srv        *miniotest.Server
	bucket     string
	work, tmpl string // prefixes without the trailing slash
}

func newWorld(t *testing.T, name, backend string, c config) *world {
	t.Helper()
	root := t.TempDir()
	w := &world{
		t: t, name: name, backend: backend, mb: c.DataMB, long: c.Long,
		seed: int64(c.Seed&(1<<62-1)) ^ int64(hashName(name)&0xffff),
		root: root, data: filepath.Join(root, "data"), store: filepath.Join(root, "store"),
		rdir: filepath.Join(root, "remote"), tmpl: filepath.Join(root, "tmpl"),
		trees: map[string]treetest.Tree{}, ids: map[string]string{}, live: map[*exec.Cmd]bool{},
	}
	binary(t)
	w.run = testbin.New(t)
	w.run.Timeout = 5 * time.Minute
	w.run.Env["STATEPACK_STORE"] = w.store
	w.run.Env["DATA_DIR"] = w.data
	switch backend {
	case backendDir:
		// An empty directory: the first push creates the remote there (a
		// directory that does not exist is refused as a typo).
		if err := os.MkdirAll(w.rdir, 0o755); err != nil {
			t.Fatal(err)
		}
		w.run.Env["STATEPACK_REMOTE"] = w.rdir
	case backendMinIO:
		srv := miniotest.Get(t)
		w.s3 = &s3side{srv: srv, bucket: srv.NewBucket(t.Context(), t), work: "torture-" + name, tmpl: "torture-" + name + "-tmpl"}
		w.run.Env["STATEPACK_REMOTE"] = "s3://" + w.s3.bucket + "/" + w.s3.work
		w.run.Env["AWS_ENDPOINT_URL"] = srv.Endpoint
		w.run.Env["AWS_ACCESS_KEY_ID"] = srv.AccessKey
		w.run.Env["AWS_SECRET_ACCESS_KEY"] = srv.SecretKey
		w.run.Env["AWS_REGION"] = cmp.Or(srv.Region, "us-east-1")
	}
	if err := os.MkdirAll(w.tmpl, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.killLeftovers)
	return w
}

func hashName(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// hasRemote reports whether the scenario has a remote.
func (w *world) hasRemote() bool { return w.backend != backendLocal }

// killLeftovers kills any command still running when the test ends.
func (w *world) killLeftovers() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for cmd := range w.live {
		_ = cmd.Process.Kill()
	}
}

// outcome is what one attacked run of the binary did.
type outcome struct {
	res     testbin.Result
	sent    bool          // the signal was sent before the command ended by itself
	killed  bool          // the command died of SIGKILL
	died    bool          // the command died of some signal (no handler ran)
	hung    bool          // it did not stop within interruptGrace of SIGINT
	took    time.Duration // start to exit
	stopped time.Duration // signal to exit
}

// attack runs args and sends sig after delay unless the command finished
// first; sig 0 runs it to completion. The only waiting is the delay itself
// and, after SIGINT, at most interruptGrace for the command to stop.
func (w *world) attack(sig syscall.Signal, delay time.Duration, args ...string) outcome {
	w.t.Helper()
	cmd := w.run.Command(args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		w.t.Fatalf("start statepack %s: %v", strings.Join(args, " "), err)
	}
	w.mu.Lock()
	w.live[cmd] = true
	w.mu.Unlock()
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	var o outcome
	var sentAt time.Time
	grace := interruptGrace
	if sig == 0 { // run to completion, within the runner's timeout
		sig, delay, grace = syscall.SIGKILL, w.run.Timeout, 0
	}
	timer := time.NewTimer(delay)
	select {
	case <-done:
		timer.Stop()
	case <-timer.C:
		sentAt, o.sent, o.hung = time.Now(), true, grace == 0
		_ = cmd.Process.Signal(sig)
		if sig == syscall.SIGKILL {
			<-done
			break
		}
		gt := time.NewTimer(grace)
		select {
		case <-done:
			gt.Stop()
		case <-gt.C:
			o.hung = true
			_ = cmd.Process.Kill()
			<-done
		}
	}
	o.took = time.Since(start)
	if o.sent {
		o.stopped = time.Since(sentAt)
	}
	w.mu.Lock()
	delete(w.live, cmd)
	w.mu.Unlock()
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	o.died = ws.Signaled()
	o.killed = ws.Signaled() && ws.Signal() == syscall.SIGKILL
	o.res = testbin.Result{Args: args, Stdout: stdout.String(), Stderr: stderr.String(), Code: cmd.ProcessState.ExitCode()}
	return o
}

// sp runs the binary and fails the test unless it succeeds.
func (w *world) sp(args ...string) testbin.Result {
	w.t.Helper()
	return w.run.MustRun(args...)
}

// spJSON runs the binary with --json, requires success and decodes stdout.
func (w *world) spJSON(v any, args ...string) {
	w.t.Helper()
	res := w.run.MustRun(append([]string{"--json"}, args...)...)
	if err := json.Unmarshal([]byte(res.Stdout), v); err != nil {
		w.t.Fatalf("decode statepack %s: %v\n%s", strings.Join(args, " "), err, res.Stdout)
	}
}

// tryJSON is spJSON for checks: it reports a problem instead of failing.
func (w *world) tryJSON(v any, args ...string) error {
	w.t.Helper()
	res := w.run.Run(append([]string{"--json"}, args...)...)
	if res.Code != 0 {
		return fmt.Errorf("%s", res)
	}
	if err := json.Unmarshal([]byte(res.Stdout), v); err != nil {
		return fmt.Errorf("decode statepack %s: %v\n%s", strings.Join(args, " "), err, res.Stdout)
	}
	return nil
}

// Parts of the JSON documents the checks read.
type (
	saveDoc struct {
		Snapshot string `json:"snapshot"`
	}
	listDoc struct {
		States []struct {
			State    string `json:"state"`
			Snapshot string `json:"snapshot"`
			Versions int    `json:"versions"`
		} `json:"states"`
	}
	logDoc struct {
		Versions []struct {
			Snapshot string `json:"snapshot"`
		} `json:"versions"`
	}
	statusDoc struct {
		InterruptedRestore string `json:"interrupted_restore"`
		Snapshot           string `json:"snapshot"`
	}
	verifyDoc struct {
		OK       bool `json:"ok"`
		Problems []struct {
			Object string `json:"object"`
			Error  string `json:"error"`
		} `json:"problems"`
	}
	pruneDoc struct {
		SnapshotsRemoved int `json:"snapshots_removed"`
		PacksRemoved     int `json:"packs_removed"`
		PacksRepacked    int `json:"packs_repacked"`
	}
)

// heads lists the states of the store (or the remote) and their heads.
func (w *world) heads(remote bool) (map[string]string, error) {
	var l listDoc
	args := []string{"list"}
	if remote {
		args = append(args, "--remote")
	}
	if err := w.tryJSON(&l, args...); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, s := range l.States {
		out[s.State] = s.Snapshot
	}
	return out, nil
}

// history lists a state's versions, newest first.
func (w *world) history(state string, remote bool) ([]string, error) {
	var l logDoc
	args := []string{"log", state}
	if remote {
		args = append(args, "--remote")
	}
	if err := w.tryJSON(&l, args...); err != nil {
		return nil, err
	}
	var ids []string
	for _, v := range l.Versions {
		ids = append(ids, v.Snapshot)
	}
	return ids, nil
}

// verify runs statepack verify on the store or the remote and returns
// what it found wrong.
func (w *world) verify(remote, readData bool) []string {
	w.t.Helper()
	args := []string{"--json", "verify"}
	if readData {
		args = append(args, "--read-data")
	}
	where := "store"
	if remote {
		args, where = append(args, "--remote"), "remote"
	}
	res := w.run.Run(args...)
	var v verifyDoc
	_ = json.Unmarshal([]byte(res.Stdout), &v)
	if res.Code == 0 && v.OK {
		return nil
	}
	out := []string{fmt.Sprintf("verify of the %s failed (exit %d): %s", where, res.Code, strings.TrimSpace(res.Stderr))}
	for _, p := range v.Problems {
		out = append(out, fmt.Sprintf("  %s: %s", p.Object, p.Error))
	}
	return out
}

// status reads statepack status --json.
func (w *world) status() (statusDoc, error) {
	var s statusDoc
	err := w.tryJSON(&s, "status")
	return s, err
}

// restoreInto restores a snapshot into a scratch directory (not DATA_DIR)
// and returns its tree.
func (w *world) restoreInto(spec string) (treetest.Tree, error) {
	scratch := filepath.Join(w.root, "scratch")
	if err := clearDir(scratch); err != nil {
		return nil, err
	}
	defer clearDir(scratch)
	res := w.run.Run("--quiet", "restore", spec, "--data-dir", scratch, "--no-backup")
	if res.Code != 0 {
		return nil, fmt.Errorf("%s", res)
	}
	return treetest.Read(scratch)
}

// gen fills dir with a generated LocalStack-like tree of mb MiB.
func (w *world) gen(dir string, seed int64, mb int64) {
	w.t.Helper()
	if _, err := datagen.Generate(dir, datagen.Options{Seed: w.seed + seed, Size: max(mb<<20, datagen.MinSize)}); err != nil {
		w.t.Fatal(err)
	}
}

// mutate applies one test stage to DATA_DIR.
func (w *world) mutate(step int) {
	w.t.Helper()
	if _, err := datagen.Mutate(w.data, w.seed, step); err != nil {
		w.t.Fatal(err)
	}
}

// save saves DATA_DIR (or dir) as a new version of state and returns its id.
func (w *world) save(state string, dir string) string {
	w.t.Helper()
	var s saveDoc
	args := []string{"save", state, "-m", "setup"}
	if dir != "" {
		args = append(args, "--data-dir", dir)
	}
	w.spJSON(&s, args...)
	return s.Snapshot
}

// initStore creates the store with small packs, so that every command
// writes many objects and a kill has many gaps between writes to land in.
func (w *world) initStore() {
	w.t.Helper()
	w.sp("init", "--pack-size", "2MiB")
}

// tree reads a tree, failing the test on error.
func (w *world) tree(dir string) treetest.Tree {
	w.t.Helper()
	return treetest.MustRead(w.t, dir)
}

// captureStore fixes the store's template now, before the scenario goes on
// to change the remote (pull: the local store lags the remote).
func (w *world) captureStore() {
	w.t.Helper()
	if err := linkTree(w.store, filepath.Join(w.tmpl, "store")); err != nil {
		w.t.Fatal(err)
	}
	w.storeCaptured = true
}

// capture makes the working state the template every attack starts from.
func (w *world) capture(keepData bool) {
	w.t.Helper()
	if !w.storeCaptured {
		w.captureStore()
	}
	if keepData {
		if err := copyTree(w.data, filepath.Join(w.tmpl, "data")); err != nil {
			w.t.Fatal(err)
		}
	}
	if w.backend == backendDir {
		if err := linkTree(w.rdir, filepath.Join(w.tmpl, "remote")); err != nil {
			w.t.Fatal(err)
		}
	}
	if w.s3 != nil {
		if err := w.s3.copyPrefix(w.t.Context(), w.s3.work, w.s3.tmpl); err != nil {
			w.t.Fatal(err)
		}
	}
}

// reset puts the template back: DATA_DIR is copied (restore changes files
// in place), the store and a directory remote are hard-linked (their
// objects are only ever replaced by rename, never written in place), and
// an S3 remote is copied server-side.
func (w *world) reset() {
	w.t.Helper()
	for _, d := range []string{w.data, w.store, w.rdir} {
		if err := clearDir(d); err != nil {
			w.t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(w.tmpl, "data")); err == nil {
		if err := copyTree(filepath.Join(w.tmpl, "data"), w.data); err != nil {
			w.t.Fatal(err)
		}
	}
	if err := linkTree(filepath.Join(w.tmpl, "store"), w.store); err != nil {
		w.t.Fatal(err)
	}
	if w.backend == backendDir {
		if err := linkTree(filepath.Join(w.tmpl, "remote"), w.rdir); err != nil {
			w.t.Fatal(err)
		}
	}
	if w.s3 != nil {
		ctx := w.t.Context()
		if err := w.s3.clear(ctx, w.s3.work); err != nil {
			w.t.Fatal(err)
		}
		if err := w.s3.copyPrefix(ctx, w.s3.tmpl, w.s3.work); err != nil {
			w.t.Fatal(err)
		}
	}
}

// leftovers lists temporary files and locks a command left behind: .tmp
// files in the store or a directory remote, .statepack-tmp- files in
// DATA_DIR, locks on either side, and incomplete multipart uploads on S3.
func (w *world) leftovers() []string {
	w.t.Helper()
	var out []string
	scan := func(root, what string, bad func(rel string, d fs.DirEntry) bool) {
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || p == root {
				return nil
			}
			rel, _ := filepath.Rel(root, p)
			if bad(filepath.ToSlash(rel), d) {
				out = append(out, what+" "+filepath.ToSlash(rel))
			}
			return nil
		})
	}
	repoJunk := func(rel string, d fs.DirEntry) bool {
		return strings.Contains(d.Name(), ".tmp") || (strings.HasPrefix(rel, "locks/") && !d.IsDir())
	}
	scan(w.store, "store:", repoJunk)
	scan(w.data, "DATA_DIR:", func(_ string, d fs.DirEntry) bool { return strings.HasPrefix(d.Name(), ".statepack-tmp-") })
	if w.backend == backendDir {
		scan(w.rdir, "remote:", repoJunk)
	}
	if w.s3 != nil {
		out = append(out, w.s3.leftovers(w.t.Context())...)
	}
	return out
}

// copyPrefix copies every object under from/ to the same name under to/,
// server-side.
func (s *s3side) copyPrefix(ctx context.Context, from, to string) error {
	c := s.srv.Client()
	for obj := range c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: from + "/", Recursive: true}) {
		if obj.Err != nil {
			return obj.Err
		}
		dst := to + "/" + strings.TrimPrefix(obj.Key, from+"/")
		_, err := c.CopyObject(ctx, minio.CopyDestOptions{Bucket: s.bucket, Object: dst}, minio.CopySrcOptions{Bucket: s.bucket, Object: obj.Key})
		if err != nil {
			return fmt.Errorf("copy %s to %s: %w", obj.Key, dst, err)
		}
	}
	return nil
}

// clear removes every object under prefix/ (and aborts its uploads).
func (s *s3side) clear(ctx context.Context, prefix string) error {
	c := s.srv.Client()
	objs := c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix + "/", Recursive: true})
	for e := range c.RemoveObjects(ctx, s.bucket, objs, minio.RemoveObjectsOptions{}) {
		if e.Err != nil {
			return fmt.Errorf("remove %s: %w", e.ObjectName, e.Err)
		}
	}
	for u := range c.ListIncompleteUploads(ctx, s.bucket, prefix+"/", true) {
		if u.Err != nil {
			return u.Err
		}
		if err := c.RemoveIncompleteUpload(ctx, s.bucket, u.Key); err != nil {
			return err
		}
	}
	return nil
}

// leftovers lists locks and incomplete multipart uploads under the working
// prefix.
func (s *s3side) leftovers(ctx context.Context) []string {
	c := s.srv.Client()
	var out []string
	for obj := range c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.work + "/locks/", Recursive: true}) {
		if obj.Err != nil {
			return append(out, "remote: list locks: "+obj.Err.Error())
		}
		out = append(out, "remote: "+strings.TrimPrefix(obj.Key, s.work+"/"))
	}
	for u := range c.ListIncompleteUploads(ctx, s.bucket, s.work+"/", true) {
		if u.Err != nil {
			return append(out, "remote: list uploads: "+u.Err.Error())
		}
		out = append(out, "remote: incomplete multipart upload of "+u.Key)
	}
	return out
}

// clearDir removes a directory tree, making read-only directories
// writable first, so that whatever an attack left can be cleaned up.
func clearDir(p string) error {
	err := os.RemoveAll(p)
	if err == nil {
		return nil
	}
	_ = filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(q, 0o755)
		}
		return nil
	})
	return os.RemoveAll(p)
}

// linkTree recreates src at dst with hard links to src's files.
func linkTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		default:
			return os.Link(p, target)
		}
	})
}

// copyTree copies src to dst with modes and modification times (those of
// directories set after their content), so the copy reads as the same tree.
func copyTree(src, dst string) error {
	var dirs []string
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			dirs = append(dirs, rel)
			return os.MkdirAll(target, 0o755)
		case fi.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, target); err != nil {
				return err
			}
			ts := []unix.Timespec{unix.NsecToTimespec(fi.ModTime().UnixNano()), unix.NsecToTimespec(fi.ModTime().UnixNano())}
			return unix.UtimesNanoAt(unix.AT_FDCWD, target, ts, unix.AT_SYMLINK_NOFOLLOW)
		case fi.Mode().IsRegular():
			return copyFile(p, target, fi)
		}
		return fmt.Errorf("copy %s: unexpected file type %v", p, fi.Mode())
	})
	if err != nil {
		return err
	}
	slices.Reverse(dirs)
	for _, rel := range dirs {
		fi, err := os.Lstat(filepath.Join(src, rel))
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if err := os.Chmod(target, fi.Mode().Perm()); err != nil {
			return err
		}
		if err := os.Chtimes(target, fi.ModTime(), fi.ModTime()); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string, fi fs.FileInfo) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if err := os.Chmod(dst, fi.Mode().Perm()); err != nil {
		return err
	}
	return os.Chtimes(dst, fi.ModTime(), fi.ModTime())
}

// diffTrees describes how got differs from want, in at most a few lines.
func diffTrees(want, got treetest.Tree) string {
	d := treetest.Diff(want, got)
	if len(d) == 0 {
		return ""
	}
	if len(d) > 6 {
		d = append(d[:6], fmt.Sprintf("... and %d more", len(d)-6))
	}
	return strings.Join(d, "; ")
}

// lines splits output into its non-empty lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}
