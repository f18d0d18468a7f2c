package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/restorer"
	"github.com/statepack/statepack/internal/output"
	"github.com/statepack/statepack/remote/backend"
)

// TestRestoreErrorKeepsHintAndNamesBackup: a restore that ran out of space
// after saving DATA_DIR's content says both what to do about the space
// and where that content is, in one message (issue 15, item 8).
func TestRestoreErrorKeepsHintAndNamesBackup(t *testing.T) {
	s := &session{cmdName: "restore"}
	id, _ := format.ParseID(strings.Repeat("1a2b3c4d", 8))
	err := &restorer.RestoreError{Err: fmt.Errorf("restore a: %w", backend.ErrNoSpace), State: restorer.DefaultBackupState, Backup: id}
	f := s.classify(err)
	for _, want := range []string{"free some space there", "DATA_DIR's previous content is saved as restore-backup 1a2b3c4d: `statepack restore 1a2b3c4d` brings it back"} {
		if !strings.Contains(f.why, want) {
			t.Errorf("message %q does not say %q", f.why, want)
		}
	}
	if f.code != output.CodeNoSpace || f.exit != exitFailure {
		t.Errorf("code %s exit %d, want %s 1", f.code, f.exit, output.CodeNoSpace)
	}
}
