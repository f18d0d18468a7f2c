package datadir

import "testing"

// TestFlockHolderIn reads the holder of a DATA_DIR lock from /proc/locks.
func TestFlockHolderIn(t *testing.T) {
	locks := "1: POSIX  ADVISORY  WRITE 77 08:01:1234 0 EOF\n" +
		"2: FLOCK  ADVISORY  WRITE 4242 08:01:1234 0 EOF\n" +
		"2: -> FLOCK  ADVISORY  WRITE 99 08:01:1234 0 EOF\n" +
		"3: FLOCK  ADVISORY  WRITE 55 08:01:999 0 EOF\n"
	dev := uint64(8<<8 | 1)
	for _, tc := range []struct {
		ino  uint64
		want int
	}{{1234, 4242}, {999, 55}, {1, 0}} {
		if got := FlockHolderIn(locks, dev, tc.ino); got != tc.want {
			t.Errorf("inode %d: holder %d, want %d", tc.ino, got, tc.want)
		}
	}
}
