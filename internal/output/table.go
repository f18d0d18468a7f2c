package output

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Table writes rows as aligned columns separated by two spaces. Cells must
// not contain tabs or newlines; Table replaces them with spaces.
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

var cellCleaner = strings.NewReplacer("\t", " ", "\n", " ", "\r", " ")

// Row adds one row.
func (t *Table) Row(cells ...string) {
	for i, c := range cells {
		cells[i] = cellCleaner.Replace(c)
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

// Flush writes the table out.
func (t *Table) Flush() error { return t.tw.Flush() }
