package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/statepack/statepack/internal/benchutil"
)

// report is everything the suite found, as printed and as JSON.
type report struct {
	Command      string                       `json:"command"`
	Started      time.Time                    `json:"started"`
	Machine      machine                      `json:"machine"`
	Runs         int                          `json:"runs"`
	Data         dataStats                    `json:"data"`
	Rows         []Row                        `json:"rows"`
	Measurements map[string]measurement       `json:"measurements"`
	Mutate       *mutateFacts                 `json:"mutate,omitempty"`
	TarBytes     int64                        `json:"tar_zstd_bytes,omitempty"`   // archive of the tar baseline
	StoreBytes   int64                        `json:"store_bytes_cold,omitempty"` // store after the cold save
	Requests     map[string][]int64           `json:"requests_at_minio,omitempty"`
	Reported     map[string][]int64           `json:"requests_reported,omitempty"`
	ChunkStudy   []studyRow                   `json:"chunk_study,omitempty"`
	Scale        *scaleFacts                  `json:"scale,omitempty"`
	RSSFloor     int64                        `json:"rss_floor_bytes"` // the suite's own RSS when it started a command
	Notes        []string                     `json:"notes"`
	series       map[string]*benchutil.Series // for the order of the measurement table
}

// measurement is one series: its summary and every sample.
type measurement struct {
	benchutil.Summary
	MBps    float64            `json:"mb_per_s"`
	Samples []benchutil.Sample `json:"samples"`
}

// mutateFacts are the byte counts behind the mutate row.
type mutateFacts struct {
	ChangedBytes []int64            `json:"datagen_changed_bytes"`
	StoreAdded   []int64            `json:"store_added_bytes"`
	Pages        benchutil.PageDiff `json:"changed_pages"`
}

// notes explain how the numbers were taken.
var notes = []string{
	"wall: median of the runs; CPU: median user+sys of the process and the children it waited for (tar includes zstd); RSS: highest peak of any run, of the largest single process",
	"MB/s: DATA_DIR bytes / wall time, for every row (also push and pull, which move compressed bytes)",
	"page cache: not dropped. DATA_DIR and the store are read warm from memory; dirty pages are flushed (sync) before each timed command but not after it, so a baseline's writes may still be in the page cache when it ends, while statepack's local store syncs the file system before it moves a ref",
	"memory: before each timed command (after the sync) the suite faults in and frees twice DATA_DIR's size plus 512 MiB of memory, so that no command, statepack's or a baseline's, meets pages a VM host took back (free page reporting, as on Firecracker: the first write to each costs the host a fault, 0.6 s per GiB, and made cp -a of the same tree take 0.33-2.56 s)",
	"fresh state per run: empty store for cold save, empty directories for cold restore, cp -a and tar -x, an empty bucket for cold push, an empty store and DATA_DIR for cold pull",
	"cold pull --restore also writes DATA_DIR: its floor is about raw GET + cp -a, which the (info) row of that name measures against (the sum of the two medians); the (info) row 'cold pull, no restore' isolates the transfer, and 'verify --remote --read-data' measures what checking every pack and block costs (invariant 2) with nothing written: the least any pull must do",
	"link rows: statepack and the raw requests reach MinIO through a proxy that carries all their connections over one link of --link-mbit each way (bandwidth only, no added latency), so that a network, not the loopback, sets the pace, as between a CI runner and S3; each pull into an empty store (and, with --restore, an empty DATA_DIR)",
	"push/pull ratio is time / raw time for about the same bytes (the raw baseline moves ceil(pushed bytes / 16 MiB) objects of 16 MiB); the target of >= 70% of raw throughput is a ratio <= 1.43",
}

// report assembles the results.
func (b *bench) report() *report {
	rep := &report{Command: commandLine(), Started: time.Now().UTC(), Machine: thisMachine(b.work, b.loadStart), Runs: b.cfg.Runs,
		Data: b.dataStats, Rows: b.rows(), Measurements: map[string]measurement{}, Requests: b.facts.Requests,
		Reported: b.facts.Reported, ChunkStudy: b.study, Scale: b.scale, Notes: notes, series: b.series}
	rep.RSSFloor = b.rssFloor
	rep.Notes = append(slices.Clip(rep.Notes), fmt.Sprintf("RSS: a child's peak RSS as the kernel reports it includes the RSS of the suite that started it "+
		"(os/exec uses vfork); the suite returns freed memory and resets its own peak before each command, which leaves a floor of %.0f MiB under every RSS figure", mib(b.rssFloor)))
	if b.scale != nil {
		rep.Notes = append(rep.Notes, scaleNote)
	}
	for name, s := range b.series {
		sum, data := s.Summary(), b.dataStats.Bytes
		if strings.HasPrefix(name, "scale-") {
			data = b.scale.Data.Bytes // the small state the scale row pushes
		}
		rep.Measurements[name] = measurement{Summary: sum, MBps: float64(data) / 1e6 / sum.Wall.Seconds(), Samples: s.Samples}
	}
	rep.TarBytes, rep.StoreBytes = benchutil.MedianInt(b.facts.TarBytes), benchutil.MedianInt(b.facts.StoreBytes)
	if b.facts.Pages != nil {
		rep.Mutate = &mutateFacts{ChangedBytes: b.facts.ChangedBytes, StoreAdded: b.facts.StoreAdded, Pages: *b.facts.Pages}
	}
	return rep
}

// commandLine is how the suite was run, with the environment that
// changes its defaults.
func commandLine() string {
	var env []string
	for _, k := range []string{"STATEPACK_MINIO", "BENCH_MB"} {
		if v := os.Getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	return strings.Join(append(env, os.Args...), " ")
}

// print writes the header, the rows, the measurements, the chunk study
// and the notes.
func (rep *report) print(w io.Writer) error {
	fmt.Fprintf(w, "\nstatepack benchmark: %s\n", rep.Command)
	fmt.Fprintf(w, "machine: %s\n", rep.Machine)
	if rep.Data.Bytes > 0 {
		fmt.Fprintf(w, "data: %s in %d files, %d dirs, %d symlinks (statepack-datagen, seed 1); %d runs per row\n\n",
			humanize.IBytes(uint64(rep.Data.Bytes)), rep.Data.Files, rep.Data.Dirs, rep.Data.Symlinks, rep.Runs)
	} else {
		fmt.Fprintf(w, "data: only the scale row ran, on its own small state; %d runs per row\n\n", rep.Runs)
	}
	if err := rep.rowTable().Fprint(w); err != nil {
		return err
	}
	if rep.TarBytes > 0 {
		fmt.Fprintf(w, "\ncold save: the store holds %s; tar -I 'zstd -1 -T0' wrote %s\n",
			humanize.IBytes(uint64(rep.StoreBytes)), humanize.IBytes(uint64(rep.TarBytes)))
	}
	rep.printMutate(w)
	if rep.Scale != nil {
		rep.Scale.print(w, rep.Reported)
	}
	fmt.Fprintln(w)
	if err := rep.measurementTable().Fprint(w); err != nil {
		return err
	}
	if len(rep.ChunkStudy) > 0 {
		fmt.Fprintln(w)
		if err := studyTable(rep.ChunkStudy).Fprint(w); err != nil {
			return err
		}
	}
	fmt.Fprintln(w)
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	return nil
}

// rowTable is the table.
func (rep *report) rowTable() *benchutil.Table {
	t := &benchutil.Table{Left: 1, Header: []string{"operation", "statepack s", "MB/s", "CPU s", "RSS MiB",
		"baseline", "base s", "ratio", "target", "result"}}
	restic := slices.ContainsFunc(rep.Rows, func(r Row) bool { return r.Restic > 0 })
	if restic {
		t.Header = append(t.Header, "restic s")
	}
	for _, r := range rep.Rows {
		ratio, baseline := fmt.Sprintf("%.2f", r.Ratio), r.Baseline
		switch r.RatioOf {
		case "requests":
			ratio = fmt.Sprintf("%.0f req", r.Ratio)
			baseline = fmt.Sprintf("%s (says %d)", r.Baseline, r.Reported)
		case "bytes":
			ratio += " (bytes)"
		}
		cells := []string{r.Operation, secs(r.Wall), fmt.Sprintf("%.0f", r.MBps), secs(r.CPU), fmt.Sprintf("%.0f", r.RSSMiB),
			baseline, secs(r.BaseWall), ratio, r.Target, r.Result}
		if restic {
			cells = append(cells, secs(r.Restic))
		}
		t.Rows = append(t.Rows, cells)
	}
	return t
}

// printMutate explains the byte counts behind the mutate row.
func (rep *report) printMutate(w io.Writer) {
	m := rep.Mutate
	if m == nil {
		return
	}
	fmt.Fprintf(w, "\nsave after 1 mutate step: store grew %s (median of %v); changed 4 KiB pages: %s by datagen, %s found by comparing the trees, %s after zstd -1\n",
		humanize.IBytes(uint64(benchutil.MedianInt(m.StoreAdded))), m.StoreAdded, humanize.IBytes(uint64(benchutil.MedianInt(m.ChangedBytes))),
		humanize.IBytes(uint64(m.Pages.Bytes)), humanize.IBytes(uint64(m.Pages.Compressed)))
}

// measurementTable lists every series, statepack's and the baselines'.
func (rep *report) measurementTable() *benchutil.Table {
	t := &benchutil.Table{Left: 1, Header: []string{"measurement", "runs", "median s", "min s", "max s", "MB/s", "CPU s", "RSS MiB"}}
	names := make([]string, 0, len(rep.Measurements))
	for n := range rep.Measurements {
		if !strings.HasPrefix(n, "study-") { // shown in the chunk study's table
			names = append(names, n)
		}
	}
	slices.SortFunc(names, func(a, b string) int { return seriesOrder(a) - seriesOrder(b) })
	for _, n := range names {
		m := rep.Measurements[n]
		t.Rows = append(t.Rows, []string{n, fmt.Sprint(m.Runs), secs(m.Wall.Seconds()), secs(m.MinW.Seconds()), secs(m.MaxW.Seconds()),
			fmt.Sprintf("%.0f", m.MBps), secs(m.CPU.Seconds()), fmt.Sprintf("%.0f", mib(m.MaxRSS))})
	}
	return t
}

// seriesOrder sorts series in the order they are measured in a run.
func seriesOrder(name string) int {
	order := []string{"tar-zstd", "save", "restic-backup", "save-noop", "restic-backup-noop", "push", "raw-put", "restic-s3-backup",
		"push-noop", "pull", "pull-only", "raw-get", "verify-remote", "restic-s3-restore", "pull-noop", "push-link", "raw-put-link", "pull-link", "pull-only-link", "raw-get-link", "restore", "cp-a", "tar-x", "restic-restore",
		"restore-noop", "save-mutate", "restore-switch"}
	order = append(order, scaleSeries...)
	if i := slices.Index(order, name); i >= 0 {
		return i
	}
	return len(order)
}

// secs formats seconds; "—" for nothing measured.
func secs(s float64) string {
	switch {
	case s == 0:
		return "—"
	case s < 10:
		return fmt.Sprintf("%.3f", s)
	}
	return fmt.Sprintf("%.1f", s)
}

// writeJSON writes the report to file.
func (rep *report) writeJSON(file string) error {
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(file, append(data, '\n'), 0o644)
}

// machine describes where the suite ran.
type machine struct {
	CPU    string `json:"cpu"`
	Cores  int    `json:"cores"`
	Memory int64  `json:"memory_bytes"`
	Kernel string `json:"kernel"`
	Go     string `json:"go"`
	Work   string `json:"work_dir"`
	Load   string `json:"load_average"` // at the start and at the end
}

func (m machine) String() string {
	return fmt.Sprintf("%s, %d cores, %s RAM, Linux %s, %s; work dir %s; load average %s", m.CPU, m.Cores,
		humanize.IBytes(uint64(m.Memory)), m.Kernel, m.Go, m.Work, m.Load)
}

// thisMachine reads the machine's description from /proc; loadStart is
// the load average when the suite started.
func thisMachine(work, loadStart string) machine {
	m := machine{CPU: benchutil.ProcField("/proc/cpuinfo", "model name"), Cores: runtime.NumCPU(), Go: runtime.Version(), Work: work,
		Load: loadStart + " at the start, " + loadAverage() + " at the end"}
	if kb, err := fmt.Sscan(benchutil.ProcField("/proc/meminfo", "MemTotal"), &m.Memory); err == nil && kb == 1 {
		m.Memory <<= 10
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	return m
}

// loadAverage is the 1, 5 and 15 minute load average: other work on the
// machine during the suite shows here.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(data)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}
