// Package torture attacks statepack the way the world does, through the
// real binary: it kills commands with SIGKILL at seeded random moments
// (crash anywhere), interrupts them with SIGINT (Ctrl-C), fills the disk
// under a store, and takes write permission away, and after each attack
// checks DESIGN.md's invariants: the store and the remote verify, every
// ref resolves to a complete snapshot, running the command again finishes
// the work, and an interrupted restore is reported and then completed
// exactly.
//
// Everything lives in the tests. `make test` runs a short form; `make
// torture` sets STATEPACK_TORTURE=N for N kill points per command and
// backend:
//
//	STATEPACK_TORTURE=50 go test -count=1 -timeout 60m -run Torture ./internal/torture
//
// Environment:
//
//	STATEPACK_TORTURE         kill points per command and backend (default 8)
//	STATEPACK_TORTURE_SEED    replay a run: the seed it logged
//	STATEPACK_TORTURE_MB      size of the generated DATA_DIR in MiB
//	STATEPACK_TORTURE_REPORT  write the results as JSON to this file
package torture
