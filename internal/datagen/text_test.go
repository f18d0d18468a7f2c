package datagen

import (
	"testing"
	"time"
)

func TestISOClock(t *testing.T) {
	day := baseTime.UnixMilli()
	tests := []struct {
		name string
		ms   []int64 // formatted in turn by one clock
	}{
		{"epoch", []int64{0}},
		{"within a day", []int64{day + 123, day + 13*3600_000 + 61_007, day + 86_399_999}},
		{"across days", []int64{day - 1, day, day + 86_400_000 + 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c isoClock
			for _, ms := range tt.ms {
				want := time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
				if got := string(c.append(nil, ms)); got != want {
					t.Errorf("%d: %s, want %s", ms, got, want)
				}
			}
		})
	}
}

func TestAppendPad(t *testing.T) {
	tests := []struct {
		v     int64
		width int
		want  string
	}{
		{7, 3, "007"},
		{1234, 2, "1234"},
		{0, 1, "0"},
		{42, 51, "000000000000000000000000000000000000000000000000042"},
	}
	for _, tt := range tests {
		if got := string(appendPad(nil, tt.v, tt.width)); got != tt.want {
			t.Errorf("appendPad(%d, %d) = %q, want %q", tt.v, tt.width, got, tt.want)
		}
	}
}
