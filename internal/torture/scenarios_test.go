package torture

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// scenario is one command attacked on one backend: how to build the state
// it starts from, and what must hold once the attacked run is followed by
// a run that completes.
type scenario struct {
	cmd     string
	backend string
	args    []string
	// keepData: the command reads or writes DATA_DIR, so reset restores it.
	keepData bool
	// writesStore, writesRemote: the sides the command writes; they are
	// verified with --read-data after an attack, the others without.
	writesStore, writesRemote bool
	// build creates the template state at the world's working paths.
	build func(w *world)
	// afterAttack checks the state right after the attack, before the
	// command is run again; interrupted reports whether status said so.
	afterAttack func(w *world, o outcome) (problems []string, interrupted bool)
	// done checks the state after the command was run again to the end.
	done func(w *world) []string
}

func (sc scenario) name() string { return sc.cmd + "-" + sc.backend }

// remoteFlag is "--remote" for commands that act on the remote itself.
func remoteArgs(backend string, args ...string) []string {
	if backend != backendLocal {
		args = append(args, "--remote")
	}
	return args
}

// scenarios lists every command and backend under attack.
func scenarios() []scenario {
	var out []scenario
	out = append(out, saveScenario(), restoreScenario())
	for _, b := range []string{backendDir, backendMinIO} {
		out = append(out, pushScenario(b), pullScenario(b), pullRestoreScenario(b))
	}
	for _, b := range []string{backendLocal, backendDir, backendMinIO} {
		out = append(out, forgetScenario(b), pruneScenario(b))
	}
	return out
}

// saveScenario: the store holds version 1 of the state; DATA_DIR has
// changed a little and gained a tree half its size. After the second run
// the state's head restores to exactly what DATA_DIR holds.
func saveScenario() scenario {
	return scenario{
		cmd: "save", backend: backendLocal, args: []string{"save", "s", "-m", "attacked"},
		keepData: true, writesStore: true,
		build: func(w *world) {
			w.initStore()
			w.gen(w.data, 0, w.mb)
			w.ids["v1"] = w.save("s", "")
			w.mutate(1)
			w.gen(filepath.Join(w.data, "extra"), 1, w.mb/2)
			w.trees["want"] = w.tree(w.data)
			w.capture(true)
		},
		done: func(w *world) []string {
			var out []string
			ids, err := w.history("s", false)
			if err != nil {
				return []string{err.Error()}
			}
			if len(ids) < 2 || ids[len(ids)-1] != w.ids["v1"] {
				out = append(out, fmt.Sprintf("history of s is %v; want new versions on top of %s", ids, w.ids["v1"]))
			}
			got, err := w.restoreInto("s")
			if err != nil {
				return append(out, "restore the saved head: "+err.Error())
			}
			if d := diffTrees(w.trees["want"], got); d != "" {
				out = append(out, "the saved head does not restore to what DATA_DIR held: "+d)
			}
			return out
		},
	}
}

// restoreScenario: DATA_DIR holds version 2 plus unsaved changes; restore
// goes back to version 1 (so it first saves a backup, then rewrites most
// files and removes a whole tree). After an attack, status reports the
// interrupted restore unless DATA_DIR is still untouched (or already
// done); after the second run DATA_DIR is exactly version 1 and the
// backup holds exactly what DATA_DIR held before.
func restoreScenario() scenario {
	return scenario{
		cmd: "restore", backend: backendLocal, args: []string{"restore", "s~1"},
		keepData: true, writesStore: true,
		build: func(w *world) {
			w.initStore()
			w.gen(w.data, 0, w.mb)
			w.trees["v1"] = w.tree(w.data)
			w.ids["v1"] = w.save("s", "")
			w.mutate(1)
			w.gen(filepath.Join(w.data, "extra"), 1, w.mb/2)
			w.save("s", "")
			w.mutate(2)
			w.trees["before"] = w.tree(w.data)
			w.capture(true)
		},
		afterAttack: func(w *world, o outcome) ([]string, bool) {
			st, err := w.status()
			if err != nil {
				return []string{"status: " + err.Error()}, false
			}
			if st.InterruptedRestore != "" {
				if st.InterruptedRestore != w.ids["v1"] {
					return []string{fmt.Sprintf("status reports an interrupted restore of %s, want %s", st.InterruptedRestore, w.ids["v1"])}, true
				}
				return nil, true
			}
			got := w.tree(w.data)
			before, after := diffTrees(w.trees["before"], got), diffTrees(w.trees["v1"], got)
			if before != "" && after != "" {
				return []string{"status reports no interrupted restore, but DATA_DIR is neither as before nor restored: " + before}, false
			}
			return nil, false
		},
		done: func(w *world) []string {
			out := restoredToV1(w, "the second restore")
			got, err := w.restoreInto("restore-backup")
			if err != nil {
				return append(out, "restore the backup: "+err.Error())
			}
			if d := diffTrees(w.trees["before"], got); d != "" {
				out = append(out, "the backup restore saved does not hold what DATA_DIR held: "+d)
			}
			return out
		},
	}
}

// restoredToV1 checks the end of a run that completed an interrupted
// restore (by what): DATA_DIR is version 1 and status no longer reports
// an interrupted restore.
func restoredToV1(w *world, by string) []string {
	var out []string
	if d := diffTrees(w.trees["v1"], w.tree(w.data)); d != "" {
		out = append(out, "DATA_DIR after "+by+" is not the snapshot: "+d)
	}
	st, err := w.status()
	switch {
	case err != nil:
		out = append(out, "status: "+err.Error())
	case st.InterruptedRestore != "":
		out = append(out, "status still reports an interrupted restore after it was completed")
	}
	return out
}

// pushScenario: the remote has version 1, the store version 2 with a tree
// half the size of DATA_DIR more; push sends the difference.
func pushScenario(backend string) scenario {
	return scenario{
		cmd: "push", backend: backend, args: []string{"push", "s"},
		writesRemote: true,
		build: func(w *world) {
			w.initStore()
			w.gen(w.data, 0, w.mb)
			w.save("s", "")
			w.sp("push", "s")
			w.mutate(1)
			w.gen(filepath.Join(w.data, "extra"), 1, w.mb/2)
			w.ids["v2"] = w.save("s", "")
			w.capture(false)
		},
		done: func(w *world) []string {
			heads, err := w.heads(true)
			if err != nil {
				return []string{err.Error()}
			}
			if heads["s"] != w.ids["v2"] {
				return []string{fmt.Sprintf("remote state s is at %q after the push, want %s", heads["s"], w.ids["v2"])}
			}
			return nil
		},
	}
}

// pullScenario: the mirror of push: the remote is at version 2, the store
// still at version 1.
func pullScenario(backend string) scenario {
	return scenario{
		cmd: "pull", backend: backend, args: []string{"pull", "s"},
		writesStore: true,
		build: func(w *world) {
			w.initStore()
			w.gen(w.data, 0, w.mb)
			w.save("s", "")
			w.sp("push", "s")
			w.captureStore()
			w.mutate(1)
			w.gen(filepath.Join(w.data, "extra"), 1, w.mb/2)
			w.ids["v2"] = w.save("s", "")
			w.sp("push", "s")
			w.capture(false)
		},
		done: func(w *world) []string {
			heads, err := w.heads(false)
			if err != nil {
				return []string{err.Error()}
			}
			if heads["s"] != w.ids["v2"] {
				return []string{fmt.Sprintf("local state s is at %q after the pull, want %s", heads["s"], w.ids["v2"])}
			}
			return nil
		},
	}
}

// pullRestoreScenario: the CI cache case. A fresh store, no DATA_DIR,
// and the remote holds the state: pull --restore restores while it
// receives (restorer.ScatterRestore). A kill may leave DATA_DIR missing or
// empty, restored, or an interrupted restore that status reports; when
// the snapshot reached the store by then, restore completes it. Running
// pull --restore again always does.
func pullRestoreScenario(backend string) scenario {
	return scenario{
		cmd: "pull-restore", backend: backend, args: []string{"pull", "s", "--restore"},
		writesStore: true,
		build: func(w *world) {
			src := filepath.Join(w.root, "src")
			w.initStore()
			w.gen(src, 0, w.mb)
			w.trees["v1"] = w.tree(src)
			w.ids["v1"] = w.save("s", src)
			w.sp("push", "s")
			if err := clearDir(w.store); err != nil {
				w.t.Fatal(err)
			}
			w.initStore()
			w.capture(false)
		},
		afterAttack: func(w *world, o outcome) ([]string, bool) {
			st, err := w.status()
			if err != nil {
				return []string{"status: " + err.Error()}, false
			}
			if st.InterruptedRestore != "" {
				if st.InterruptedRestore != w.ids["v1"] {
					return []string{fmt.Sprintf("status reports an interrupted restore of %s, want %s", st.InterruptedRestore, w.ids["v1"])}, true
				}
				// Status says how to complete it: pull --restore again while
				// the snapshot is not in the store (restore could not), else
				// restore, which must then work.
				if strings.Contains(w.sp("status").Stdout, "pull --restore") {
					return nil, true
				}
				if res := w.run.Run("restore", st.InterruptedRestore); res.Code != 0 {
					return []string{"restore did not complete the interrupted pull --restore: " + res.String()}, true
				}
				if d := diffTrees(w.trees["v1"], w.tree(w.data)); d != "" {
					return []string{"DATA_DIR after restore completed the interrupted pull --restore: " + d}, true
				}
				return nil, true
			}
			if entries, err := os.ReadDir(w.data); err != nil || len(entries) == 0 {
				return nil, false // missing or empty, as it was
			}
			if d := diffTrees(w.trees["v1"], w.tree(w.data)); d != "" {
				return []string{"status reports no interrupted restore, but DATA_DIR is neither empty nor restored: " + d}, false
			}
			return nil, false
		},
		done: func(w *world) []string {
			out := restoredToV1(w, "pull --restore ran again")
			heads, err := w.heads(false)
			if err != nil {
				return append(out, err.Error())
			}
			if heads["s"] != w.ids["v1"] {
				out = append(out, fmt.Sprintf("local state s is at %q after pull --restore, want %s", heads["s"], w.ids["v1"]))
			}
			return out
		},
	}
}

// buildHistory gives state s six versions (twelve in a torture run), each
// with a new quarter-size tree so that old versions own blocks of their
// own, and a second state "other"; with a remote, every version is pushed.
func buildHistory(w *world) {
	w.initStore()
	w.gen(w.data, 0, w.mb)
	versions := 6
	if w.long {
		versions = 12
	}
	var ids []string
	for k := 1; k <= versions; k++ {
		if k > 1 {
			w.mutate(k - 1)
			if err := clearDir(filepath.Join(w.data, "extra")); err != nil {
				w.t.Fatal(err)
			}
			w.gen(filepath.Join(w.data, "extra"), int64(10+k), w.mb/4)
		}
		ids = append(ids, w.save("s", ""))
		if w.hasRemote() {
			w.sp("push", "s")
		}
	}
	other := filepath.Join(w.root, "other")
	w.gen(other, 99, w.mb/4)
	w.ids["other"] = w.save("other", other)
	if w.hasRemote() {
		w.sp("push", "other")
	}
	if err := clearDir(other); err != nil {
		w.t.Fatal(err)
	}
	slices.Reverse(ids)
	w.ids["head"], w.ids["head~1"] = ids[0], ids[1]
}

// keptHistory checks that s keeps exactly its two newest versions.
func keptHistory(w *world, remote bool) []string {
	ids, err := w.history("s", remote)
	if err != nil {
		return []string{err.Error()}
	}
	if want := []string{w.ids["head"], w.ids["head~1"]}; !slices.Equal(ids, want) {
		return []string{fmt.Sprintf("history of s is %v, want %v", ids, want)}
	}
	return nil
}

// forgetScenario: forget all but the two newest versions.
func forgetScenario(backend string) scenario {
	remote := backend != backendLocal
	return scenario{
		cmd: "forget", backend: backend, args: remoteArgs(backend, "forget", "s", "--keep-last", "2"),
		writesStore: !remote, writesRemote: remote,
		build: func(w *world) {
			buildHistory(w)
			w.capture(false)
		},
		done: func(w *world) []string {
			out := keptHistory(w, remote)
			heads, err := w.heads(remote)
			if err != nil {
				return append(out, err.Error())
			}
			if heads["other"] != w.ids["other"] {
				out = append(out, fmt.Sprintf("state other is at %q, want %s untouched", heads["other"], w.ids["other"]))
			}
			return out
		},
	}
}

// pruneScenario: four versions of s and the whole state "other" were
// forgotten; prune deletes their packs and repacks the mixed ones. Once
// the second run is done, a third finds nothing left to do.
func pruneScenario(backend string) scenario {
	remote := backend != backendLocal
	return scenario{
		cmd: "prune", backend: backend, args: remoteArgs(backend, "prune"),
		writesStore: !remote, writesRemote: remote,
		build: func(w *world) {
			buildHistory(w)
			w.sp(remoteArgs(backend, "forget", "s", "--keep-last", "2")...)
			w.sp(remoteArgs(backend, "forget", "other", "--all")...)
			w.capture(false)
		},
		done: func(w *world) []string {
			out := keptHistory(w, remote)
			heads, err := w.heads(remote)
			if err != nil {
				return append(out, err.Error())
			}
			if len(heads) != 1 {
				out = append(out, fmt.Sprintf("states after prune: %v, want only s", heads))
			}
			var p pruneDoc
			if err := w.tryJSON(&p, remoteArgs(backend, "prune")...); err != nil {
				return append(out, "prune once more: "+err.Error())
			}
			if p.PacksRemoved+p.PacksRepacked+p.SnapshotsRemoved != 0 {
				out = append(out, fmt.Sprintf("a prune after the completed one still found work: %+v", p))
			}
			return out
		},
	}
}

// exists reports whether a path exists.
func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
