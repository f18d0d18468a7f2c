package benchutil

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Table is a text table whose first Left columns are aligned left and the
// rest, the numbers, right.
type Table struct {
	Header []string
	Rows   [][]string
	Left   int
}

// Fprint writes the table with columns padded to their widest cell and a
// rule under the header.
func (t *Table) Fprint(w io.Writer) error {
	width := make([]int, len(t.Header))
	for _, r := range append([][]string{t.Header}, t.Rows...) {
		for i, c := range r {
			if i < len(width) {
				width[i] = max(width[i], utf8.RuneCountInString(c))
			}
		}
	}
	rule := make([]string, len(width))
	for i, n := range width {
		rule[i] = strings.Repeat("-", n)
	}
	for _, r := range append([][]string{t.Header, rule}, t.Rows...) {
		if _, err := fmt.Fprintln(w, t.line(r, width)); err != nil {
			return err
		}
	}
	return nil
}

// line pads the cells of one row.
func (t *Table) line(r []string, width []int) string {
	cells := make([]string, len(width))
	for i := range width {
		c := ""
		if i < len(r) {
			c = r[i]
		}
		pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
		if i < t.Left {
			cells[i] = c + pad
		} else {
			cells[i] = pad + c
		}
	}
	return strings.TrimRight(strings.Join(cells, "  "), " ")
}
