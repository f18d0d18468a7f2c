package remote

import (
	"testing"
	"time"
)

// TestRetryDelay: waits double from BaseDelay up to MaxDelay, each
// jittered within the upper half of its step.
func TestRetryDelay(t *testing.T) {
	p := RetryPolicy{BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second}
	steps := []time.Duration{100, 200, 400, 800, 1000, 1000, 1000}
	for i, step := range steps {
		step *= time.Millisecond
		for range 100 {
			if d := p.delay(i + 1); d < step/2 || d > step {
				t.Fatalf("delay after attempt %d = %v, want within [%v, %v]", i+1, d, step/2, step)
			}
		}
	}
	if d := (RetryPolicy{}).delay(3); d != 0 {
		t.Errorf("zero policy waits %v", d)
	}
	if d := (RetryPolicy{BaseDelay: time.Hour, MaxDelay: time.Hour}).delay(100); d > time.Hour {
		t.Errorf("capped delay %v exceeds MaxDelay", d)
	}
}
