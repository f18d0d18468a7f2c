package main

import (
	"io"
	"maps"
	"slices"
	"testing"
)

// TestCloseOver: a selected row brings the rows it needs, and nothing
// else; no selection means every row.
func TestCloseOver(t *testing.T) {
	for _, c := range []struct {
		only []string
		want []string
	}{
		{nil, rowKeys()},
		{[]string{"save"}, []string{"save"}},
		{[]string{"switch"}, []string{"mutate", "restore", "save", "switch"}},
		{[]string{"noop-pull", "noop-save"}, []string{"noop-pull", "noop-save", "push", "save"}},
	} {
		only := map[string]bool{}
		for _, k := range c.only {
			only[k] = true
		}
		got := slices.Sorted(maps.Keys(closeOver(only)))
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
	for _, bad := range [][]string{{"--only", "sav"}, {"--runs", "0"}, {"extra"}} {
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
