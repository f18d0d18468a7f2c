package saver

import (
	"encoding/binary"
	"testing"

	"github.com/statepack/statepack/archive/format"
)

func TestPageBlockSize(t *testing.T) {
	hdr := func(page uint16) []byte {
		b := append([]byte(SqliteMagic), 0, 0)
		binary.BigEndian.PutUint16(b[16:], page)
		return b
	}
	on := format.ChunkerConfig{Min: 16 << 10, Avg: 64 << 10, Max: 256 << 10, SQLitePages: true}
	off := on
	off.SQLitePages = false
	small := format.ChunkerConfig{Min: 6000, Avg: 8192, Max: 12000, SQLitePages: true}
	tests := []struct {
		name string
		hdr  []byte
		cc   format.ChunkerConfig
		want int
	}{
		{"4 KiB pages grouped to Min", hdr(4096), on, 16 << 10},
		{"512-byte pages", hdr(512), on, 16 << 10},
		{"32 KiB pages, one per block", hdr(32768), on, 32 << 10},
		{"64 KiB pages (encoded as 1)", hdr(1), on, 64 << 10},
		{"Min not a multiple of the page", hdr(4096), small, 8192},
		{"page larger than Max", hdr(16384), small, 0},
		{"repository made before page cutting", hdr(4096), off, 0},
		{"page size not a power of two", hdr(5000), on, 0},
		{"page size too small", hdr(256), on, 0},
		{"page size zero", hdr(0), on, 0},
		{"not SQLite", append([]byte("SQLite format 4\x00"), 0x10, 0), on, 0},
		{"short file", []byte(SqliteMagic), on, 0},
		{"empty file", nil, on, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PageBlockSize(tt.hdr, tt.cc); got != tt.want {
				t.Fatalf("pageBlockSize = %d, want %d", got, tt.want)
			}
		})
	}
}
