//go:build !race

package archive

// raceDetector: see race_internal_on_test.go.
const RaceDetector = false
