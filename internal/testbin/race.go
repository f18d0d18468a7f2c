//go:build race

package testbin

// raceEnabled: the tests run under the race detector, so the binary they
// run is built with it too, and a race it reports fails the test. Most of
// the concurrency of a save, a push or a pull runs only in the binary.
const raceEnabled = true
