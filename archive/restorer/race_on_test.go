//go:build race

package restorer

// raceDetector: the race detector drops a quarter of sync.Pool puts on
// purpose, so tests that count what a path allocates over its pooled
// buffers measure the detector, not the code, when it is on.
const raceDetector = true
