// Package lookup finds blocks in a repository's index: given the ids a
// push or pull asks about, it returns where the repository holds those it
// has (Finder.FindBlocks), reading as little of the index as it can. On a
// remote of millions of blocks, reading every index object for that costs
// more than the push itself.
//
// It owns three ways of answering, and everything they store:
//
//   - the index objects themselves, listed and read a few at a time, of
//     which only the entries asked for are kept (find.go);
//   - the lookup cache: a local, sorted, verified copy of a remote's
//     whole index in one file of the local store's cache, with copies of
//     the index objects it does not cover yet (cache.go);
//   - lookup tables: that file published on the repository as
//     lookup/<id>, with a Bloom filter beside it, which a client without
//     a cache of its own reads with a few ranged requests (table.go,
//     filter.go).
//
// Package lookup sits below package archive: an archive.Repository holds a
// Finder, hands its FindBlocks and lookup-table methods to it, and gives
// it a Reader, so that index objects are read with the repository's own
// bounds and checks. It must not import archive, nor anything that
// imports archive (save, restore, maintenance, remotes, the CLI); it
// builds on archive/format (ids, index objects) and remote/backend (the
// objects) only.
//
// Caches and tables are accelerators, never the truth: the index objects
// are. A cache or table that fails any check is not used, and the answer
// comes from the index objects, because a wrong "the remote has this
// block" would make push skip it and leave a snapshot pointing at a
// missing block (invariant 1). The sums guard against damage, not against
// someone who can write the store, who could write anything.
//
// # The lookup cache
//
// A remote opened with a cache directory (remote.WithIndexCache: the
// store's cache/remote-<hash of its URL>/) keeps its whole index there in
// one file, index.lookup, sorted by block id. It is not part of the
// repository format: local, rebuilt whenever in doubt. All integers
// little endian.
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
// (2.5 MiB for 10 million blocks in 40,000 packs), after bounding every
// count and checking that the file's size is exactly what the header
// implies; a lookup then reads one bucket (about 150 entries), checks its
// sum and binary-searches it. A file that fails any check, was made for
// another repository, or covers an index object that is no longer listed
// (prune and repair rewrite the index) is removed and rebuilt from the
// index objects.
//
// FindBlocks lists index/ every time (a listing cut short by the context
// is an error). Objects the cache does not cover are read, verified, and
// kept as copies under pending/ until they are merged into a new cache
// file: when they number more than 256, or hold (by their listed sizes)
// more than a million entries or an eighth of the cache's. Index objects
// the repository writes itself go straight to pending/
// (Finder.KeepIndexCopy). Building reads the objects four at a time,
// partitions their entries by first id byte in memory and, past 16 MiB,
// in one temporary spill file, then sorts and writes one partition at a
// time while two workers sort the next: a push that builds the cache of
// 10 million blocks peaks under 150 MiB. An index over the bounds (more
// than 2^21 objects plus packs, a million entries sharing a first byte,
// 65,536 sharing a bucket: only a hostile writer skews ids that way) gets
// no cache and is scanned as without one.
//
// Of several locations of one block, the cache keeps the first: the one
// from the earliest index object in the order the cache learnt them (by
// name when built, merged objects after), the earliest within it.
// FindBlocks without a cache returns the first in name order, so both
// agree until a merge adds an object that sorts before a covered one. Any
// of the locations is valid; reading a block verifies it anyway. Entries
// that fail the index's own checks are never cached; asked for while
// their object is read, they are an error naming it.
//
// # Lookup tables on a repository
//
// A repository may carry lookup/<id>: a lookup cache file as above, byte
// for byte, uploaded by a client that holds one (PublishLookupTable),
// where id is the file's tables hash (header bytes 48-80). It lets a
// client with no cache of its own (a fresh CI runner) answer FindBlocks
// without reading the whole index: it lists lookup/, reads the largest
// table's header, then its tables (two ranged reads; counts bounded first,
// and covered objects, packs and entries at most what the listed index
// holds), checks them as a cache file's and the name against the tables
// hash, checks that every object the table covers is still listed, and
// then reads only the buckets holding wanted ids that the table's filter
// lets through (neighbours under 256 KiB apart coalesced, up to 4 MiB a
// read, 8 reads at a time), each checked against its fanout sum. The
// listed index objects the table does not cover are read in full. The
// cold client builds no cache of its own.
//
// The filter, lookup/<tablesid>.filter, read while the table's tables are
// (in one GET, or in parallel ranged reads past 2 MiB), is a Bloom filter
// of the table's block ids (all little endian):
//
//	"SPF1" | k u32 | m u64 (bits) | table id [32] | bits [m/8] |
//	BLAKE3 of everything before [32]
//
// Bit i is bits[i/8]>>(i%8)&1; an id sets bits (h1 + j*h2) mod m for
// j < k, where h1 and h2|1 are its bytes 0-8 and 8-16. Written with 10
// bits per block and k = 7 (under 1% false positives). It only rules ids
// out, so a wrong filter can make push send a block twice, never skip
// one; one that fails its checks (size bounded by its table's entries,
// hash, table id, k and m) is done without.
//
// A table that fails any check, is stale (it covers an object no longer
// listed: prune or repair rewrote the index, and it may name deleted
// packs), is due for a merge (it leaves uncovered what a cache would
// merge), or vanishes while read (a publisher replaced it) is not used:
// FindBlocks reads the index as without it. A reader that finds a bucket
// damaged notes it in its cache directory (lookup-damaged), so that its
// next publish rewrites that table.
//
// Push publishes after its ref moved, under its shared lock (prune and
// repair, which delete every table once they replace index objects, take
// the exclusive one): when its cache covers only listed objects, is not
// due for a merge itself, and no table on the repository serves (one
// without a filter does not). It uploads the filter, then the file
// (atomic on both backends), then deletes the tables and filters it
// listed before. Tables are used and published only for an index of at
// least DefaultTableMin bytes by listed size: below that, reading the
// index is cheaper than a table's fixed 1.25 MiB fanout.
package lookup
