package archive_test

import "github.com/statepack/statepack/internal/repotest"

// The helpers that the tests of archive's packages share (internal/repotest).
var (
	testRepo = repotest.Repo
	save     = repotest.Save
	restore  = repotest.Restore

	randomBlock = repotest.RandomBlock
)
