package saver

import (
	"slices"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/scan"
)

// storeLists gives every file of more than format.ListEntries blocks its list
// blocks, handing them to w (which skips those already stored, as it does
// for any block), and records them in the entry. A file whose blocks and
// lists both came from the stat cache keeps its lists (lists of the same
// blocks, their count checked): hashing them again is most of a no-op save.
func storeLists(found []scan.Scanned, w *archive.BlockWriter) error {
	var buf []byte
	for i := range found {
		e := &found[i].Entry
		if e.Type != format.TypeFile || len(e.Blocks) <= format.ListEntries {
			e.Lists = nil
			continue
		}
		if format.ListsCover(e.Lists, len(e.Blocks)) {
			continue
		}
		e.Lists = make([]format.BlockRef, 0, (len(e.Blocks)+format.ListEntries-1)/format.ListEntries)
		for part := range slices.Chunk(e.Blocks, format.ListEntries) {
			buf = format.EncodeList(buf[:0], part)
			id := w.BlockID(buf)
			if _, err := w.Add(id, buf); err != nil {
				return err
			}
			e.Lists = append(e.Lists, format.BlockRef{ID: id, Size: uint32(len(buf))})
		}
	}
	return nil
}
