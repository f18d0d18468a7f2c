package torture

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// resultRow is what the attacks on one command and backend found.
type resultRow struct {
	Command   string  `json:"command"`
	Backend   string  `json:"backend"`
	DataMiB   int64   `json:"data_mib"`
	TypicalMS float64 `json:"typical_ms"`

	KillPoints    int     `json:"kill_points"`
	KilledMidWork int     `json:"killed_mid_work"`
	FinishedFirst int     `json:"finished_before_kill"`
	MinDelayMS    float64 `json:"min_delay_ms"`
	MaxDelayMS    float64 `json:"max_delay_ms"`
	// InterruptedRestores counts kills after which status reported the
	// interrupted restore (restore only).
	InterruptedRestores int `json:"interrupted_restores_reported"`
	// LeftTemp and LeftLock count kills after which temporary files or a
	// lock were left (what the second run, prune or staleness deal with).
	LeftTemp int `json:"kills_leaving_temp_files"`
	LeftLock int `json:"kills_leaving_a_lock"`
	Failures int `json:"failures"`

	Interrupts              int     `json:"interrupts_mid_work"`
	InterruptsFinishedFirst int     `json:"interrupts_after_finish"`
	InterruptsOutside       int     `json:"interrupts_outside_handler"`
	InterruptStopMS         float64 `json:"interrupt_max_stop_ms"`
	InterruptFailures       int     `json:"interrupt_failures"`
}

// outcomeNote is the result of one of the disk-full and permission tests.
type outcomeNote struct {
	Test   string `json:"test"`
	Result string `json:"result"`
}

var results struct {
	sync.Mutex
	rows  []resultRow
	notes []outcomeNote
}

func record(r *resultRow) {
	results.Lock()
	defer results.Unlock()
	results.rows = append(results.rows, *r)
}

// note logs and records what a disk or permission test observed, for the
// report.
func note(t testing.TB, test, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	t.Logf("%s: %s", test, msg)
	results.Lock()
	defer results.Unlock()
	results.notes = append(results.notes, outcomeNote{Test: test, Result: msg})
}

// rows returns the recorded rows in a fixed order.
func rows() []resultRow {
	results.Lock()
	defer results.Unlock()
	out := slices.Clone(results.rows)
	order := map[string]int{"save": 0, "restore": 1, "push": 2, "pull": 3, "forget": 4, "prune": 5, backendLocal: 0, backendDir: 1, backendMinIO: 2}
	slices.SortFunc(out, func(a, b resultRow) int {
		if d := order[a.Command] - order[b.Command]; d != 0 {
			return d
		}
		return order[a.Backend] - order[b.Backend]
	})
	return out
}

// table renders rows as the Markdown table of docs/reliability.md's
// section.
func table(rs []resultRow) string {
	var b strings.Builder
	b.WriteString("| command | backend | typical run | SIGKILL tries | killed mid-work | finished first | failures | SIGINT mid-work | slowest stop | failures |\n")
	b.WriteString("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range rs {
		intr, stop, ifail := "—", "—", "—"
		if r.Interrupts+r.InterruptsFinishedFirst > 0 {
			intr, stop, ifail = fmt.Sprint(r.Interrupts), fmt.Sprintf("%.0f ms", r.InterruptStopMS), fmt.Sprint(r.InterruptFailures)
		}
		killed := fmt.Sprint(r.KilledMidWork)
		if r.InterruptedRestores > 0 {
			killed += fmt.Sprintf(" (%d left an interrupted restore)", r.InterruptedRestores)
		}
		fmt.Fprintf(&b, "| %s | %s | %.0f ms | %d | %s | %d | %d | %s | %s | %s |\n",
			r.Command, r.Backend, r.TypicalMS, r.KillPoints, killed, r.FinishedFirst, r.Failures, intr, stop, ifail)
	}
	return b.String()
}

// writeReport writes everything recorded as JSON to STATEPACK_TORTURE_REPORT.
func writeReport() error {
	path := os.Getenv(envReport)
	if path == "" {
		return nil
	}
	results.Lock()
	notes := slices.Clone(results.notes)
	results.Unlock()
	rs := rows()
	doc := struct {
		Command   string        `json:"command"`
		Seed      uint64        `json:"seed"`
		Rounds    int           `json:"kill_points_per_command"`
		DataMiB   int64         `json:"data_mib"`
		GoVersion string        `json:"go_version"`
		CPUs      int           `json:"cpus"`
		Time      time.Time     `json:"time"`
		Rows      []resultRow   `json:"results"`
		Table     string        `json:"table_markdown"`
		Notes     []outcomeNote `json:"disk_and_permissions"`
	}{cfg.Command, cfg.Seed, cfg.Rounds, cfg.DataMB, runtime.Version(), runtime.NumCPU(), time.Now().UTC(), rs, table(rs), notes}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
