// Command statepack-bench is the benchmark suite: it measures
// statepack side by side with the tools users would pick instead, on a
// LocalStack-like DATA_DIR made by statepack-datagen, against a real MinIO.
//
//	STATEPACK_MINIO=.tools/bin/minio go run ./internal/cmd/statepack-bench [flags]
//
// It builds statepack and statepack-datagen (unless --bin names them),
// generates the data (seed 1, --mb MiB), starts MinIO, and then, --runs
// times with fresh state where a row needs it, runs every operation of
// the table and its baseline: cold and no-op save against
// tar -I 'zstd -1 -T0'; a save after one mutate step against the zstd size
// of the pages that changed; cold, no-op and switching restores against
// cp -a and tar -x; cold push and pull against raw 16 MiB PUTs and GETs on
// the same MinIO; no-op push and pull by their requests; and the scale
// row: a 16 MiB state pushed to a remote whose index holds --scale-blocks
// synthetic entries, against the same push to an empty remote. For each
// row it prints the median wall time, throughput over the DATA_DIR size,
// CPU time, peak RSS and the ratio to the baseline with the target.
// With restic on PATH, restic's figures on the same data are added.
//
// Flags:
//
//	--mb N            size of DATA_DIR in MiB (default $BENCH_MB, else 1024)
//	--runs N          runs per row; the median is reported (default 3)
//	--json FILE       also write the results as JSON to FILE
//	--bin DIR         take statepack and statepack-datagen from DIR
//	--work DIR        work under DIR (default a temporary directory, removed)
//	--chunk-study     also compare average chunk sizes of 32-256 KiB
//	--only ROWS       run only these rows (comma-separated keys, see -h)
//	--scale-blocks N  index entries of the scale row's remote (default 10,000,000)
//	--link-mbit N     rate of the link the link rows reach MinIO over (default 1000; 0: no link rows)
//	--restic=false    leave restic out even when it is on PATH
//	--keep            keep the work directory
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/statepack/statepack/archive/lookup"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == rawS3Command {
		os.Exit(rawS3Main(os.Args[2:]))
	}
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "statepack-bench: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "statepack-bench: %v\n", err)
		stop()
		os.Exit(1)
	}
}

// config is the parsed command line.
type config struct {
	MB         int
	Runs       int
	JSON       string
	Bin        string
	Work       string
	ChunkStudy bool
	Only       map[string]bool // row keys to run; empty means all
	Restic     bool
	Keep       bool
	// ScaleBlocks is how many index entries the scale row's synthetic
	// remote holds.
	ScaleBlocks int
	// LinkMbit is the rate, in Mbit/s each way, of the simulated network
	// link the link rows reach MinIO over; 0 leaves those rows out.
	LinkMbit int
}

// parseFlags reads the flags; --mb defaults to $BENCH_MB.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("statepack-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	defMB := 1024
	if v, err := strconv.Atoi(os.Getenv("BENCH_MB")); err == nil && v > 0 {
		defMB = v
	}
	fs.IntVar(&cfg.MB, "mb", defMB, "size of the generated DATA_DIR in MiB (default from BENCH_MB)")
	fs.IntVar(&cfg.Runs, "runs", 3, "runs per row; the median is reported")
	fs.StringVar(&cfg.JSON, "json", "", "also write the results as JSON to `FILE`")
	fs.StringVar(&cfg.Bin, "bin", "", "`DIR` holding statepack and statepack-datagen (default: build them)")
	fs.StringVar(&cfg.Work, "work", "", "work `DIR` (default: a temporary directory, removed at the end)")
	fs.BoolVar(&cfg.ChunkStudy, "chunk-study", false, "also compare average chunk sizes of 32, 64, 128 and 256 KiB")
	only := fs.String("only", "", "comma-separated `ROWS` to run: "+strings.Join(rowKeys(), ","))
	fs.BoolVar(&cfg.Restic, "restic", true, "add restic's figures when restic is on PATH")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the work directory")
	fs.IntVar(&cfg.ScaleBlocks, "scale-blocks", 10_000_000, "index entries of the synthetic remote the scale row pushes to")
	fs.IntVar(&cfg.LinkMbit, "link-mbit", 1000, "rate in Mbit/s of the network link the link rows reach MinIO over (0: leave them out)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if cfg.MB < 1 || cfg.Runs < 1 || cfg.LinkMbit < 0 {
		return cfg, errors.New("--mb and --runs must be at least 1, --link-mbit at least 0")
	}
	if cfg.ScaleBlocks < minScaleBlocks {
		return cfg, fmt.Errorf("--scale-blocks must be at least %d: the scale row measures pushes that use the remote's lookup table, "+
			"which push publishes only for an index of %d MiB or more", minScaleBlocks, lookup.DefaultTableMin>>20)
	}
	var err error
	if cfg.Only, err = parseOnly(*only); err != nil {
		return cfg, err
	}
	if cfg.LinkMbit == 0 && cfg.Only["link"] {
		return cfg, errors.New("--only link needs a --link-mbit rate above 0")
	}
	return cfg, nil
}

// parseOnly checks the row keys of --only.
func parseOnly(s string) (map[string]bool, error) {
	only := map[string]bool{}
	for _, k := range strings.Split(s, ",") {
		if k = strings.TrimSpace(k); k == "" {
			continue
		}
		if !slices.Contains(rowKeys(), k) {
			return nil, fmt.Errorf("--only: unknown row %q; rows are %s", k, strings.Join(rowKeys(), ", "))
		}
		only[k] = true
	}
	return only, nil
}

// run is the whole suite: set up, measure every run, report, clean up.
func run(ctx context.Context, cfg config, stdout, stderr io.Writer) (err error) {
	b, err := newBench(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := b.close(); err == nil {
			err = cerr
		}
	}()
	if err := b.setup(); err != nil {
		return err
	}
	for i := 1; i <= cfg.Runs; i++ {
		if err := b.runOnce(i); err != nil {
			return fmt.Errorf("run %d: %w", i, err)
		}
	}
	if cfg.ChunkStudy {
		if err := b.chunkStudy(); err != nil {
			return fmt.Errorf("chunk study: %w", err)
		}
	}
	rep := b.report()
	if err := rep.print(stdout); err != nil {
		return err
	}
	if cfg.JSON != "" {
		return rep.writeJSON(cfg.JSON)
	}
	return nil
}
