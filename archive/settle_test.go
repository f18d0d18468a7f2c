package archive

import (
	"context"
	"slices"
	"testing"
	"time"
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
		{"read just past the window", now - racyWindow - 2*ms, now - racyWindow - 2*ms, now, true},
		{"read within the window", now - 50*ms, now - 50*ms, now, false},
		{"ctime within the window, mtime old", now - time.Hour.Nanoseconds(), now - 50*ms, now, false},
		{"changed after it was read", now + 5*ms, now + 5*ms, now, false},
		{"whole-second timestamps, 1 s old", (now/1e9 - 1) * 1e9, (now/1e9 - 1) * 1e9, now, false},
		{"whole-second timestamps, 3 s old", (now/1e9 - 3) * 1e9, (now/1e9 - 3) * 1e9, now, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			found := []scanned{
				{Entry: Entry{Path: "d", Type: TypeDir}},
				{Entry: Entry{Path: "d/f", Type: TypeFile, Size: 1, Blocks: []BlockRef{{Size: 1}}}, stat: fileStat{Size: 1, MTime: tt.mtime, CTime: tt.ctime, Ino: 7}, readAt: tt.readAt},
			}
			c := newStatCache("s", found, 1)
			_, got := c.Files["d/f"]
			if got != tt.want {
				t.Fatalf("recorded = %v, want %v", got, tt.want)
			}
			if got {
				if _, ok := c.fresh("d/f", found[1].stat); !ok {
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
	at := func(changed int64) scanned { return scanned{stat: fileStat{MTime: changed, CTime: changed}} }
	found := []scanned{
		at(now - time.Hour.Nanoseconds()), // 0
		at(now - 10*ms),                   // 1: racy
		at(now - time.Minute.Nanoseconds()),
		at(now - 60*ms), // 3: racy, settles first
		at(now - 5*time.Second.Nanoseconds()),
	}
	got := settleOrder(found, []int{0, 1, 2, 3, 4})
	if want := []int{0, 2, 4, 3, 1}; !slices.Equal(got, want) {
		t.Fatalf("settleOrder = %v, want %v", got, want)
	}
}

// TestWaitSettled: waits out what is left of a file's racy window, no
// more, never for a file changed far in the future, and stops when the
// context is cancelled.
func TestWaitSettled(t *testing.T) {
	now := time.Now().UnixNano()
	e := &scanned{stat: fileStat{MTime: now - 40*int64(time.Millisecond), CTime: now - 40*int64(time.Millisecond)}}
	start := time.Now()
	if err := waitSettled(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Fatalf("waited %v, want the rest of the window (about 60 ms)", waited)
	}
	if !settled(e.stat, time.Now().UnixNano()) {
		t.Fatal("not settled after waiting")
	}
	future := &scanned{stat: fileStat{MTime: now + time.Hour.Nanoseconds(), CTime: now}}
	start = time.Now()
	if err := waitSettled(context.Background(), future); err != nil || time.Since(start) > 50*time.Millisecond {
		t.Fatalf("waited %v for a file changed in the future: %v", time.Since(start), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	fresh := &scanned{stat: fileStat{MTime: time.Now().UnixNano(), CTime: time.Now().UnixNano()}}
	if err := waitSettled(ctx, fresh); err != context.Canceled {
		t.Fatalf("waitSettled after cancel = %v", err)
	}
}
