// Command statepack snapshots an application's data directory (LocalStack's
// DATA_DIR first) into a content-addressed local store, restores any saved
// version exactly, and shares states through S3 or a shared directory.
//
//	statepack save orders-e2e -m "after stage 1"
//	statepack restore orders-e2e~1
//	statepack push orders-e2e --remote s3://team-states/localstack
//
// Run `statepack --help` for the commands and `statepack COMMAND --help`
// for one command. Exit status: 0 success, 1 failure, 2 usage error, 3 the
// named state or snapshot does not exist, 4 restore --localstack restored
// DATA_DIR but LocalStack did not load it.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"sync/atomic"
	"syscall"
)

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		// Pipelines recycle big buffers (packs, spans, blocks); a soft limit
		// makes the collector return them before the heap doubles, which
		// keeps peak memory near what is live. GOMEMLIMIT overrides it.
		debug.SetMemoryLimit(memoryLimit)
	}
	os.Exit(profiled(func() int { return run(os.Args, os.Stdout, os.Stderr) }))
}

// profiled runs fn, writing a CPU profile of it to the file named by the
// undocumented STATEPACK_CPUPROFILE, for `go tool pprof` on a real run.
func profiled(fn func() int) int {
	path := os.Getenv("STATEPACK_CPUPROFILE")
	if path == "" {
		return fn()
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "statepack: STATEPACK_CPUPROFILE:", err)
		return fn()
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "statepack: STATEPACK_CPUPROFILE:", err)
		return fn()
	}
	defer pprof.StopCPUProfile()
	return fn()
}

// memoryLimit is the soft heap limit of a statepack process.
const memoryLimit = 160 << 20

// Exit statuses.
const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 2
	exitNotFound = 3
	// exitNotLoaded: restore --localstack put the files in place, but
	// LocalStack did not load them; DATA_DIR is restored.
	exitNotLoaded = 4
	exitSignal    = 130 // a second interrupt: quit at once
)

// run is the whole program: it parses args, runs the command and returns
// the exit status. stdout and stderr are files so that progress can tell
// a terminal from a pipe.
func run(args []string, stdout, stderr *os.File) int {
	s := newSession(stdout, stderr)
	ctx, stop := signalContext(stderr, &s.silentSignals)
	defer stop()
	app := s.newApp()
	err := app.RunContext(ctx, normalizeArgs(app, args, s.cmdline))
	s.cancelTimeout()
	if err == nil {
		return exitOK
	}
	return s.report(err)
}

// signalContext returns a context canceled by the first SIGINT or SIGTERM,
// so the command stops cleanly (the core removes its temporary files); a
// second signal exits at once.
func signalContext(stderr io.Writer, silent *atomic.Bool) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-ch:
		case <-done:
			return
		}
		if !silent.Load() {
			fmt.Fprintln(stderr, "statepack: interrupted; stopping cleanly (interrupt again to quit at once)")
		}
		cancel()
		select {
		case <-ch:
			os.Exit(exitSignal)
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel()
	}
}
