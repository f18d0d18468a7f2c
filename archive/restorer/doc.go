// Package restorer makes DATA_DIR exactly a snapshot (invariant 3) and
// tells how it differs from one: Restore, with its guard against
// overwriting a DATA_DIR statepack has no record of, the backup of
// unsaved content (invariant 4) and the restore marker that lets an
// interrupted restore be finished; ScatterRestore, which writes each
// block into every file that uses it as a pull delivers it; and Diff,
// DiffDataDir, DataDirChanges and DataDirOrigin for diff and status.
// Files are written under temporary names and renamed into place, blocks
// already on disk are copied rather than read again, blocks of zeros
// become holes, and the stat cache records only what restore wrote and
// found unchanged (invariant 8).
//
// It sits above archive (whose verified reads it uses) and archive/saver
// (for the backup), and uses archive/format, archive/scan,
// archive/statcache and archive/datadir. It must not import
// archive/maintain, nor remote or any backend but the contract in
// remote/backend: fast paths on local packs ask for the backend.Local
// capability, never for a concrete backend type, and S3 is unknown here.
//
// # Temporary names and the restore marker
//
// Restore writes each file under a temporary name (".statepack-tmp-" and
// 16 random lowercase hex digits: only that exact shape is restore's, and
// no manifest may name it) in its own directory and renames it into place. Before
// the first change to DATA_DIR it writes a marker beside the stat cache
// (<stat cache>.restoring, the snapshot id); it removes it when DATA_DIR
// is exactly the snapshot. A marker left behind is an interrupted restore:
// status reports it, and the next restore removes the temporary files and
// completes it (invariant 4).
//
// pull --restore into a missing or empty DATA_DIR uses ScatterRestore
// instead of Restore after the pull: each block the pull receives, once
// verified, is written straight into every temporary file that uses it;
// the files are renamed into place only after the pull has written packs,
// index, snapshot and ref, so DATA_DIR never holds a file of a snapshot
// the store lacks. The marker works the same way.
package restorer
