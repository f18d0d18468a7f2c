// Package format holds the repository's byte encodings: ids and object
// names, the config object, packs (builder, trailer, entries), index
// objects, manifests, list blocks, the decoding and verifying of stored
// blocks, and the shape of restore's temporary file names. The layouts
// are below.
//
// Everything here is a pure function of bytes: no file, no backend, no
// clock. Every reader of the repository, local or remote, trusted or not,
// decodes through this one package, so a format rule (a bound checked
// before allocation, a path refused, an id verified) is written once, and
// its decoders are fuzzed here. Decoders treat their input as hostile
// (invariant 5).
//
// It imports no other statepack package but chunker (whose parameters
// the config records): not archive or any of its other packages, not
// remote or remote/backend, not internal/files. Everything else that
// reads or writes the format imports it.
//
// # Repository format, version 1
//
// All ids are lowercase hex of BLAKE3-256. An object's id is the hash of
// its bytes, so whoever reads an object can verify it.
//
//	config                 JSON: version, repository id, chunker min/avg/max
//	                       and sqlite_pages, pack size target (older
//	                       configs also carry a zstd level, ignored)
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
package format
