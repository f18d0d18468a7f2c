// Package attack holds the tests that attack statepack's invariants from
// outside, through the real binary and the public API: a hostile remote
// (crafted objects on a directory remote and on MinIO), network faults
// between statepack and MinIO (through internal/faultnet), and concurrent
// processes sharing one store or one bucket. The package has no code of
// its own; see the _test.go files.
//
// `make test` runs the short form. `make torture` sets STATEPACK_TORTURE
// to a count and runs the TestTorture... variants with that many rounds.
// Every random choice follows from one seed, logged at the start;
// STATEPACK_TORTURE_SEED replays it.
package attack
