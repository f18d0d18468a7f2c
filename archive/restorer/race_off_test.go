//go:build !race

package restorer

// raceDetector: see race_internal_on_test.go.
const raceDetector = false
