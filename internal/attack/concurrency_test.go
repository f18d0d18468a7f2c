package attack

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/statepack/statepack/internal/miniotest"
	"github.com/statepack/statepack/internal/treetest"
)

// Part 5 of issue 4: several processes share one store or one bucket.
// Writers (save, push, pull, restore) take shared locks, prune and forget
// the exclusive one; refs move by compare-and-swap. Whatever the
// interleaving, every process either finishes or fails with one clear
// line, every ref resolves, verify passes on every side, and every
// acknowledged (exit 0) save or push is complete: restoring it gives back
// its source tree exactly.

// outcomes counts what concurrent processes did, for the figures.
type outcomes struct {
	mu              sync.Mutex
	runs, ok, clear int
	lost            int
}

func (o *outcomes) add(ok, clear, lost bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.runs++
	switch {
	case ok:
		o.ok++
	case clear:
		o.clear++
	}
	if lost {
		o.lost++
	}
}

func (o *outcomes) row(name string) []string {
	return []string{name, fmt.Sprint(o.runs), fmt.Sprint(o.ok), fmt.Sprint(o.clear), fmt.Sprint(o.lost)}
}

var concurrencyHeader = []string{"scenario", "processes", "acknowledged", "refused with a clear message", "data lost"}

// refusedClearly reports whether a failed run failed only because of a
// lock or a lost race, saying so in one line.
func refusedClearly(r result, secret string) bool {
	if r.code <= 0 || clearMessage(r, secret) != "" {
		return false
	}
	msg := r.stderr
	return strings.Contains(msg, "is locked by") || strings.Contains(msg, "changed by someone else") ||
		strings.Contains(msg, "not a fast-forward") || strings.Contains(msg, "which the local state does not contain")
}

// machine is an env with its own DATA_DIR content, generated from seed.
func machine(t *testing.T, seed int64, size int64) (*env, treetest.Tree) {
	t.Helper()
	e := newEnv(t)
	if err := os.Remove(e.data); err != nil {
		t.Fatal(err)
	}
	generate(t, e.data, seed, size)
	// A file every machine shares: the same blocks written at once.
	treetest.Write(t, e.data, map[string]treetest.Spec{"shared/common.bin": {Content: string(randomBytes(rng(1, 1), 300<<10))}})
	return e, treetest.MustRead(t, e.data)
}

// restoreEquals restores name from e's store into a fresh directory and
// compares it with want; it returns what differs, or "".
func restoreEquals(e *env, name string, want treetest.Tree) string {
	dir := filepath.Join(e.root, "check-"+strings.NewReplacer("/", "-", "~", "-").Replace(name)+fmt.Sprint(time.Now().UnixNano()))
	r := e.runWith(map[string]string{"DATA_DIR": dir}, runLimit, "restore", name)
	if r.code != 0 {
		return r.String()
	}
	got, err := treeOf(dir)
	if err != nil {
		return err.Error()
	}
	return sameTree(want, got)
}

// TestConcurrentSaves: several saves of different states into one new
// store at once (the store itself created concurrently). All succeed:
// writers share the lock.
func TestConcurrentSaves(t *testing.T) {
	t.Parallel()
	concurrentSaves(t, 4, 1)
}

// TestTortureConcurrentSaves: eight at once, STATEPACK_TORTURE/10 rounds.
func TestTortureConcurrentSaves(t *testing.T) {
	n := skipUnlessTorture(t)
	t.Parallel()
	concurrentSaves(t, 8, max(1, n/10))
}

func concurrentSaves(t *testing.T, n, rounds int) {
	seed := seedFor(t)
	var o outcomes
	for round := range rounds {
		store := filepath.Join(t.TempDir(), "store")
		machines := make([]*env, n)
		trees := make([]treetest.Tree, n)
		for i := range machines {
			machines[i], trees[i] = machine(t, int64(seed%1000)+int64(round*100+i), 1<<20)
			machines[i].vars["STATEPACK_STORE"] = store
		}
		results := make([]result, n)
		var wg sync.WaitGroup
		for i, m := range machines {
			wg.Add(1)
			go func() { defer wg.Done(); results[i] = m.run("save", fmt.Sprintf("state-%d", i)) }()
		}
		wg.Wait()
		for i, r := range results {
			lost := false
			if r.code != 0 {
				t.Errorf("concurrent save %d: %s", i, r)
			} else if d := restoreEquals(machines[i], fmt.Sprintf("state-%d", i), trees[i]); d != "" {
				lost = true
				t.Errorf("state-%d after concurrent saves: %s", i, d)
			}
			o.add(r.code == 0, false, lost)
		}
		if r := machines[0].run("verify", "--read-data"); r.code != 0 {
			t.Errorf("store after concurrent saves: %s", r)
		}
	}
	t.Logf("\n%s", table(concurrencyHeader, [][]string{o.row(fmt.Sprintf("%d saves of different states into one store at once", n))}))
}

// TestSaveDuringPrune: a save and a prune of one store started together,
// at seeded offsets. Both complete, or one of them is refused by the
// other's lock with a clear message; the store always verifies and every
// acknowledged save restores exactly.
func TestSaveDuringPrune(t *testing.T) {
	t.Parallel()
	saveDuringPrune(t, 8)
}

// TestTortureSaveDuringPrune: STATEPACK_TORTURE rounds.
func TestTortureSaveDuringPrune(t *testing.T) {
	n := skipUnlessTorture(t)
	t.Parallel()
	saveDuringPrune(t, n)
}

func saveDuringPrune(t *testing.T, rounds int) {
	seed := seedFor(t)
	g := rng(seed, 5)
	e, _ := machine(t, int64(seed%1000), 1<<20)
	var saves, prunes outcomes
	for round := range rounds {
		// Garbage for prune: a version forgotten, then a new one to save.
		e.must("save", "g")
		if err := os.WriteFile(filepath.Join(e.data, "round.txt"), randomBytes(g, 200<<10), 0o644); err != nil {
			t.Fatal(err)
		}
		e.must("save", "g")
		e.must("forget", "g", "--keep-last", "1")
		if err := os.WriteFile(filepath.Join(e.data, "round.txt"), randomBytes(g, 300<<10), 0o644); err != nil {
			t.Fatal(err)
		}
		want := treetest.MustRead(t, e.data)
		// A save takes some 20-50ms here and a prune 10-100ms: starting
		// prune between 20ms before and 50ms after the save makes them
		// overlap in most rounds, in both orders.
		offset := time.Duration(g.IntN(70)-20) * time.Millisecond
		var save, prune result
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); time.Sleep(-offset); save = e.run("save", fmt.Sprintf("s%d", round)) }()
		go func() { defer wg.Done(); time.Sleep(offset); prune = e.run("prune") }()
		wg.Wait()
		for _, r := range []result{save, prune} {
			if r.code != 0 && !refusedClearly(r, "") {
				t.Errorf("round %d (prune %v after save): %s", round, offset, r)
			}
		}
		lost := false
		if save.code == 0 {
			if d := restoreEquals(e, fmt.Sprintf("s%d", round), want); d != "" {
				lost = true
				t.Errorf("round %d: acknowledged save does not restore: %s", round, d)
			}
		}
		saves.add(save.code == 0, refusedClearly(save, ""), lost)
		prunes.add(prune.code == 0, refusedClearly(prune, ""), false)
		if r := e.run("verify", "--read-data"); r.code != 0 {
			t.Errorf("round %d: store after save and prune: %s", round, r)
		}
	}
	t.Logf("\n%s", table(concurrencyHeader, [][]string{
		saves.row(fmt.Sprintf("save during prune (%d rounds): saves", rounds)),
		prunes.row(fmt.Sprintf("save during prune (%d rounds): prunes", rounds)),
	}))
}

// TestConcurrentPushesWithPrune: four machines push different states and
// two push the same state, all at once, into one MinIO bucket while a
// third party prunes it (after forgetting a version, so there is garbage
// to collect). Pushes are refused only by a lock or by losing the race
// for the shared state; at most one of the two shared pushes wins; every
// acknowledged push pulls and restores exactly; the bucket verifies.
func TestConcurrentPushesWithPrune(t *testing.T) {
	t.Parallel()
	concurrentPushes(t, 1)
}

// TestTortureConcurrentPushesWithPrune: STATEPACK_TORTURE/10 rounds.
func TestTortureConcurrentPushesWithPrune(t *testing.T) {
	n := skipUnlessTorture(t)
	t.Parallel()
	concurrentPushes(t, max(1, n/10))
}

func concurrentPushes(t *testing.T, rounds int) {
	srv := miniotest.Get(t)
	seed := seedFor(t)
	var pushes, prunes outcomes
	for round := range rounds {
		url := "s3://" + newBucket(t, srv) + "/team"
		setup := func(e *env) *env { e.useS3(srv, srv.Endpoint); e.vars["STATEPACK_REMOTE"] = url; return e }

		// Garbage on the remote: two versions of "old", one forgotten.
		janitor, _ := machine(t, int64(seed%1000)+999, 256<<10)
		setup(janitor)
		janitor.must("save", "old")
		janitor.must("push", "old")
		treetest.Write(t, janitor.data, map[string]treetest.Spec{"extra.bin": {Content: string(randomBytes(rng(seed, 77), 200<<10))}})
		janitor.must("save", "old")
		janitor.must("push", "old")
		janitor.must("forget", "old", "--keep-last", "1", "--remote")

		type pusher struct {
			e     *env
			state string
			tree  treetest.Tree
			res   result
		}
		var ps []*pusher
		for i := range 6 {
			e, tree := machine(t, int64(seed%1000)+int64(round*10+i), 1<<20)
			state := fmt.Sprintf("state-%d", i)
			if i >= 4 {
				state = "shared"
			}
			setup(e).must("save", state)
			ps = append(ps, &pusher{e: e, state: state, tree: tree})
		}
		var wg sync.WaitGroup
		var pruneRuns []result
		var mu sync.Mutex
		stop := make(chan struct{})
		for _, p := range ps {
			wg.Add(1)
			go func() { defer wg.Done(); p.res = p.e.run("push", p.state) }()
		}
		pruneDone := make(chan struct{})
		go func() {
			defer close(pruneDone)
			for {
				r := janitor.run("prune", "--remote")
				mu.Lock()
				pruneRuns = append(pruneRuns, r)
				mu.Unlock()
				select {
				case <-stop:
					return
				default:
				}
			}
		}()
		wg.Wait()
		close(stop)
		<-pruneDone
		if r := janitor.run("prune", "--remote"); r.code != 0 {
			t.Errorf("prune after the pushes: %s", r)
		}

		sharedWins := 0
		for _, p := range ps {
			ok := p.res.code == 0
			if !ok && !refusedClearly(p.res, srv.SecretKey) {
				t.Errorf("push %s: %s", p.state, p.res)
			}
			lost := false
			if ok {
				if p.state == "shared" {
					sharedWins++
				}
				puller := setup(newEnv(t))
				if r := puller.run("pull", p.state, "--restore"); r.code != 0 {
					lost = true
					t.Errorf("pull of acknowledged %s: %s", p.state, r)
				} else if got := treetest.MustRead(t, puller.data); sameTree(p.tree, got) != "" {
					lost = true
					t.Errorf("acknowledged push of %s does not restore: %s", p.state, sameTree(p.tree, got))
				}
			}
			pushes.add(ok, refusedClearly(p.res, srv.SecretKey), lost)
		}
		if sharedWins > 1 {
			t.Errorf("both pushes of one state with different histories were acknowledged")
		}
		for _, r := range pruneRuns {
			if r.code != 0 && !refusedClearly(r, srv.SecretKey) {
				t.Errorf("prune during the pushes: %s", r)
			}
			prunes.add(r.code == 0, refusedClearly(r, srv.SecretKey), false)
		}
		if r := janitor.run("verify", "--remote", "--read-data"); r.code != 0 {
			t.Errorf("bucket after the pushes: %s", r)
		}
		// Every ref on the remote resolves (verify checks it too).
		if r := janitor.must("--json", "list", "--remote"); !strings.Contains(r.stdout, `"old"`) {
			t.Errorf("list --remote lost the state old: %s", r.stdout)
		}
		// A refused push of its own state completes when run again.
		for _, p := range ps {
			if p.res.code != 0 && p.state != "shared" {
				if r := p.e.run("push", p.state); r.code != 0 {
					t.Errorf("push %s again: %s", p.state, r)
				}
			}
		}
	}
	t.Logf("\n%s", table(concurrencyHeader, [][]string{
		pushes.row("4 pushers of different states + 2 of one state, one bucket, prune running: pushes"),
		prunes.row("... the prunes running meanwhile"),
	}))
}

// TestTwentyPullers: twenty machines pull one state with --restore at
// once, each into its own store: all succeed, all restore exactly, every
// store verifies.
func TestTwentyPullers(t *testing.T) {
	t.Parallel()
	twentyPullers(t, 1)
}

// TestTortureTwentyPullers: STATEPACK_TORTURE/50 rounds.
func TestTortureTwentyPullers(t *testing.T) {
	n := skipUnlessTorture(t)
	t.Parallel()
	twentyPullers(t, max(1, n/50))
}

func twentyPullers(t *testing.T, rounds int) {
	srv := miniotest.Get(t)
	seed := seedFor(t)
	var o outcomes
	const n = 20
	for round := range rounds {
		url := "s3://" + newBucket(t, srv) + "/pull"
		src := newSource(t, int64(seed%1000)+int64(5+round), 3<<20)
		src.useS3(srv, srv.Endpoint)
		src.vars["STATEPACK_REMOTE"] = url
		src.must("push", "s")
		pullers := make([]*env, n)
		results := make([]result, n)
		for i := range pullers {
			pullers[i] = newEnv(t).useS3(srv, srv.Endpoint)
			pullers[i].vars["STATEPACK_REMOTE"] = url
		}
		var wg sync.WaitGroup
		for i, p := range pullers {
			wg.Add(1)
			go func() { defer wg.Done(); results[i] = p.run("pull", "s", "--restore") }()
		}
		wg.Wait()
		for i, p := range pullers {
			r := results[i]
			lost := false
			if r.code != 0 {
				t.Errorf("puller %d: %s", i, r)
			} else if got, err := treeOf(p.data); err != nil || sameTree(src.tree, got) != "" {
				lost = true
				t.Errorf("puller %d restored a different tree: %v %s", i, err, sameTree(src.tree, got))
			}
			if v := p.run("verify", "--read-data"); v.code != 0 {
				t.Errorf("puller %d's store: %s", i, v)
			}
			o.add(r.code == 0, false, lost)
		}
		if v := src.run("verify", "--remote", "--read-data"); v.code != 0 {
			t.Errorf("bucket after twenty pulls: %s", v)
		}
	}
	t.Logf("\n%s", table(concurrencyHeader, [][]string{o.row(fmt.Sprintf("20 pullers of one state at once, 20 stores (%d round(s))", rounds))}))
}
