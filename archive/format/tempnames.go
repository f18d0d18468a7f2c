package format

import (
	"strings"
)

// RestoreTmpPrefix names files being written by restore; a crash leaves
// them behind, and the next restore removes them (package restorer).
// The full name is the prefix and 16 lowercase hex digits
// (files.RandomSuffix):
// only names of exactly that shape are restore's, so that a user's
// ".statepack-tmp-notes" is saved and restored like any file, never
// removed as a leftover, and a manifest may not name one (ValidPath).
const RestoreTmpPrefix = ".statepack-tmp-"

// IsRestoreTemp reports whether name has the shape of restore's
// temporary files.
func IsRestoreTemp(name string) bool {
	suffix, ok := strings.CutPrefix(name, RestoreTmpPrefix)
	if !ok || len(suffix) != 16 {
		return false
	}
	for _, c := range []byte(suffix) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
