package archive

import (
	"strings"
	"testing"
)

func TestParseSpec(t *testing.T) {
	cases := []struct {
		in    string
		state string
		back  int
		bad   bool
	}{
		{"main", "main", 0, false},
		{"main~1", "main", 1, false},
		{"main~", "main", 1, false},
		{"main~12", "main", 12, false},
		{"main~-1", "", 0, true},
		{"main~x", "", 0, true},
		{"main~99999999999", "", 0, true},
	}
	for _, c := range cases {
		s, n, err := ParseSpec(c.in)
		if (err != nil) != c.bad || s != c.state || n != c.back {
			t.Errorf("ParseSpec(%q) = %q, %d, %v", c.in, s, n, err)
		}
	}
}

func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{"main", "main~1", "1a2b3c4d", "a~b~c", "~"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		state, back, err := ParseSpec(s)
		if err != nil {
			return
		}
		if back < 0 || !strings.HasPrefix(s, state) {
			t.Fatalf("ParseSpec(%q) = %q, %d", s, state, back)
		}
	})
}
