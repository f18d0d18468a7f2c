package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/statepack/statepack/internal/benchutil"
)

// studyAverages are the average chunk sizes the chunk study compares, in
// KiB; minimum and maximum are a quarter and four times the average.
var studyAverages = []int{32, 64, 128, 256}

// studySteps is how many mutate steps follow the cold save.
const studySteps = 3

// studyRow is one chunk size of the chunk study.
type studyRow struct {
	AvgKiB    int       `json:"avg_kib"`
	MinKiB    int       `json:"min_kib"`
	MaxKiB    int       `json:"max_kib"`
	Logical   int64     `json:"logical_bytes"` // DATA_DIR bytes of all versions
	Store     int64     `json:"store_bytes"`
	Dedup     float64   `json:"dedup_ratio"`     // logical / store
	Unique    int64     `json:"unique_bytes"`    // raw bytes of the distinct blocks
	DedupRaw  float64   `json:"dedup_raw_ratio"` // logical / unique: deduplication alone, without compression
	ColdSave  float64   `json:"cold_save_s"`     // seconds
	MBps      float64   `json:"cold_save_mbps"`  // DATA_DIR MB per second
	Added     []int64   `json:"added_bytes"`     // store growth per mutate step
	StepSaveS []float64 `json:"step_save_s"`
}

// chunkStudy saves the data and three mutate steps into a fresh store
// per average chunk size and compares store size, dedup and speed.
func (b *bench) chunkStudy() error {
	for _, avg := range studyAverages {
		b.logf("chunk study: average %d KiB", avg)
		row, err := b.studyOne(avg)
		if err != nil {
			return fmt.Errorf("average %d KiB: %w", avg, err)
		}
		b.study = append(b.study, row)
	}
	return nil
}

// studyOne runs the study for one average chunk size on a copy of the
// data.
func (b *bench) studyOne(avg int) (studyRow, error) {
	row := studyRow{AvgKiB: avg, MinKiB: avg / 4, MaxKiB: avg * 4}
	dir := filepath.Join(b.work, fmt.Sprintf("study-%dk", avg))
	defer b.discard(dir)
	data, store := filepath.Join(dir, "data"), filepath.Join(dir, "store")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return row, err
	}
	if _, err := b.output("cp", "-a", b.data, data); err != nil {
		return row, err
	}
	if _, err := b.spSetup(store, "", "", "init", "--chunk-avg", kib(avg), "--chunk-min", kib(avg/4), "--chunk-max", kib(avg*4)); err != nil {
		return row, err
	}
	series := fmt.Sprintf("study-%dk-save", avg)
	if err := b.studySave(&row, series, store, data); err != nil {
		return row, err
	}
	row.ColdSave = b.series[series].Samples[0].Wall.Seconds()
	row.MBps = float64(b.dataStats.Bytes) / 1e6 / row.ColdSave
	for step := 1; step <= studySteps; step++ {
		if err := b.studyStep(&row, step, store, data); err != nil {
			return row, err
		}
	}
	var err error
	if row.Store, err = storeBytes(store); err == nil && row.Store > 0 && row.Unique > 0 {
		row.Dedup = float64(row.Logical) / float64(row.Store)
		row.DedupRaw = float64(row.Logical) / float64(row.Unique)
	}
	return row, err
}

// studyStep applies mutate step to data and measures the save that
// follows, with the bytes it added to the store.
func (b *bench) studyStep(row *studyRow, step int, store, data string) error {
	if _, err := b.output(b.datagen, "mutate", "--dir", data, "--seed", "1", "--step", strconv.Itoa(step), "--json"); err != nil {
		return err
	}
	before, err := storeBytes(store)
	if err != nil {
		return err
	}
	series := fmt.Sprintf("study-%dk-step", row.AvgKiB)
	if err := b.studySave(row, series, store, data); err != nil {
		return err
	}
	after, err := storeBytes(store)
	if err != nil {
		return err
	}
	row.Added = append(row.Added, after-before)
	row.StepSaveS = append(row.StepSaveS, b.series[series].Samples[step-1].Wall.Seconds())
	return nil
}

// studySave measures one save of data and adds the version's bytes to
// the logical total and its new blocks' raw bytes to the unique total.
func (b *bench) studySave(row *studyRow, series, store, data string) error {
	out, err := b.sp(series, store, data, "", "save", state)
	if err != nil {
		return err
	}
	logical, err := intField(out, "bytes")
	if err != nil {
		return err
	}
	unique, err := intField(out, "new_bytes")
	row.Logical += logical
	row.Unique += unique
	return err
}

// kib formats a size in KiB as bytes for a statepack flag.
func kib(n int) string { return strconv.Itoa(n << 10) }

// studyTable shows the chunk study.
func studyTable(rows []studyRow) *benchutil.Table {
	t := &benchutil.Table{Left: 1, Header: []string{"chunk avg (min-max)", "store", "dedup", "dedup raw", "cold save s", "MB/s"}}
	for i := 1; i <= studySteps; i++ {
		t.Header = append(t.Header, fmt.Sprintf("step %d added", i))
	}
	t.Header = append(t.Header, "step save s")
	for _, r := range rows {
		cells := []string{fmt.Sprintf("%d KiB (%d-%d)", r.AvgKiB, r.MinKiB, r.MaxKiB), humanize.IBytes(uint64(r.Store)),
			fmt.Sprintf("%.2f", r.Dedup), fmt.Sprintf("%.2f", r.DedupRaw), secs(r.ColdSave), fmt.Sprintf("%.0f", r.MBps)}
		var steps []time.Duration
		for i, a := range r.Added {
			cells = append(cells, humanize.IBytes(uint64(a)))
			steps = append(steps, time.Duration(r.StepSaveS[i]*1e9))
		}
		t.Rows = append(t.Rows, append(cells, secs(benchutil.Median(steps).Seconds())))
	}
	return t
}
