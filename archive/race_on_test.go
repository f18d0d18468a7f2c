//go:build race

package archive_test

// raceEnabled: the tests run under the race detector, which makes the
// heaviest of them take minutes (see skipUnderRace).
const raceEnabled = true
