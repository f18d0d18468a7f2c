// Package suggest finds, for a name the user mistyped, the known name they
// most likely meant ("did you mean 'main'?"): commands, states. It holds
// no knowledge of either, and imports nothing of the project.
package suggest

// Closest returns the candidate nearest to name by edit distance, when it
// is near enough to be a typo (at most a third of the name's length, and
// at most 3 edits), or "" when none is, or when name is itself one.
func Closest(name string, candidates []string) string {
	if name == "" {
		return ""
	}
	best, bestD := "", min(3, max(1, len([]rune(name))/3))+1
	for _, c := range candidates {
		if c == name {
			return ""
		}
		if d := distance(name, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b, by runes, with a
// transposition of two neighbours counted as one edit ("mian", "main").
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
