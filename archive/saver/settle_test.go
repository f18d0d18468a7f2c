package saver

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/scan"
	"github.com/statepack/statepack/archive/statcache"
)

// TestNewStatCacheLeavesOutUnsettledReads: the stat cache vouches only for
// content read a whole racy window after the file's last change (or taken
// from the cache the save started with); a file read sooner is left out,
// so the next save or restore reads it again.
func TestNewStatCacheLeavesOutUnsettledReads(t *testing.T) {
	now := time.Now().UnixNano()
	ms := int64(time.Millisecond)
	tests := []struct {
		name   string
		mtime  int64
		ctime  int64
		readAt int64
		want   bool
	}{
		{"from the cache, not read", now - time.Second.Nanoseconds(), now - time.Second.Nanoseconds(), 0, true},
		{"read long after its change", now - time.Hour.Nanoseconds(), now - time.Hour.Nanoseconds(), now, true},
		{"read just past the window", now - statcache.RacyWindow - 2*ms, now - statcache.RacyWindow - 2*ms, now, true},
		{"read within the window", now - 50*ms, now - 50*ms, now, false},
		{"ctime within the window, mtime old", now - time.Hour.Nanoseconds(), now - 50*ms, now, false},
		{"changed after it was read", now + 5*ms, now + 5*ms, now, false},
		{"whole-second timestamps, 1 s old", (now/1e9 - 1) * 1e9, (now/1e9 - 1) * 1e9, now, false},
		{"whole-second timestamps, 3 s old", (now/1e9 - 3) * 1e9, (now/1e9 - 3) * 1e9, now, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			found := []scan.Scanned{
				{Entry: format.Entry{Path: "d", Type: format.TypeDir}},
				{Entry: format.Entry{Path: "d/f", Type: format.TypeFile, Size: 1, Blocks: []format.BlockRef{{Size: 1}}}, Stat: scan.FileStat{Size: 1, MTime: tt.mtime, CTime: tt.ctime, Ino: 7}, ReadAt: tt.readAt},
			}
			c := NewStatCache("s", found, 1)
			_, got := c.Files["d/f"]
			if got != tt.want {
				t.Fatalf("recorded = %v, want %v", got, tt.want)
			}
			if got {
				if _, ok := c.Fresh("d/f", found[1].Stat); !ok {
					t.Fatal("recorded but not fresh for the same stat")
				}
			}
		})
	}
}

// TestSettleOrder: files changed within the racy window are read last,
// the most recently changed at the end; the others keep their order.
func TestSettleOrder(t *testing.T) {
	now := time.Now().UnixNano()
	ms := int64(time.Millisecond)
	at := func(changed int64) scan.Scanned {
		return scan.Scanned{Stat: scan.FileStat{MTime: changed, CTime: changed}}
	}
	found := []scan.Scanned{
		at(now - time.Hour.Nanoseconds()), // 0
		at(now - 10*ms),                   // 1: racy
		at(now - time.Minute.Nanoseconds()),
		at(now - 60*ms), // 3: racy, settles first
		at(now - 5*time.Second.Nanoseconds()),
	}
	got := SettleOrder(found, []int{0, 1, 2, 3, 4})
	if want := []int{0, 2, 4, 3, 1}; !slices.Equal(got, want) {
		t.Fatalf("settleOrder = %v, want %v", got, want)
	}
}

// TestWaitSettled: waits out what is left of a file's racy window, no
// more, never for a file changed far in the future, and stops when the
// context is cancelled.
func TestWaitSettled(t *testing.T) {
	now := time.Now().UnixNano()
	e := &scan.Scanned{Stat: scan.FileStat{MTime: now - 40*int64(time.Millisecond), CTime: now - 40*int64(time.Millisecond)}}
	start := time.Now()
	if err := WaitSettled(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Fatalf("waited %v, want the rest of the window (about 60 ms)", waited)
	}
	if !statcache.Settled(e.Stat, time.Now().UnixNano()) {
		t.Fatal("not settled after waiting")
	}
	future := &scan.Scanned{Stat: scan.FileStat{MTime: now + time.Hour.Nanoseconds(), CTime: now}}
	start = time.Now()
	if err := WaitSettled(context.Background(), future); err != nil || time.Since(start) > 50*time.Millisecond {
		t.Fatalf("waited %v for a file changed in the future: %v", time.Since(start), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	fresh := &scan.Scanned{Stat: scan.FileStat{MTime: time.Now().UnixNano(), CTime: time.Now().UnixNano()}}
	if err := WaitSettled(ctx, fresh); err != context.Canceled {
		t.Fatalf("waitSettled after cancel = %v", err)
	}
}
