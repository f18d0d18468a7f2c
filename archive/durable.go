package archive

import (
	"fmt"

	"github.com/statepack/statepack/remote/backend"
)

// syncWrites makes every object written so far durable, before a step
// that must not reach the disk first: prune and repair delete what their
// new packs and index replace, and a deletion that reached the disk
// before its replacement would lose blocks on a power failure. Other
// backends (S3) store durably before Put returns.
func (r *Repository) SyncWrites() error {
	if d, ok := backend.As[backend.Durable](r.be); ok {
		return d.Flush()
	}
	return nil
}

// SettleReads makes durable now everything this repository has read of
// its directory store, so that the flush before its next ref needs only
// what it writes from here on. pull --restore calls it after loading the
// local index and before writing DATA_DIR, whose pages a syncfs at the
// ref would otherwise wait for. Other backends need nothing.
func (r *Repository) SettleReads() error {
	d, ok := backend.As[backend.Durable](r.be)
	if !ok {
		return nil
	}
	if err := d.SettleReads(); err != nil {
		return fmt.Errorf("flush %s: %w", r.Location(), err)
	}
	return nil
}

// refuseOversized refuses an object of a directory repository larger
// than limit by its size, before reading it: a sparse file of 100 GiB
// planted as a snapshot costs nothing to plant, and reading it up to the
// limit cost 23 s and 2 GiB. Other backends' objects are read up to the
// limit (the wrappers between do not tell a reader's size).
func (r *Repository) refuseOversized(name string, limit int64) error {
	d, ok := backend.As[backend.Local](r.be)
	if !ok {
		return nil
	}
	oi, err := d.StatObject(name)
	if err != nil || oi.Size <= limit {
		return nil // Get reports what is wrong
	}
	return oversized(name, r.Location(), limit)
}
