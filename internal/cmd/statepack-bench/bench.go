package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/statepack/statepack/internal/benchutil"
	"github.com/statepack/statepack/internal/miniotest"
)

// bench is one run of the suite: its work directory, the binaries under
// test, the generated data, the S3 server and what was measured.
type bench struct {
	ctx       context.Context
	cfg       config
	log       io.Writer
	work      string
	tmpWork   bool             // work was made here and is removed at the end
	trash     *benchutil.Trash // trees done with, kept until the end (see benchutil.Trash)
	loadStart string           // load average when the suite started
	need      map[string]bool

	statepack, datagen string // binaries
	restic             string // empty: no restic column
	data               string // the pristine DATA_DIR
	dataStats          dataStats
	s3                 *miniotest.Server
	proxy              *benchutil.CountingProxy // counts the requests of no-op push and pull
	link               *benchutil.Link          // MinIO at --link-mbit, for the link rows
	endpoint           string                   // the S3 endpoint children use

	series map[string]*benchutil.Series
	facts  facts
	study  []studyRow
	scale  *scaleFacts // the scale row's remote and pushes; nil when it does not run
	// rssFloor is the highest RSS of the suite itself when it started a
	// measured command: no child's peak RSS can read lower (benchutil.ResetPeakRSS).
	rssFloor int64
}

// dataStats is what statepack-datagen generate --json prints.
type dataStats struct {
	Files    int   `json:"files"`
	Dirs     int   `json:"dirs"`
	Symlinks int   `json:"symlinks"`
	Bytes    int64 `json:"bytes"`
}

// facts are the numbers other than timings that rows report, one entry
// per run.
type facts struct {
	ChangedBytes []int64             // statepack-datagen mutate's changed_bytes
	StoreAdded   []int64             // store growth by the save after mutate
	Pages        *benchutil.PageDiff // pages the mutation changed (first run)
	PushBytes    []int64             // bytes the cold push sent
	TarBytes     []int64             // size of the tar -I 'zstd -1 -T0' archive
	StoreBytes   []int64             // size of the store after the cold save
	Requests     map[string][]int64  // requests MinIO received, per no-op series
	Reported     map[string][]int64  // requests the command reported
}

// newBench prepares the work directory and decides which rows run.
func newBench(ctx context.Context, cfg config, log io.Writer) (*bench, error) {
	b := &bench{ctx: ctx, cfg: cfg, log: log, work: cfg.Work, need: closeOver(cfg.Only, cfg.LinkMbit > 0),
		series: map[string]*benchutil.Series{}, loadStart: loadAverage(), facts: facts{Requests: map[string][]int64{}, Reported: map[string][]int64{}}}
	var err error
	if b.work == "" {
		b.work, err = os.MkdirTemp("", "statepack-bench-")
		b.tmpWork = true
	} else {
		b.work, err = filepath.Abs(b.work)
		if err == nil {
			err = os.MkdirAll(b.work, 0o755)
		}
	}
	if err != nil {
		return nil, err
	}
	if b.trash, err = benchutil.NewTrash(filepath.Join(b.work, "trash")); err != nil {
		return nil, err
	}
	if p, err := exec.LookPath("restic"); err == nil && cfg.Restic {
		b.restic = p
	}
	return b, nil
}

// close stops MinIO and removes the work directory unless asked to keep
// it.
func (b *bench) close() error {
	if b.proxy != nil {
		_ = b.proxy.Close()
	}
	if b.link != nil {
		_ = b.link.Close()
	}
	if b.s3 != nil {
		b.s3.Stop()
	}
	switch {
	case b.cfg.Keep:
		return nil
	case b.tmpWork:
		return benchutil.RemoveAll(b.work)
	}
	return b.trash.Empty()
}

// discard retires a tree the suite is done with: kept on disk until the
// end, its cached pages dropped, so that no later row creates files right
// after gigabytes were deleted (benchutil.Trash says what that costs).
func (b *bench) discard(dir string) error {
	if err := b.trash.Retire(dir); err != nil {
		return err
	}
	// A run needs room for about six copies of DATA_DIR at once; with
	// less left, the trash goes, and the rows after pay for it.
	need := max(6*b.dataStats.Bytes, 1<<30)
	if free, err := benchutil.FreeBytes(b.work); err == nil && free < need {
		b.logf("only %s free: emptying the trash; the next cold rows may pay the file system's scan of freed inodes",
			humanize.IBytes(uint64(free)))
		return b.trash.Empty()
	}
	return nil
}

// setup finds or builds the binaries, generates the data and starts
// MinIO when a remote row runs, and builds the scale row's remote.
func (b *bench) setup() error {
	if err := b.binaries(); err != nil {
		return err
	}
	if b.needsData() {
		if err := b.generateData(); err != nil {
			return err
		}
	}
	if b.needsRemote() {
		if err := b.startS3(); err != nil {
			return err
		}
	}
	if b.need["scale"] {
		return b.setupScale()
	}
	return nil
}

// generateData makes the pristine DATA_DIR of --mb MiB.
func (b *bench) generateData() error {
	b.data = filepath.Join(b.work, "data")
	if err := benchutil.RemoveAll(b.data); err != nil {
		return err
	}
	b.logf("generating %d MiB of LocalStack-like data (seed 1) in %s", b.cfg.MB, b.data)
	out, err := b.output(b.datagen, "generate", "--dir", b.data, "--size", fmt.Sprintf("%dMiB", b.cfg.MB), "--seed", "1", "--json")
	if err != nil {
		return err
	}
	if err := json.Unmarshal(out, &b.dataStats); err != nil {
		return fmt.Errorf("statepack-datagen generate: %v", err)
	}
	b.logf("data: %d files, %d dirs, %d symlinks, %s", b.dataStats.Files, b.dataStats.Dirs, b.dataStats.Symlinks,
		humanize.IBytes(uint64(b.dataStats.Bytes)))
	return nil
}

// binaries takes statepack and statepack-datagen from --bin, or builds
// them into the work directory.
func (b *bench) binaries() error {
	dir := b.cfg.Bin
	if dir == "" {
		dir = filepath.Join(b.work, "bin")
		for _, c := range []struct{ name, pkg string }{
			{"statepack", "github.com/statepack/statepack/cmd/statepack"},
			{"statepack-datagen", "github.com/statepack/statepack/internal/cmd/statepack-datagen"},
		} {
			b.logf("building %s", c.name)
			cmd := exec.CommandContext(b.ctx, "go", "build", "-o", filepath.Join(dir, c.name), c.pkg)
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("go build %s: %v\n%s", c.name, err, out)
			}
		}
	}
	b.statepack, b.datagen = filepath.Join(dir, "statepack"), filepath.Join(dir, "statepack-datagen")
	for _, p := range []string{b.statepack, b.datagen} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("--bin: %w", err)
		}
	}
	return nil
}

// logf prints a progress line on the log.
func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// env is the environment of every child: the caller's, without settings
// that would redirect statepack, plus the S3 endpoint and credentials.
func (b *bench) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "STATEPACK_") || strings.HasPrefix(k, "AWS_") || strings.HasPrefix(k, "RESTIC_") || k == "DATA_DIR" {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "XDG_DATA_HOME="+filepath.Join(b.work, "xdg"), "RESTIC_PASSWORD=statepack-bench",
		"RESTIC_CACHE_DIR="+filepath.Join(b.work, "restic-cache"))
	if b.s3 != nil {
		env = append(env, "AWS_ENDPOINT_URL="+b.endpoint, "AWS_ACCESS_KEY_ID="+b.s3.AccessKey,
			"AWS_SECRET_ACCESS_KEY="+b.s3.SecretKey, "AWS_REGION=us-east-1")
	}
	return env
}

// command makes a child process with the suite's environment.
func (b *bench) command(name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(b.ctx, name, args...)
	cmd.Env = b.env()
	return cmd
}

// spArgs are the global flags of a statepack command on store, with
// dataDir and remote when not empty, followed by args.
func spArgs(store, dataDir, remote string, args ...string) []string {
	full := []string{"--store", store, "--json"}
	if dataDir != "" {
		full = append(full, "--data-dir", dataDir)
	}
	if remote != "" {
		full = append(full, "--remote", remote)
	}
	return append(full, args...)
}

// output runs a command that is not measured and returns its output.
func (b *bench) output(name string, args ...string) ([]byte, error) {
	cmd := b.command(name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %v: %s", filepath.Base(name), strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// warm is how much memory the suite faults in before each timed command
// (benchutil.WarmMemory): what the largest of them, a cold pull
// --restore, writes (the store and DATA_DIR), and some for its heap.
func (b *bench) warm() int64 { return 2*b.dataStats.Bytes + 512<<20 }

// measure runs a command as one sample of the series name and returns
// its standard output.
func (b *bench) measure(series, name string, args ...string) ([]byte, error) {
	if err := benchutil.Settle(b.warm()); err != nil {
		return nil, err
	}
	b.rssFloor = max(b.rssFloor, benchutil.ResetPeakRSS())
	s, out, err := benchutil.Run(b.command(name, args...))
	if err != nil {
		if b.ctx.Err() != nil {
			return nil, b.ctx.Err()
		}
		return nil, err
	}
	if b.series[series] == nil {
		b.series[series] = &benchutil.Series{}
	}
	b.series[series].Add(s)
	b.logf("  %-22s %8.2fs  cpu %7.2fs  rss %5.0f MiB  %s", series, s.Wall.Seconds(), s.CPU.Seconds(), mib(s.MaxRSS), summarize(out))
	return out, nil
}

// summarized are the --json fields of statepack commands the progress log
// shows, to tell what a command did.
var summarized = []string{"files_read", "bytes_read", "stored_bytes", "files_written", "bytes_written", "files_skipped",
	"blocks", "bytes", "requests"}

// summarize picks the summarized fields from a command's JSON output;
// empty for other output.
func summarize(out []byte) string {
	m, err := decodeJSON(out)
	if err != nil {
		return ""
	}
	var parts []string
	for _, k := range summarized {
		if v, ok := m[k].(float64); ok {
			parts = append(parts, fmt.Sprintf("%s=%.0f", k, v))
		}
	}
	return strings.Join(parts, " ")
}

// sp measures one statepack command.
func (b *bench) sp(series, store, dataDir, remote string, args ...string) (map[string]any, error) {
	out, err := b.measure(series, b.statepack, spArgs(store, dataDir, remote, args...)...)
	if err != nil {
		return nil, err
	}
	return decodeJSON(out)
}

// spSetup runs a statepack command that is not measured.
func (b *bench) spSetup(store, dataDir, remote string, args ...string) (map[string]any, error) {
	out, err := b.output(b.statepack, spArgs(store, dataDir, remote, args...)...)
	if err != nil {
		return nil, err
	}
	return decodeJSON(out)
}

// decodeJSON reads the last JSON object a command printed (statepack
// --json prints one summary object).
func decodeJSON(out []byte) (map[string]any, error) {
	s := strings.TrimSpace(string(out))
	if s == "" {
		return map[string]any{}, nil
	}
	if i := strings.LastIndex(s, "\n{"); i >= 0 {
		s = s[i+1:]
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("reading --json output %.200q: %v", s, err)
	}
	return m, nil
}

// field finds a value in JSON output by the first of keys present, looking
// one level into nested objects too.
func field(m map[string]any, keys ...string) (any, bool) {
	for _, k := range keys {
		if v, ok := m[k]; ok {
			return v, true
		}
	}
	for _, v := range m {
		if sub, ok := v.(map[string]any); ok {
			if x, ok := field(sub, keys...); ok {
				return x, true
			}
		}
	}
	return nil, false
}

// intField returns a number from JSON output.
func intField(m map[string]any, keys ...string) (int64, error) {
	v, ok := field(m, keys...)
	if f, isNum := v.(float64); ok && isNum {
		return int64(f), nil
	}
	return 0, fmt.Errorf("no number %s in the --json output %v", strings.Join(keys, "/"), m)
}

// snapshotID returns the snapshot id a save or pull reported.
func snapshotID(m map[string]any) (string, error) {
	v, ok := field(m, "snapshot", "snapshot_id", "id")
	if s, isStr := v.(string); ok && isStr && len(s) >= 8 {
		return s, nil
	}
	return "", errors.New("no snapshot id in the --json output")
}

// mib converts bytes to MiB.
func mib(n int64) float64 { return float64(n) / (1 << 20) }
