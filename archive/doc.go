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
//	                       (below); id = its tables hash
//	lookup/<tablesid>.filter  the table's Bloom filter (below)
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
//
// # The lookup cache of a remote's index
//
// Push and pull ask a remote's index which of a snapshot's blocks it
// holds (FindBlocks). On a remote of millions of blocks, reading every
// index object for that costs more than the push itself, so a remote
// opened with a cache directory (remote.WithIndexCache: the store's
// cache/remote-<hash of its URL>/) keeps the whole index there in one
// file, index.lookup, sorted by block id. Not part of the repository
// format: local, rebuilt whenever in doubt. All integers little endian.
//
//	header (80 bytes)  "SPL1" | covered objects u32 | packs u32 |
//	                   entries u32 | BLAKE3("statepack lookup cache\0" +
//	                   repository id) [32] | tables hash [32]
//	objects            the ids of the index objects covered [32 each],
//	                   strictly increasing
//	packs              pack ids [32 each], by pack number
//	fanout             65,536 buckets, one per value of a block id's first
//	                   two bytes: end u32 (entries up to and including the
//	                   bucket) | XXH3-128 of the bucket's entries, seeded
//	                   with the bucket number [16]
//	entries            49 bytes each, sorted by block id, one per id:
//	                   block id [32] | pack number u32 | offset u32 |
//	                   stored u32 | raw u32 | encoding u8
//
// The tables hash is the BLAKE3 of the header's first 48 bytes, the
// objects, the packs and the fanout. Opening reads and checks those
// (2.5 MiB for 10 million blocks in 40,000 packs), after bounding
// every count and checking that the file's size is exactly what the
// header implies; a lookup then reads one bucket (about 150 entries),
// checks its sum and binary-searches it. A file that fails any check,
// was made for another repository, or covers an index object that is no
// longer listed (prune and repair rewrite the index) is removed and
// rebuilt from the index objects: never trusted, since a wrong "the
// remote has this block" would make push skip it (invariant 1). The
// sums guard against damage, not against someone who can write the
// store, who could write anything.
//
// FindBlocks lists index/ every time (a listing cut short by the context
// is an error). Objects the cache does not cover are read, verified, and
// kept as copies under pending/ until they are merged into a new cache
// file: when they number more than 256, or hold (by their listed sizes)
// more than a million entries or an eighth of the cache's. Index objects
// the repository writes itself go straight to pending/. Building reads
// the objects four at a time, partitions their entries by first id byte
// in memory and, past 16 MiB, in one temporary spill file, then sorts
// and writes one partition at a time while two workers sort the next: a
// push that builds the cache of 10 million blocks peaks under 150 MiB.
// An index over the bounds (more than 2^21 objects plus packs, a million
// entries sharing a first byte, 65,536 sharing a bucket: only a hostile
// writer skews ids that way) gets no cache and is scanned as without
// one.
//
// Of several locations of one block, the cache keeps the first: the one
// from the earliest index object in the order the cache learnt them
// (by name when built, merged objects after), the earliest within it.
// FindBlocks without a cache returns the first in name order, so both
// agree until a merge adds an object that sorts before a covered one.
// Any of the locations is valid; reading a block verifies it anyway.
// Entries that fail the index's own checks are never cached; asked for
// while their object is read, they are an error naming it.
//
// # Lookup tables on a repository
//
// A remote may carry lookup/<id>: a lookup cache file as above, byte for
// byte, uploaded by a client that holds one (PublishLookupTable), where
// id is the file's tables hash (header bytes 48-80). It lets a client
// with no cache of its own (a fresh CI runner) answer FindBlocks without
// reading the whole index: it lists lookup/, reads the largest table's
// header, then its tables (two ranged reads; counts bounded first, and
// covered objects, packs and entries at most what the listed index
// holds), checks them as a cache file's
// and the name against the tables hash, checks that every object the
// table covers is still listed, and then reads only the buckets holding
// wanted ids that the table's filter lets through (neighbours under
// 256 KiB apart coalesced, up to 4 MiB a read, 8 reads at a time), each
// checked against its fanout sum. The listed index objects the table
// does not cover are read in full.
//
// The filter, lookup/<tablesid>.filter, read in one GET while the tables
// are, is a Bloom filter of the table's block ids (all little endian):
//
//	"SPF1" | k u32 | m u64 (bits) | table id [32] | bits [m/8] |
//	BLAKE3 of everything before [32]
//
// Bit i is bits[i/8]>>(i%8)&1; an id sets bits (h1 + j*h2) mod m for
// j < k, where h1 and h2|1 are its bytes 0-8 and 8-16. Written with 10
// bits per block and k = 7 (under 1% false positives). It only rules
// ids out, so a wrong filter can make push send a block twice, never
// skip one; one that fails its checks (size bounded by its table's
// entries, hash, table id, k and m) is done without. A
// table that fails any check, is stale (it covers an object no longer
// listed: prune or repair rewrote the index, and it may name deleted
// packs), is due for a merge (it leaves uncovered what a cache would
// merge), or vanishes while read (a publisher replaced it) is not used:
// FindBlocks reads the index as without it, so a table never makes push
// skip a block (invariant 1). A reader that finds a bucket damaged notes
// it in its cache directory (lookup-damaged), so that its next publish
// rewrites that table. The cold client builds no cache of its own.
//
// Push publishes after its ref moved, under its shared lock (prune and
// repair, which delete every table once they replace index objects, take
// the exclusive one): when its cache covers only listed objects, is not
// due for a merge itself, and no table on the repository serves (one
// without a filter does not). It uploads the filter, then the file
// (atomic on both backends), then deletes the tables and filters it
// listed before. Tables are used and published only for an index of at
// least DefaultLookupTableMin bytes by listed size: below that, reading
// the index is cheaper than a table's fixed 1.25 MiB fanout.
package archive
