package datagen

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"slices"
)

// Streams separate the random sequences drawn from one seed, so that adding a
// draw in one place never shifts the values drawn in another.
const (
	streamPlan    = 0x706c616e // the layout: names, sizes, modes, times
	streamContent = 0x636f6e74 // one file's bytes (mixed with the file's own seed)
	streamMutate  = 0x6d757461 // one Mutate step (mixed with the step)
)

// rng is a PCG generator with helpers that produce numbers, bytes and text
// in bulk, drawing 64 random bits at a time. Its methods call the PCG
// directly rather than through rand.Rand's Source interface: content
// generation draws a number every few bytes.
type rng struct {
	pcg *rand.PCG
}

// newRNG returns the generator of one stream of a seed.
func newRNG(seed, stream uint64) *rng {
	return &rng{pcg: rand.NewPCG(seed, stream)}
}

// Uint64 returns 64 random bits.
func (g *rng) Uint64() uint64 { return g.pcg.Uint64() }

// Int64N returns a random int64 in [0, n), n > 0, by Lemire's
// multiplication (without the rejection step: a bias below n/2^64 does not
// matter here, and determinism does not depend on it).
func (g *rng) Int64N(n int64) int64 {
	hi, _ := bits.Mul64(g.pcg.Uint64(), uint64(n))
	return int64(hi)
}

// IntN returns a random int in [0, n), n > 0.
func (g *rng) IntN(n int) int { return int(g.Int64N(int64(n))) }

// Perm returns a random permutation of [0, n).
func (g *rng) Perm(n int) []int {
	p := make([]int, n)
	for i := range p {
		j := g.IntN(i + 1)
		p[i], p[j] = p[j], i
	}
	return p
}

// fill overwrites p with random bytes.
func (g *rng) fill(p []byte) {
	for len(p) >= 8 {
		binary.LittleEndian.PutUint64(p, g.pcg.Uint64())
		p = p[8:]
	}
	if len(p) > 0 {
		var tail [8]byte
		binary.LittleEndian.PutUint64(tail[:], g.pcg.Uint64())
		copy(p, tail[:])
	}
}

// appendRandom appends n random bytes to b.
func (g *rng) appendRandom(b []byte, n int) []byte {
	b = slices.Grow(b, n)
	g.fill(b[len(b) : len(b)+n])
	return b[:len(b)+n]
}

const hexDigits = "0123456789abcdef"

// appendHex appends n random lowercase hex digits to b.
func (g *rng) appendHex(b []byte, n int) []byte {
	for n > 0 {
		v := g.pcg.Uint64()
		for i := 0; i < 16 && n > 0; i++ {
			b = append(b, hexDigits[v&15])
			v >>= 4
			n--
		}
	}
	return b
}

// appendUUID appends a random UUID in its 8-4-4-4-12 text form.
func (g *rng) appendUUID(b []byte) []byte {
	b = g.appendHex(b, 8)
	for _, n := range []int{4, 4, 4, 12} {
		b = append(b, '-')
		b = g.appendHex(b, n)
	}
	return b
}

// appendDigits appends a random decimal number of exactly n digits (leading
// zeros kept), as ids and account numbers look.
func (g *rng) appendDigits(b []byte, n int) []byte {
	for n > 0 {
		v := g.pcg.Uint64()
		for i := 0; i < 19 && n > 0; i++ {
			b = append(b, byte('0'+v%10))
			v /= 10
			n--
		}
	}
	return b
}

// pick returns a random element of list.
func pick[T any](g *rng, list []T) T {
	return list[g.IntN(len(list))]
}

// between returns a random int in [lo, hi].
func (g *rng) between(lo, hi int) int {
	return lo + g.IntN(hi-lo+1)
}
