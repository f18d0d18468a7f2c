package archive

import (
	"slices"
)

// storeLists gives every file of more than listEntries blocks its list
// blocks, handing them to w (which skips those already stored, as it does
// for any block), and records them in the entry. A file whose blocks and
// lists both came from the stat cache keeps its lists (lists of the same
// blocks, their count checked): hashing them again is most of a no-op save.
func storeLists(found []scanned, w *blockWriter) error {
	var buf []byte
	for i := range found {
		e := &found[i].Entry
		if e.Type != TypeFile || len(e.Blocks) <= listEntries {
			e.Lists = nil
			continue
		}
		if listsCover(e.Lists, len(e.Blocks)) {
			continue
		}
		e.Lists = make([]BlockRef, 0, (len(e.Blocks)+listEntries-1)/listEntries)
		for part := range slices.Chunk(e.Blocks, listEntries) {
			buf = encodeList(buf[:0], part)
			id := Hash(buf)
			if _, err := w.Add(id, buf); err != nil {
				return err
			}
			e.Lists = append(e.Lists, BlockRef{ID: id, Size: uint32(len(buf))})
		}
	}
	return nil
}
