package output

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Table writes rows as aligned columns separated by two spaces. Every cell
// passes through Safe, so a cell from a repository can neither drive the
// terminal nor break the table with a tab or a newline.
type Table struct {
	tw *tabwriter.Writer
}

// NewTable starts a table on w with the given header (no header when
// empty).
func NewTable(w io.Writer, header ...string) *Table {
	t := &Table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	if len(header) > 0 {
		t.Row(header...)
	}
	return t
}

// Row adds one row.
func (t *Table) Row(cells ...string) {
	for i, c := range cells {
		cells[i] = Safe(c)
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

// Flush writes the table out.
func (t *Table) Flush() error { return t.tw.Flush() }
