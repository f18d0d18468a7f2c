package chunker

// gearSeed seeds the splitmix64 stream the gear table is drawn from: the
// ASCII bytes "statepk1". It is part of repository format 1; changing it
// changes every chunk boundary.
const gearSeed = 0x7374617465706b31

// gear maps each byte value to a pseudo-random 64-bit value for the rolling
// hash. It is a fixed-size array so that indexing it with a byte needs no
// bounds check in the hot loop.
var gear = newGear(gearSeed)

// newGear returns the first 256 outputs of splitmix64 from seed. splitmix64
// is chosen because it is tiny, fully specified, and its outputs pass
// BigCrush, so the table's bits are independent and uniform, which is what
// the cut probabilities of the masks assume.
func newGear(seed uint64) [256]uint64 {
	var t [256]uint64
	s := seed
	for i := range t {
		t[i] = splitmix64(&s)
	}
	return t
}

// splitmix64 advances *s and returns the next output (Steele, Lea and Flood,
// "Fast splittable pseudorandom number generators", 2014).
func splitmix64(s *uint64) uint64 {
	*s += 0x9e3779b97f4a7c15
	z := *s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
