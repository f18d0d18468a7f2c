package torture

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTorture attacks each command on each backend through the real
// binary. "kill": the command is killed with SIGKILL at seeded moments
// spread over its typical duration (measured first by running it), until
// Rounds kills have landed mid-work; after each kill the store and the
// remote must verify with
// --read-data, and running the same command again must complete the work
// (scenarios_test.go says what "complete" means per command). "interrupt":
// the command gets SIGINT mid-work; it must stop within ten seconds with
// a non-zero exit and a one-line error, leave no temporary files, locks
// or multipart uploads, and the store and remote must verify.
func TestTorture(t *testing.T) {
	c := settings(t)
	t.Logf("seed %d, %d kill points per command and backend, DATA_DIR %d MiB; replay: %s", c.Seed, c.Rounds, c.DataMB, c.Command)
	t.Run("scenario", func(t *testing.T) {
		for _, sc := range scenarios() {
			t.Run(sc.name(), func(t *testing.T) {
				t.Parallel()
				w := newWorld(t, sc.name(), sc.backend, c)
				start := time.Now()
				sc.build(w)
				t.Logf("%s: template built in %s", sc.name(), time.Since(start).Round(time.Millisecond))
				row := &resultRow{Command: sc.cmd, Backend: sc.backend, DataMiB: c.DataMB}
				t.Run("kill", func(t *testing.T) { sc.killTrials(t, w, c, row) })
				if slices.Contains([]string{"save", "restore", "push", "pull", "pull-restore", "prune"}, sc.cmd) {
					t.Run("interrupt", func(t *testing.T) { sc.interruptTrials(t, w, c, row) })
				}
				record(row)
			})
		}
	})
	t.Logf("results (seed %d; replay with %s):\n%s", c.Seed, c.Command, table(rows()))
}

// killPoints draws n fractions of the typical duration, one uniformly
// from each of n equal strata, so that the kills cover the whole run and
// no two coincide; the order is shuffled.
func killPoints(rng *rand.Rand, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = (float64(i) + rng.Float64()) / float64(n)
	}
	rng.Shuffle(n, func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// measure runs the command from the template three times and returns how
// long each run took.
func (sc scenario) measure(t *testing.T, w *world) []time.Duration {
	t.Helper()
	var took []time.Duration
	var summary string
	for range 3 {
		w.reset()
		o := w.attack(0, 0, sc.args...)
		if o.res.Code != 0 {
			t.Fatalf("the command fails without any attack: %s", o.res)
		}
		took, summary = append(took, o.took), firstLine(o.res.Stdout)
	}
	t.Logf("%s takes %s (runs: %v): %s", strings.Join(sc.args, " "), median(took).Round(time.Millisecond), took, summary)
	return took
}

// median is the typical duration among runs: one run on a busy machine
// can be far off.
func median(runs []time.Duration) time.Duration {
	s := slices.Sorted(slices.Values(runs))
	return s[len(s)/2]
}

func firstLine(s string) string {
	if l := lines(s); len(l) > 0 {
		return l[0]
	}
	return ""
}

// killTrials runs the crash-anywhere attack until Rounds kills have landed
// mid-work (at most three times as many tries). Each delay is a seeded
// fraction of the typical duration, the median of the runs measured
// first and of every attacked run that finished before its kill: on a
// machine whose load changes, the estimate follows the command.
func (sc scenario) killTrials(t *testing.T, w *world, c config, row *resultRow) {
	runs := sc.measure(t, w)
	rng := rand.New(rand.NewPCG(c.Seed, hashName(sc.name())))
	minDelay, maxDelay := time.Duration(1<<62), time.Duration(0)
	var points []float64
	for i := 0; row.KilledMidWork < c.Rounds && i < 3*c.Rounds; i++ {
		if len(points) == 0 {
			points = killPoints(rng, c.Rounds)
		}
		f, typical := points[0], median(runs)
		points = points[1:]
		delay := time.Duration(f * float64(typical))
		minDelay, maxDelay = min(minDelay, delay), max(maxDelay, delay)
		w.reset()
		o := w.attack(syscall.SIGKILL, delay, sc.args...)
		row.KillPoints++
		var problems []string
		switch {
		case o.killed:
			row.KilledMidWork++
		case o.res.Code == 0:
			row.FinishedFirst++
			runs = append(runs, o.took)
		default:
			problems = append(problems, fmt.Sprintf("failed by itself before the kill: %s", o.res))
		}
		temps, locks := countLeftovers(w.leftovers())
		if temps > 0 {
			row.LeftTemp++
		}
		if locks > 0 {
			row.LeftLock++
		}
		more, interrupted := sc.check(w, o)
		problems = append(problems, more...)
		if interrupted {
			row.InterruptedRestores++
		}
		if len(problems) > 0 {
			row.Failures++
			t.Errorf("kill point %d at %s (%.4f of %s; seed %d): %s", i, delay, f, typical, c.Seed, strings.Join(problems, "\n  "))
		}
	}
	row.TypicalMS = ms(median(runs))
	row.MinDelayMS, row.MaxDelayMS = ms(minDelay), ms(maxDelay)
	if row.KilledMidWork < c.Rounds {
		t.Errorf("only %d of %d kills landed mid-work in %d tries; the command is too quick for the attack", row.KilledMidWork, c.Rounds, row.KillPoints)
	}
	t.Logf("%s/%s: %d kill points in [%s, %s] of a typical %s: %d killed mid-work (%d left temporary files, %d a lock), %d finished before the kill; %d failures",
		sc.cmd, sc.backend, row.KillPoints, minDelay.Round(time.Microsecond), maxDelay.Round(time.Microsecond), median(runs).Round(time.Millisecond),
		row.KilledMidWork, row.LeftTemp, row.LeftLock, row.FinishedFirst, row.Failures)
}

// countLeftovers splits what leftovers found into temporary files and
// locks.
func countLeftovers(found []string) (temps, locks int) {
	for _, f := range found {
		if strings.Contains(f, "locks/") {
			locks++
		} else {
			temps++
		}
	}
	return temps, locks
}

// check runs the invariant checks after an attack: both sides verify, the
// state after the attack is one the command may leave, a second run of the
// same command completes, and the completed state is right.
func (sc scenario) check(w *world, o outcome) (out []string, interrupted bool) {
	out = append(out, w.verify(false, sc.writesStore)...)
	if w.hasRemote() {
		out = append(out, w.verify(true, sc.writesRemote)...)
	}
	if sc.afterAttack != nil {
		var problems []string
		problems, interrupted = sc.afterAttack(w, o)
		out = append(out, problems...)
	}
	if res := w.run.Run(sc.args...); res.Code != 0 {
		return append(out, fmt.Sprintf("running it again did not complete it: %s", res)), interrupted
	}
	out = append(out, sc.done(w)...)
	out = append(out, w.verify(false, false)...)
	if w.hasRemote() {
		out = append(out, w.verify(true, false)...)
	}
	return out, interrupted
}

// interruptTrials sends SIGINT mid-work until it has landed enough times.
func (sc scenario) interruptTrials(t *testing.T, w *world, c config, row *resultRow) {
	typical := median(sc.measure(t, w))
	want := 2
	if c.Long {
		want = max(want, c.Rounds/5)
	}
	rng := rand.New(rand.NewPCG(c.Seed, hashName(sc.name()+"/interrupt")))
	points := killPoints(rng, 6*want)
	for i, f := range points {
		if row.Interrupts >= want {
			break
		}
		// Between a tenth of the run and its end: mid-work. A signal that
		// still comes before the binary has installed its handler is
		// counted apart below.
		delay := max(time.Duration((0.1+0.85*f)*float64(typical)), 8*time.Millisecond)
		w.reset()
		o := w.attack(syscall.SIGINT, delay, sc.args...)
		if o.died && !o.hung {
			// No handler: the signal came before the binary installed it
			// (it does so before any work) or after it removed it (after
			// all work). Nothing may have changed.
			row.InterruptsOutside++
			if problems := append(w.leftovers(), w.verify(false, false)...); len(problems) > 0 {
				t.Errorf("interrupt %d at %s, outside the handler: %s", i, delay, strings.Join(problems, "\n  "))
			}
			continue
		}
		if !o.died && o.res.Code == 0 {
			row.InterruptsFinishedFirst++
			continue
		}
		row.Interrupts++
		row.InterruptStopMS = max(row.InterruptStopMS, ms(o.stopped))
		problems := interruptProblems(o)
		problems = append(problems, w.leftovers()...)
		more, _ := sc.check(w, o)
		problems = append(problems, more...)
		if len(problems) > 0 {
			row.InterruptFailures++
			t.Errorf("interrupt %d at %s (%.4f; seed %d): %s", i, delay, f, c.Seed, strings.Join(problems, "\n  "))
		}
	}
	if row.Interrupts < want {
		t.Errorf("only %d of %d interrupts landed mid-work (%d came after the command finished, %d outside its signal handler); the command is too quick for the attack",
			row.Interrupts, want, row.InterruptsFinishedFirst, row.InterruptsOutside)
	}
	t.Logf("%s/%s: %d interrupts mid-work, all stopped within %.0f ms; %d finished before the interrupt; %d failures",
		sc.cmd, sc.backend, row.Interrupts, row.InterruptStopMS, row.InterruptsFinishedFirst, row.InterruptFailures)
}

// interruptNotice is what the binary prints the moment SIGINT arrives.
const interruptNotice = "statepack: interrupted; stopping cleanly (interrupt again to quit at once)"

// interruptProblems checks how an interrupted command ended: promptly,
// with a non-zero status, and with one line saying what was interrupted
// (after the notice printed when the signal arrived).
func interruptProblems(o outcome) []string {
	var out []string
	switch {
	case o.hung:
		out = append(out, fmt.Sprintf("did not stop within %s of SIGINT", interruptGrace))
	case o.res.Code == 0:
		out = append(out, "exited 0 after SIGINT")
	}
	l := lines(o.res.Stderr)
	if len(l) > 0 && l[0] == interruptNotice {
		l = l[1:]
	}
	if len(l) != 1 || !strings.HasPrefix(l[0], "statepack: ") || !strings.Contains(l[0], "interrupted") {
		out = append(out, fmt.Sprintf("want one line saying it was interrupted, got stderr:\n%s", o.res.Stderr))
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
