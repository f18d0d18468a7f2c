package suggest

import "testing"

func TestClosest(t *testing.T) {
	for _, tc := range []struct {
		name       string
		candidates []string
		want       string
	}{
		{"mian", []string{"main", "dev"}, "main"},
		{"restor", []string{"restore", "save", "status"}, "restore"},
		{"stauts", []string{"restore", "save", "status"}, "status"},
		{"main", []string{"main", "mains"}, ""},
		{"x", []string{"main"}, ""},
		{"frobnicate", []string{"init", "save", "restore"}, ""},
		{"pr-1243", []string{"pr-1234", "main"}, "pr-1234"},
		{"", []string{"a"}, ""},
		{"ünicode", []string{"unicode"}, "unicode"},
	} {
		if got := Closest(tc.name, tc.candidates); got != tc.want {
			t.Errorf("Closest(%q, %q) = %q, want %q", tc.name, tc.candidates, got, tc.want)
		}
	}
}
