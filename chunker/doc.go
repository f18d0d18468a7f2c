// Package chunker cuts a byte stream into content-defined chunks with
// FastCDC and normalized chunking (Xia et al., "The Design of Fast
// Content-Defined Chunking for Data Deduplication Based Storage Systems",
// IEEE TPDS 2020).
//
// Content-defined boundaries are what make deduplication survive edits: a
// boundary depends only on the bytes just before it, so inserting or deleting
// bytes in a file moves the boundaries near the edit and leaves every other
// chunk, and so every other block, exactly as it was.
//
// # Algorithm
//
// A gear hash rolls over the input one byte at a time:
//
//	fp = fp<<1 + gear[b]
//
// Because of the shift, a byte's contribution leaves the 64-bit hash after 64
// more bytes, so fp is a function of the last 64 bytes only; that window is
// what makes boundaries resynchronise after an edit. A boundary is declared
// after the byte at which fp&mask == 0.
//
// Each chunk is searched as follows, with lengths measured from the chunk's
// start:
//
//   - The first Min bytes are skipped without hashing (cut-point skipping):
//     no chunk is shorter than Min, so there is nothing to look for there,
//     and skipping them is a large part of FastCDC's speed. The hash starts
//     from zero at offset Min.
//   - Up to Avg bytes, the hard mask maskS is used: it has log2(Avg)+2 one
//     bits, so a cut is four times less likely than 1/Avg per byte.
//   - From Avg bytes on, the easy mask maskL is used: log2(Avg)-2 one bits,
//     four times more likely than 1/Avg.
//   - At Max bytes the chunk is cut unconditionally.
//
// The two masks are normalized chunking at level 2: they squeeze the chunk
// size distribution around Avg, so fewer chunks are tiny (poor dedup
// bookkeeping) or hit Max (poor resynchronisation), while the mean stays close
// to Avg.
//
// The one bits of both masks are the top bits of the 64-bit hash rather than
// the bits spread over the word that the paper lists. The gear hash shifts
// left, so the high bits are the ones that depend on the most input bytes
// (bit k depends on the last k+1 bytes); the low bits depend on only the last
// few bytes and would make boundaries depend on too short a window. The top
// bits give every mask the longest window a 64-bit gear hash has, which is
// the common practice in gear-based chunkers and is exactly as random as the
// paper's spread masks.
//
// # Gear table
//
// The 256 gear values are the first 256 outputs of splitmix64 seeded with
// 0x7374617465706b31 (the ASCII bytes "statepk1"). Deriving the table from a
// documented seed, rather than pasting 256 opaque constants, lets anyone
// reproduce it, and a test pins its digest.
//
// # Format
//
// Chunk boundaries are part of repository format version 1: blocks are
// addressed by the hash of their bytes, so if the same input were cut
// differently, nothing already stored would deduplicate against it. The gear
// seed, the mask derivation, the skipping and the cut rule above must never
// change within format 1; the golden vectors in testdata/golden.json pin
// them, and a change there is a format change, not a test update. Params are
// recorded in the repository's config, so different repositories may use
// different bounds.
//
// # Parameters and memory
//
// Params holds Min, Avg and Max in bytes; DefaultParams is 16 KiB, 64 KiB and
// 256 KiB. A Chunker owns one buffer of Max+max(Max, 1 MiB) bytes, allocated
// by New and reused by Reset, so memory does not depend on the size of the
// input. The package does no I/O beyond reading the io.Reader it is given and
// knows nothing about how chunks are hashed or stored.
package chunker
