package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/statepack/statepack/archive/format"
	"github.com/zeebo/blake3"
)

// hashFirst is the size past which readVerifiedLarge hashes an object as
// it streams before it holds it.
const hashFirst = 4 << 20

// readVerifiedLarge is readVerified for kinds of objects whose size only
// the data behind them bounds (manifests: up to maxManifestSize). An
// object of at most hashFirst bytes is read once, as readVerified does.
// A larger one is hashed as it streams, without being held, and read
// again only when it matches its id: bytes that are not what their name
// says (a sparse file, garbage) cost hashFirst bytes of memory, not their
// size, and only an object someone wrote under its true id costs more
// (invariant 5: memory follows what is verified, not what is claimed).
func (r *Repository) readVerifiedLarge(ctx context.Context, name string, id format.ID, limit int64) ([]byte, error) {
	rc, err := r.be.Get(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("read %s from %s: %w", name, r.Location(), err)
	}
	defer rc.Close()
	if size, ok := readerSize(rc); ok && size > limit {
		return nil, oversized(name, r.Location(), limit)
	}
	head, err := readAllSized(rc, hashFirst, -1)
	switch {
	case errors.Is(err, errTooLarge): // its size is known and large: nothing read yet
		head = nil
	case err != nil:
		return nil, fmt.Errorf("read %s from %s: %w", name, r.Location(), err)
	case len(head) <= hashFirst:
		if format.Hash(head) != id {
			return nil, &format.IntegrityError{Object: name, Location: r.Location()}
		}
		return head, nil
	}
	h := blake3.New()
	_, _ = h.Write(head)
	n, err := io.Copy(h, io.LimitReader(rc, limit+1-int64(len(head))))
	switch {
	case err != nil:
		return nil, fmt.Errorf("read %s from %s: %w", name, r.Location(), err)
	case int64(len(head))+n > limit:
		return nil, oversized(name, r.Location(), limit)
	case format.HashOf(h) != id:
		return nil, &format.IntegrityError{Object: name, Location: r.Location()}
	}
	rc.Close()
	return r.readVerified(ctx, name, id, limit)
}

// readerSize is the size of what rc reads, when it can tell (a file).
func readerSize(rc io.Reader) (int64, bool) {
	switch v := rc.(type) {
	case interface{ Stat() (fs.FileInfo, error) }:
		if st, err := v.Stat(); err == nil {
			return st.Size(), true
		}
	case interface{ Len() int }:
		return int64(v.Len()), true
	}
	return 0, false
}
