package datadir_test

import "github.com/statepack/statepack/internal/repotest"

// The helpers that the tests of archive's packages share (internal/repotest).
var (
	testRepo = repotest.Repo
	save     = repotest.Save
	restore  = repotest.Restore
	must     = repotest.Must

	awkwardDir = repotest.AwkwardDir

	pastRacyWindow = repotest.PastRacyWindow
)
