package main

import (
	"bytes"
	"io"
	"maps"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/internal/benchutil"
)

// TestCloseOver: a selected row brings the rows it needs, and nothing
// else; no selection means every row, the link rows only with a link.
func TestCloseOver(t *testing.T) {
	noLink := slices.DeleteFunc(rowKeys(), func(k string) bool { return k == "link" })
	for _, c := range []struct {
		only []string
		link bool
		want []string
	}{
		{nil, true, rowKeys()},
		{nil, false, noLink},
		{[]string{"save"}, true, []string{"save"}},
		{[]string{"switch"}, true, []string{"mutate", "restore", "save", "switch"}},
		{[]string{"noop-pull", "noop-save"}, true, []string{"noop-pull", "noop-save", "push", "save"}},
		{[]string{"link"}, true, []string{"link", "save"}},
	} {
		only := map[string]bool{}
		for _, k := range c.only {
			only[k] = true
		}
		got := slices.Sorted(maps.Keys(closeOver(only, c.link)))
		if want := slices.Sorted(slices.Values(c.want)); !slices.Equal(got, want) {
			t.Errorf("closeOver(%v) = %v, want %v", c.only, got, want)
		}
	}
}

func TestParseFlags(t *testing.T) {
	t.Setenv("BENCH_MB", "256")
	cfg, err := parseFlags([]string{"--runs", "5", "--only", "save, push"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MB != 256 || cfg.Runs != 5 || !cfg.Only["save"] || !cfg.Only["push"] || len(cfg.Only) != 2 {
		t.Errorf("parseFlags = %+v", cfg)
	}
	if cfg.LinkMbit != 1000 {
		t.Errorf("--link-mbit defaults to %d, want 1000", cfg.LinkMbit)
	}
	for _, bad := range [][]string{{"--only", "sav"}, {"--runs", "0"}, {"extra"}, {"--link-mbit", "-1"}, {"--link-mbit", "0", "--only", "link"}, {"--scale-blocks", "1000000"}} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%v) succeeded", bad)
		}
	}
}

// TestRowsHaveSeries: every row's statepack series is measured by a step
// of its key, so a row cannot silently stay empty.
func TestRowsHaveSeries(t *testing.T) {
	for _, d := range rowDefs {
		if _, ok := deps[d.key]; !ok {
			t.Errorf("row %q has no entry in deps", d.key)
		}
		if seriesOrder(d.op) == seriesOrder("no such series") {
			t.Errorf("row %q: series %q is not in the measurement order", d.key, d.op)
		}
	}
}

func TestDecodeJSON(t *testing.T) {
	m, err := decodeJSON([]byte("progress line\n{\"snapshot\": \"0123456789abcdef\", \"restore\": {\"requests\": 4}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if id, err := snapshotID(m); err != nil || id != "0123456789abcdef" {
		t.Errorf("snapshotID = %q, %v", id, err)
	}
	if n, err := intField(m, "requests"); err != nil || n != 4 {
		t.Errorf("intField(requests) = %d, %v; want the nested 4", n, err)
	}
}

// TestScaleIndexObject: the synthetic index objects decode as valid index
// objects, hold the entries asked for in packs that tile, and are the
// same bytes every time (so their names are too).
func TestScaleIndexObject(t *testing.T) {
	data, packs := scaleIndexObject(3, 1000)
	got, err := format.DecodeIndex(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != packs || packs != (1000+scalePackBlocks-1)/scalePackBlocks {
		t.Fatalf("%d packs decoded, %d reported", len(got), packs)
	}
	n := 0
	for _, p := range got {
		var off uint32
		for _, e := range p.Entries {
			if e.Offset != off || e.Stored == 0 || e.Raw < e.Stored {
				t.Fatalf("entry %+v at offset %d", e, off)
			}
			off += e.Stored
			n++
		}
	}
	if n != 1000 {
		t.Errorf("%d entries, want 1000", n)
	}
	if again, _ := scaleIndexObject(3, 1000); !bytes.Equal(again, data) {
		t.Error("scaleIndexObject is not deterministic")
	}
	if other, _ := scaleIndexObject(4, 1000); bytes.Equal(other, data) {
		t.Error("objects 3 and 4 are the same")
	}
}

func TestLinkRate(t *testing.T) {
	for n, want := range map[int]string{1000: "1 Gbit/s", 2500: "2.5 Gbit/s", 10000: "10 Gbit/s", 500: "500 Mbit/s", 1234: "1234 Mbit/s"} {
		if got := linkRate(n); got != want {
			t.Errorf("linkRate(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestShortCount(t *testing.T) {
	for n, want := range map[int]string{10_000_000: "10M", 2_500_000: "2.5M", 50_000: "50k", 1234: "1234", 999: "999"} {
		if got := shortCount(n); got != want {
			t.Errorf("shortCount(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestRowWithTwoStepFloor: a row whose baseline is the sum of two series
// (pull --restore against raw GET + cp -a) divides by that sum, and is
// left out when the second series was not measured (--only pull).
func TestRowWithTwoStepFloor(t *testing.T) {
	sample := func(s float64) benchutil.Sample {
		return benchutil.Sample{Wall: time.Duration(s * float64(time.Second))}
	}
	b := &bench{series: map[string]*benchutil.Series{}, cfg: config{Only: map[string]bool{"pull": true}}}
	for name, s := range map[string]float64{"pull": 2.4, "pull-only": 1.2, "raw-get": 0.2} {
		b.series[name] = &benchutil.Series{Samples: []benchutil.Sample{sample(s)}}
	}
	floor := func() *Row {
		for _, r := range b.rows() {
			if r.Baseline == "raw GET + cp -a" {
				return &r
			}
		}
		return nil
	}
	if r := floor(); r != nil {
		t.Fatalf("row without cp -a measured: %+v", r)
	}
	b.series["cp-a"] = &benchutil.Series{Samples: []benchutil.Sample{sample(2.2)}}
	r := floor()
	if r == nil || math.Abs(r.BaseWall-2.4) > 1e-9 || math.Abs(r.Ratio-1.0) > 1e-9 || r.Result != "" {
		t.Fatalf("two-step floor row = %+v, want baseline 2.4 s, ratio 1.00, informational", r)
	}
}
