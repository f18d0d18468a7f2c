package chunker

import (
	"fmt"
	"math/bits"
)

const (
	// minMin is the smallest Min accepted. Below the 64-byte window of the
	// gear hash, chunks would be cut before the hash has seen a full window,
	// and per-block bookkeeping would dwarf the data anyway.
	minMin = 64

	// maxMax is the largest Max accepted. It bounds the Chunker's buffer,
	// and the largest block any repository will hold, so that a config read
	// from an untrusted remote cannot make a reader allocate without limit.
	maxMax = 64 << 20
)

// Params are the chunk size bounds in bytes.
//
// Every chunk but the last of a stream is at least Min and at most Max bytes
// long; the sizes cluster around Avg. Because nothing is cut before Min, the
// mean is somewhat above Avg: about 1.15*Avg on random data with
// Min = Avg/4 and Max = 4*Avg, as TestAverageSize shows. Params are part of a repository's
// config: the same Params must be used for every save into a repository, or
// unchanged data will cut differently and stop deduplicating.
type Params struct{ Min, Avg, Max int }

// DefaultParams returns the parameters a new repository gets: Min 16 KiB,
// Avg 64 KiB, Max 256 KiB. 64 KiB averages keep the index of a multi-GiB
// state small while still deduplicating the page-sized edits that databases
// such as SQLite make.
func DefaultParams() Params {
	return Params{Min: 16 << 10, Avg: 64 << 10, Max: 256 << 10}
}

// Validate reports whether p can be used to cut chunks. It requires
// 64 <= Min < Avg < Max <= 64 MiB, and Avg a power of two, because the cut
// masks are derived from log2(Avg). Params come from a repository's config,
// which may come from a remote, so they are checked before any buffer is
// sized from them.
func (p Params) Validate() error {
	switch {
	case p.Min < minMin:
		return fmt.Errorf("chunker: invalid params: minimum size %d is below %d", p.Min, minMin)
	case p.Max > maxMax:
		return fmt.Errorf("chunker: invalid params: maximum size %d is above %d (64 MiB)", p.Max, maxMax)
	case p.Avg <= p.Min:
		return fmt.Errorf("chunker: invalid params: average size %d must be greater than minimum size %d", p.Avg, p.Min)
	case p.Max <= p.Avg:
		return fmt.Errorf("chunker: invalid params: maximum size %d must be greater than average size %d", p.Max, p.Avg)
	case p.Avg&(p.Avg-1) != 0:
		return fmt.Errorf("chunker: invalid params: average size %d is not a power of two", p.Avg)
	}
	return nil
}

// String formats p the way error messages and tools show it.
func (p Params) String() string {
	return fmt.Sprintf("min=%d avg=%d max=%d", p.Min, p.Avg, p.Max)
}

// masks returns the hard and easy cut masks for p (normalization level 2):
// maskS has log2(Avg)+2 one bits and maskL log2(Avg)-2, both the top bits of
// the hash. p must be valid, so 7 <= log2(Avg) <= 25 and both counts are in
// range.
func (p Params) masks() (maskS, maskL uint64) {
	b := bits.TrailingZeros64(uint64(p.Avg))
	return topBits(b + 2), topBits(b - 2)
}

// topBits returns a mask with the n highest bits set.
func topBits(n int) uint64 {
	return ^uint64(0) << (64 - n)
}
