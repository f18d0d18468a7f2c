package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/statepack/statepack/internal/benchutil"
)

// state is the name every run saves under.
const state = "bench"

// deps says which rows a row needs to have run first in the same run.
var deps = map[string][]string{
	"save":         nil,
	"noop-save":    {"save"},
	"push":         {"save"},
	"noop-push":    {"push"},
	"pull":         {"push"},
	"noop-pull":    {"push"},
	"link":         {"save"},
	"restore":      {"save"},
	"noop-restore": {"restore"},
	"mutate":       {"restore"},
	"switch":       {"mutate"},
	"scale":        nil,
}

// closeOver returns the rows to run for the selection only (all when
// empty), with everything they depend on; the link rows only with a link.
func closeOver(only map[string]bool, link bool) map[string]bool {
	need := map[string]bool{}
	var add func(string)
	add = func(k string) {
		if !need[k] {
			need[k] = true
			for _, d := range deps[k] {
				add(d)
			}
		}
	}
	for _, k := range rowKeys() {
		if (len(only) == 0 || only[k]) && (k != "link" || link) {
			add(k)
		}
	}
	return need
}

// needsRemote reports whether any S3 row runs.
func (b *bench) needsRemote() bool { return b.need["push"] || b.need["scale"] || b.need["link"] }

// needsData reports whether any row uses the --mb DATA_DIR (the scale
// row pushes a small state of its own).
func (b *bench) needsData() bool {
	for k := range b.need {
		if k != "scale" {
			return true
		}
	}
	return false
}

// trial is the state of one run: its directories and the snapshots saved.
type trial struct {
	n                                int
	root                             string
	store, restored, tarball, remote string
	v1, head                         string // cold save; latest save of the same content
}

// runOnce measures every selected row once, with fresh state.
func (b *bench) runOnce(n int) error {
	r := &trial{n: n, root: filepath.Join(b.work, fmt.Sprintf("run%d", n))}
	r.store, r.restored = filepath.Join(r.root, "store"), filepath.Join(r.root, "restored")
	r.tarball = filepath.Join(r.root, "data.tar.zst")
	if err := b.discard(r.root); err != nil {
		return err
	}
	if err := os.MkdirAll(r.root, 0o755); err != nil {
		return err
	}
	defer b.discard(r.root)
	b.logf("run %d of %d", n, b.cfg.Runs)
	steps := []struct {
		key string
		fn  func(*trial) error
	}{
		{"save", b.coldSave}, {"noop-save", b.noopSave},
		{"push", b.coldPush}, {"noop-push", b.noopPush}, {"pull", b.coldPull}, {"noop-pull", b.noopPull},
		{"restore", b.coldRestore}, {"noop-restore", b.noopRestore},
		{"mutate", b.mutateSave}, {"switch", b.switchVersion},
		// Last of the rows on the DATA_DIR, so that the trees it deletes
		// do not slow the creates of the cold restore (see docs/performance.md on
		// this VM's ext4).
		{"link", b.linkRun},
		{"scale", b.scaleRun},
	}
	for _, s := range steps {
		if !b.need[s.key] {
			continue
		}
		if err := s.fn(r); err != nil {
			return fmt.Errorf("%s: %w", s.key, err)
		}
	}
	return b.dropRemote(r)
}

// coldSave measures tar -I 'zstd -1 -T0' of DATA_DIR, then a save into a
// new, empty store (and restic's first backup).
func (b *bench) coldSave(r *trial) error {
	if _, err := b.measure("tar-zstd", "tar", "-I", "zstd -1 -T0", "-cf", r.tarball, "-C", b.data, "."); err != nil {
		return err
	}
	if _, err := b.spSetup(r.store, "", "", "init"); err != nil {
		return err
	}
	out, err := b.sp("save", r.store, b.data, "", "save", state)
	if err != nil {
		return err
	}
	if r.v1, err = snapshotID(out); err != nil {
		return err
	}
	r.head = r.v1
	if err := b.recordSizes(r); err != nil {
		return err
	}
	return b.resticBackup(r, "restic-backup")
}

// recordSizes notes the sizes of the tar archive and the store after a
// cold save, to compare what each keeps.
func (b *bench) recordSizes(r *trial) error {
	fi, err := os.Stat(r.tarball)
	if err != nil {
		return err
	}
	n, err := storeBytes(r.store)
	b.facts.TarBytes = append(b.facts.TarBytes, fi.Size())
	b.facts.StoreBytes = append(b.facts.StoreBytes, n)
	return err
}

// noopSave measures a save of the unchanged DATA_DIR.
func (b *bench) noopSave(r *trial) error {
	out, err := b.sp("save-noop", r.store, b.data, "", "save", state)
	if err != nil {
		return err
	}
	if r.head, err = snapshotID(out); err != nil {
		return err
	}
	return b.resticBackup(r, "restic-backup-noop")
}

// coldRestore measures a restore into an empty directory, cp -a and
// tar -x of the same tree into empty directories (and restic's restore).
func (b *bench) coldRestore(r *trial) error {
	if _, err := b.sp("restore", r.store, r.restored, "", "restore", r.v1); err != nil {
		return err
	}
	cp := filepath.Join(r.root, "cp")
	if _, err := b.measure("cp-a", "cp", "-a", b.data, cp); err != nil {
		return err
	}
	if err := b.discard(cp); err != nil {
		return err
	}
	untar := filepath.Join(r.root, "untar")
	if err := os.Mkdir(untar, 0o755); err != nil {
		return err
	}
	if _, err := b.measure("tar-x", "tar", "-I", "zstd -T0", "-xf", r.tarball, "-C", untar); err != nil {
		return err
	}
	if err := b.discard(untar); err != nil {
		return err
	}
	return b.resticRestore(r)
}

// noopRestore measures restoring the snapshot DATA_DIR already holds.
func (b *bench) noopRestore(r *trial) error {
	_, err := b.sp("restore-noop", r.store, r.restored, "", "restore", r.v1)
	return err
}

// mutateSave applies one mutate step to the restored tree and measures
// the save that follows, with the bytes it added to the store. The first
// run also compares the trees page by page.
func (b *bench) mutateSave(r *trial) error {
	out, err := b.output(b.datagen, "mutate", "--dir", r.restored, "--seed", "1", "--step", "1", "--json")
	if err != nil {
		return err
	}
	m, err := decodeJSON(out)
	if err != nil {
		return err
	}
	changed, err := intField(m, "changed_bytes")
	if err != nil {
		return err
	}
	before, err := storeBytes(r.store)
	if err != nil {
		return err
	}
	if _, err := b.sp("save-mutate", r.store, r.restored, "", "save", state); err != nil {
		return err
	}
	after, err := storeBytes(r.store)
	if err != nil {
		return err
	}
	b.facts.ChangedBytes = append(b.facts.ChangedBytes, changed)
	b.facts.StoreAdded = append(b.facts.StoreAdded, after-before)
	if b.facts.Pages == nil {
		d, err := benchutil.ChangedPages(b.data, r.restored)
		if err != nil {
			return err
		}
		b.facts.Pages = &d
	}
	b.logf("  mutate: changed pages %d KiB (datagen) %d KiB (bench), zstd %d KiB; store grew %d KiB",
		changed>>10, b.facts.Pages.Bytes>>10, b.facts.Pages.Compressed>>10, (after-before)>>10)
	return nil
}

// switchVersion measures restoring the version before the mutation into
// the directory that holds the version after it.
func (b *bench) switchVersion(r *trial) error {
	_, err := b.sp("restore-switch", r.store, r.restored, "", "restore", r.head)
	return err
}

// storeBytes is the size of a store's repository objects: everything but
// the local stat cache and locks.
func storeBytes(store string) (int64, error) {
	return benchutil.DirBytes(store, "cache", "locks")
}
