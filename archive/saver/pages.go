package saver

import (
	"encoding/binary"
	"io"

	"github.com/statepack/statepack/archive/format"
)

// SQLite databases are arrays of fixed-size pages that a write transaction
// rewrites in place: a few pages scattered over the file, plus the header
// page. Content-defined chunking puts each such page into a block of about
// Avg (64 KiB), so every 4 KiB page written costs a new 64 KiB block. Cut
// at page boundaries instead, into blocks of the chunker's Min (16 KiB,
// four pages), a save stores about what the transaction wrote while no
// block is smaller than the chunker promises: the index, the block lists
// and the per-block work grow no faster than Min allows. (Blocks of one
// 4 KiB page would store a third less per change but cost 10% more store
// and 20% more CPU on a cold save: docs/performance.md.)

// SqliteMagic starts every SQLite 3 database file.
const SqliteMagic = "SQLite format 3\x00"

// sqliteHeaderLen is how much of a file PageBlockSize looks at.
const sqliteHeaderLen = 18

// PageBlockSize returns the block size for a file beginning with hdr: for
// an SQLite database, when the repository cuts those by page, the smallest
// multiple of its page size that is at least the chunker's Min; else 0
// (cut by content).
func PageBlockSize(hdr []byte, cc format.ChunkerConfig) int {
	if !cc.SQLitePages || len(hdr) < sqliteHeaderLen || string(hdr[:len(SqliteMagic)]) != SqliteMagic {
		return 0
	}
	page := int(binary.BigEndian.Uint16(hdr[16:18]))
	if page == 1 {
		page = 65536 // the header's encoding of the largest page size
	}
	if page < 512 || page > 65536 || page&(page-1) != 0 {
		return 0 // not a valid database header: cut by content
	}
	size := (max(cc.Min, page) + page - 1) / page * page
	if size > cc.Max {
		return 0
	}
	return size
}

// readHeader reads the first bytes of f for PageBlockSize; a short file
// gives a short header.
func readHeader(f io.ReaderAt, buf []byte) []byte {
	n, _ := f.ReadAt(buf[:sqliteHeaderLen], 0)
	return buf[:n]
}
