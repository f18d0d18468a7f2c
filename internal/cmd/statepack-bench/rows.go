package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/statepack/statepack/internal/benchutil"
)

// ratioKind says what a row's ratio compares.
type ratioKind int

const (
	byTime     ratioKind = iota // statepack wall time / baseline wall time
	byBytes                     // store growth / compressed changed pages
	byRequests                  // requests made (no baseline)
)

// rowDef is one row of the table: a statepack series, its
// baseline and the target on their ratio.
type rowDef struct {
	key      string // --only key; a key may have several rows
	name     string
	op       string // series of the statepack command
	base     string // series of the baseline, for byTime
	plus     string // a series whose time adds to the baseline's (a floor made of two steps)
	baseName string
	kind     ratioKind
	limit    float64 // 0: informational, no target
	strict   bool    // the ratio must stay below limit, not reach it
	restic   string  // restic's series for the same operation
	rss      int64   // peak RSS target; 0 means rssLimit
}

// rowDefs are the rows in the order of the issue.
var rowDefs = []rowDef{
	{key: "save", name: "cold save", op: "save", base: "tar-zstd", baseName: "tar -I 'zstd -1 -T0' -cf", limit: 1.0, strict: true, restic: "restic-backup"},
	{key: "noop-save", name: "no-op save", op: "save-noop", base: "save", baseName: "cold save", limit: 0.03, strict: true, restic: "restic-backup-noop"},
	{key: "mutate", name: "save after 1 mutate step", op: "save-mutate", baseName: "zstd -1 of changed 4K pages", kind: byBytes, limit: 1.5},
	{key: "restore", name: "cold restore", op: "restore", base: "cp-a", baseName: "cp -a", limit: 1.2, restic: "restic-restore"},
	{key: "restore", name: "cold restore", op: "restore", base: "tar-x", baseName: "tar -x (zstd)"},
	{key: "noop-restore", name: "no-op restore", op: "restore-noop", base: "restore", baseName: "cold restore", limit: 0.03, strict: true},
	{key: "switch", name: "switch adjacent versions", op: "restore-switch", base: "restore", baseName: "cold restore", limit: 0.20, strict: true},
	{key: "push", name: "cold push to MinIO", op: "push", base: "raw-put", baseName: "raw PUT 16 MiB, 4 at once", limit: 1 / 0.7, restic: "restic-s3-backup"},
	{key: "pull", name: "cold pull --restore", op: "pull", base: "raw-get", baseName: "raw GET 16 MiB, 4 at once", limit: 1 / 0.7, restic: "restic-s3-restore"},
	{key: "pull", name: "cold pull --restore", op: "pull", base: "raw-get", plus: "cp-a", baseName: "raw GET + cp -a"},
	{key: "pull", name: "cold pull, no restore", op: "pull-only", base: "raw-get", baseName: "raw GET 16 MiB, 4 at once"},
	{key: "pull", name: "verify --remote --read-data", op: "verify-remote", base: "raw-get", baseName: "raw GET 16 MiB, 4 at once"},
	// A link row's name has the link's rate (%[3]s).
	{key: "link", name: "cold push over a %[3]s link", op: "push-link", base: "raw-put-link", baseName: "raw PUT, same link", limit: 1 / 0.7},
	{key: "link", name: "cold pull --restore over a %[3]s link", op: "pull-link", base: "raw-get-link", baseName: "raw GET, same link", limit: 1 / 0.7},
	{key: "link", name: "cold pull over a %[3]s link", op: "pull-only-link", base: "raw-get-link", baseName: "raw GET, same link", limit: 1 / 0.7},
	{key: "noop-push", name: "no-op push", op: "push-noop", baseName: "requests at MinIO", kind: byRequests, limit: 3},
	{key: "noop-pull", name: "no-op pull", op: "pull-noop", baseName: "requests at MinIO", kind: byRequests, limit: 3},
	// A scale row's name has the small state's MiB (%[1]d) and the
	// entry count of --scale-blocks (%[2]s).
	{key: "scale", name: "push %[1]d MiB to %[2]s-block remote, cold cache", op: "scale-push", base: "scale-push-empty",
		baseName: "same push, empty remote", limit: 2, strict: true, rss: scaleRSSLimit},
	{key: "scale", name: "push next version to %[2]s-block remote, warm cache", op: "scale-push2", base: "scale-push2-empty",
		baseName: "same push, empty remote", limit: 2, strict: true, rss: scaleRSSLimit},
}

// rssLimit is the memory target for every operation on 1 GiB.
const rssLimit = 200 << 20

// rssTarget is the row's peak RSS target.
func (d rowDef) rssTarget() int64 {
	if d.rss > 0 {
		return d.rss
	}
	return rssLimit
}

// rowKeys lists the --only keys in table order.
func rowKeys() []string {
	var keys []string
	for _, d := range rowDefs {
		if !slices.Contains(keys, d.key) {
			keys = append(keys, d.key)
		}
	}
	return keys
}

// target describes the row's target, with its RSS target when that is
// not the common one.
func (d rowDef) target() string {
	if d.rss > 0 && d.rss != rssLimit {
		return fmt.Sprintf("%s, RSS < %.0f MiB", d.ratioTarget(), mib(d.rss))
	}
	return d.ratioTarget()
}

// ratioTarget describes the target on the row's ratio.
func (d rowDef) ratioTarget() string {
	switch {
	case d.limit == 0:
		return "(info)"
	case d.kind == byRequests:
		return fmt.Sprintf("<= %.0f req", d.limit)
	case d.base == "raw-put" || d.base == "raw-get":
		return fmt.Sprintf("<= %.2f (>= 70%% of raw)", d.limit)
	case d.strict:
		return fmt.Sprintf("< %.2f", d.limit)
	}
	return fmt.Sprintf("<= %.2f", d.limit)
}

// meets reports whether ratio meets the target.
func (d rowDef) meets(ratio float64) bool {
	if d.strict {
		return ratio < d.limit
	}
	return ratio <= d.limit
}

// Row is one computed row of the results, as printed and as written to
// JSON. Times are seconds; a zero means not measured.
type Row struct {
	Key       string  `json:"key"`
	Operation string  `json:"operation"`
	Wall      float64 `json:"wall_s"`
	MBps      float64 `json:"mb_per_s"`
	CPU       float64 `json:"cpu_s"`
	RSSMiB    float64 `json:"peak_rss_mib"`
	Baseline  string  `json:"baseline"`
	BaseWall  float64 `json:"baseline_wall_s,omitempty"`
	Ratio     float64 `json:"ratio"`
	RatioOf   string  `json:"ratio_of"`
	Target    string  `json:"target"`
	Result    string  `json:"result"`
	Restic    float64 `json:"restic_wall_s,omitempty"`
	Reported  int64   `json:"reported_requests,omitempty"` // what the command said it made
}

// rows computes the rows of the selected keys from what was measured.
func (b *bench) rows() []Row {
	var out []Row
	for _, d := range rowDefs {
		if len(b.cfg.Only) > 0 && !b.cfg.Only[d.key] {
			continue
		}
		op := b.series[d.op].Summary()
		if op.Runs == 0 || d.plus != "" && b.series[d.plus].Summary().Runs == 0 {
			continue
		}
		name, data := d.name, b.dataStats.Bytes
		if strings.Contains(name, "%[") {
			name = fmt.Sprintf(name, scaleDataMB, shortCount(b.cfg.ScaleBlocks), linkRate(b.cfg.LinkMbit))
		}
		if d.key == "scale" {
			data = b.scale.Data.Bytes
		}
		r := Row{Key: d.key, Operation: name, Wall: op.Wall.Seconds(), CPU: op.CPU.Seconds(), RSSMiB: mib(op.MaxRSS),
			Baseline: d.baseName, Target: d.target(), Restic: b.series[d.restic].Summary().Wall.Seconds()}
		r.MBps = float64(data) / 1e6 / r.Wall
		b.ratio(d, &r)
		r.Result = result(d, r, op)
		out = append(out, r)
	}
	return out
}

// ratio fills in the row's ratio and baseline figures.
func (b *bench) ratio(d rowDef, r *Row) {
	switch d.kind {
	case byTime:
		base := b.series[d.base].Summary()
		r.BaseWall, r.RatioOf = base.Wall.Seconds(), "time"
		if d.plus != "" {
			r.BaseWall += b.series[d.plus].Summary().Wall.Seconds()
		}
		if base.Runs > 0 {
			r.Ratio = r.Wall / r.BaseWall
		}
	case byBytes:
		r.RatioOf = "bytes"
		if p := b.facts.Pages; p != nil && p.Compressed > 0 {
			r.Ratio = float64(benchutil.MedianInt(b.facts.StoreAdded)) / float64(p.Compressed)
		}
	case byRequests:
		r.RatioOf = "requests"
		if reqs := b.facts.Requests[d.op]; len(reqs) > 0 {
			r.Ratio = float64(slices.Max(reqs))
		}
		if reqs := b.facts.Reported[d.op]; len(reqs) > 0 {
			r.Reported = slices.Max(reqs)
		}
	}
}

// linkRate writes a rate in Mbit/s as 1 Gbit/s or 500 Mbit/s.
func linkRate(mbit int) string {
	if mbit >= 1000 && mbit%100 == 0 {
		return strings.TrimSuffix(fmt.Sprintf("%.1f", float64(mbit)/1000), ".0") + " Gbit/s"
	}
	return fmt.Sprintf("%d Mbit/s", mbit)
}

// shortCount writes a count as 10M, 2.5M or 50k.
func shortCount(n int) string {
	switch {
	case n >= 1e6 && n%1e5 == 0:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", float64(n)/1e6), ".0") + "M"
	case n >= 1e3 && n%1e2 == 0:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", float64(n)/1e3), ".0") + "k"
	}
	return fmt.Sprint(n)
}

// result is PASS or MISS against the row's target and the memory target;
// empty for an informational row.
func result(d rowDef, r Row, op benchutil.Summary) string {
	if d.limit == 0 {
		return ""
	}
	var missed []string
	if r.Ratio == 0 && d.kind != byRequests || !d.meets(r.Ratio) {
		missed = append(missed, "ratio")
	}
	if op.MaxRSS >= d.rssTarget() {
		missed = append(missed, "rss")
	}
	if len(missed) == 0 {
		return "PASS"
	}
	return fmt.Sprintf("MISS (%s)", strings.Join(missed, ", "))
}
