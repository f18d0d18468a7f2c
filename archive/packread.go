package archive

import (
	"bufio"
	"context"
	"fmt"
	"io"

	"github.com/statepack/statepack/archive/format"
)

// ReadPackTrailer reads and decodes a pack's trailer: its footer, then,
// in one ranged read, the entries, each checked as it arrives. Memory
// follows the entries that pass, not the count the footer claims: a
// hostile footer costs what its pack holds of valid entries.
func (r *Repository) ReadPackTrailer(ctx context.Context, id format.ID, size int64) ([]format.PackEntry, error) {
	name := format.PackName(id)
	if size < format.PackFooterSize {
		return nil, fmt.Errorf("%s is truncated: %w", name, format.ErrCorrupt)
	}
	footer, err := r.ReadRange(ctx, name, size-format.PackFooterSize, format.PackFooterSize)
	if err != nil {
		return nil, err
	}
	tsize, err := format.PackTrailerSize(footer, size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	n := int((tsize - format.PackFooterSize) / format.PackEntrySize)
	t := format.TrailerTiling{End: size - tsize}
	if n == 0 {
		return nil, t.Done()
	}
	rc, err := r.Backend().GetRange(ctx, name, t.End, tsize-format.PackFooterSize)
	if err != nil {
		return nil, fmt.Errorf("read %s from %s: %w", name, r.Location(), err)
	}
	defer rc.Close()
	src := bufio.NewReaderSize(rc, 64<<10)
	entries := make([]format.PackEntry, 0, min(n, 4096))
	var raw [format.PackEntrySize]byte
	for i := range n {
		if _, err := io.ReadFull(src, raw[:]); err != nil {
			return nil, fmt.Errorf("read %s from %s: %w", name, r.Location(), err)
		}
		entries = append(entries, format.PackEntry{})
		if err := t.Decode(&entries[i], i, raw[:]); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	if err := t.Done(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return entries, nil
}

// ReadRange reads n bytes of an object at off.
func (r *Repository) ReadRange(ctx context.Context, name string, off, n int64) ([]byte, error) {
	return r.ReadInto(ctx, name, off, n, nil)
}
