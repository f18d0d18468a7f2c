// Package archive is the statepack repository: the format (config, packs,
// index, snapshots, refs, locks) and what is done with it (save, restore,
// diff, verify, forget, prune, repair). It knows nothing of S3: every byte
// goes through a Backend, and the local store is a DirBackend.
//
// # Repository format, version 1
//
// All ids are lowercase hex of BLAKE3-256. An object's id is the hash of
// its bytes, so whoever reads an object can verify it.
//
//	config                 JSON: version, repository id, chunker min/avg/max
//	                       and sqlite_pages, pack size target, zstd level
//	packs/<xx>/<packid>    immutable: stored blocks back to back, then a
//	                       trailer of 45-byte entries, then an 8-byte footer
//	index/<indexid>        immutable: which pack holds which block; written
//	                       only after its packs are complete
//	snapshots/<snapid>     immutable manifest of one version of a state
//	refs/<state>           mutable: "<snapid>\n", moved by compare-and-swap
//	locks/<lockid>         JSON {exclusive, host, pid, command, time}
//	lookup/<tablesid>      optional, derived: a lookup table of the index
//	                       (package lookup); id = its tables hash
//	lookup/<tablesid>.filter  the table's Bloom filter (package lookup)
//
// Pack entry (little endian): block id [32] | offset u32 | stored length
// u32 | raw length u32 | encoding u8 (0 raw, 1 zstd). Footer: entry count
// u32 | "SPK1". The entries tile the block area exactly, in order, so the
// index can always be rebuilt from the packs alone (Repair). No entry is
// empty, so a footer claims at most one entry per byte of its pack; the
// entries are checked as they are read.
//
// Index object: "SPI1" | pack count u32 | per pack: pack id [32] | entry
// count u32 | entries as in a pack trailer. At most 65,536 entries per
// object (a pack of more spans objects), so readers hold one small
// object at a time: at most 5,308,424 bytes, which readers refuse to
// exceed, by the listed size before reading.
//
// Manifest: "SPM1" | version uvarint | parent flag u8 [+ id 32] | state,
// message, host, user, tool (uvarint length + bytes each) | created
// (varint ns) | label count + (key, value) strings | entry count | entries
// sorted by path. Entry: shared prefix length with the previous path
// (uvarint) | rest of the path | type u8 ('f', 'd', 'l') | mode, uid, gid
// (uvarint) | mtime (varint ns) | symlink: target | file: size, block
// count, then (block id [32], raw length uvarint) per block.
//
// Manifest version 2 (written only when a file has list blocks) puts a
// kind byte after a file's size: 0, the block list follows inline as in
// version 1; 1, a count of list blocks follows, then (list block id [32],
// raw length uvarint) per list block. A list block is an ordinary block
// whose raw bytes are (block id [32] | raw length u32 LE) entries: 32 per
// list block as written, at most 4,096 as read. Files of more than 32
// blocks use them, so an unchanged large file costs a manifest one id per
// 32 blocks, and a changed one adds only the list blocks around its
// changes. The list lengths a manifest names bound what it expands to
// before anything is read: at most 32 blocks per list reference in all,
// however often one list block is named (as statepack writes them), and
// per file at most one block per byte of its size and at least one per
// MaxBlockSize. A snapshot past 4 MiB is hashed as it streams before it
// is held.
//
// # Cutting files into blocks
//
// FastCDC (package chunker) with the config's min/avg/max, except, when
// sqlite_pages is set, for files that start with the SQLite 3 header:
// they are cut at fixed offsets into blocks of the smallest multiple of
// the database page size that is at least min, so a page rewritten in
// place changes one block and no other.
//
// Decoders treat every object as hostile (invariant 5): lengths and counts
// are bounded by the bytes that remain before anything is allocated,
// paths must be clean, relative, valid UTF-8 without NUL, strictly sorted,
// and every parent must be a directory entry of the same manifest, which
// rules out writing beneath a symlink the snapshot itself creates.
// Decompression is bounded by the recorded raw length. Refs and locks,
// the mutable objects, are read only up to MaxVersionedSize (4 MiB).
//
// # Write order
//
// packs → index → snapshot → ref (invariant 1). The directory backend
// writes every object to a temporary name and renames it; before a ref
// moves, everything it can point at is made durable (dirsync.go: the
// objects this process wrote, and one syncfs(2) when it relied on
// objects of others). Prune and repair run under the exclusive lock and
// make new packs and the new index durable before they delete anything.
//
// # The local stat cache
//
// Under the local store's cache/ directory, per DATA_DIR: the snapshot it
// was last saved as or restored from, and each file's size, mtime, ctime
// and inode with its blocks. Save skips files whose stat is unchanged,
// restore skips files already identical, status reports changes from it.
// Content read within the racy window of the file's last change is never
// trusted (invariant 7); save reads such files last, once the window has
// passed, so that what it just saved is trusted by the next operation.
//
// # Restore and the restore marker
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
package archive
