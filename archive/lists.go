package archive

import (
	"context"
	"fmt"
	"sync"

	"github.com/statepack/statepack/archive/format"
	"golang.org/x/sync/errgroup"
)

// ExpandLists fills in the blocks of every entry of m whose block list is
// stored in list blocks, reading those from r, verified (invariant 2). The
// list blocks are found in r's loaded index, or else by FindBlocks (a
// remote whose index is not loaded), and read with ranged reads coalesced
// per pack. Readers that only walk the blocks, restore among them (a
// file at a time, BlockLists.chunks), use ReadBlockLists instead, whose
// memory follows the list blocks read, not how often the manifest names
// them.
func (r *Repository) ExpandLists(ctx context.Context, m *format.Manifest) error {
	lists, err := r.ReadBlockLists(ctx, m)
	if err != nil {
		return err
	}
	return lists.Expand(m)
}

// ReadBlockLists reads the distinct list blocks of m, verified, and checks
// that every file's lists add up to its size, without expanding them.
func (r *Repository) ReadBlockLists(ctx context.Context, m *format.Manifest) (*format.BlockLists, error) {
	refs := m.ListBlocks()
	if len(refs) == 0 {
		return &format.BlockLists{}, nil
	}
	where, err := r.locate(ctx, refs)
	if err != nil {
		return nil, err
	}
	lists, err := r.readLists(ctx, where)
	if err != nil {
		return nil, err
	}
	for i := range m.Entries {
		if err := format.CheckListSum(&m.Entries[i], lists); err != nil {
			return nil, fmt.Errorf("%s: %w", m.Entries[i].Path, err)
		}
	}
	return &format.BlockLists{Lists: lists}, nil
}

// LoadManifestLists reads, verifies and decodes a snapshot and reads its
// block lists, without expanding them: for readers that walk a
// snapshot's blocks (BlockLists.Each) or count them, not restore them.
func (r *Repository) LoadManifestLists(ctx context.Context, id format.ID) (*format.Manifest, *format.BlockLists, error) {
	m, err := r.LoadManifestUnexpanded(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	lists, err := r.ReadBlockLists(ctx, m)
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot %s on %s: %w", id.Short(), r.Location(), err)
	}
	return m, lists, nil
}

// locate finds where blocks are stored: in the loaded index when it has
// them, else by one FindBlocks for the rest. A block found with another
// length than the reference says is reported as missing.
func (r *Repository) locate(ctx context.Context, refs []format.BlockRef) ([]BlockAt, error) {
	out := make([]BlockAt, 0, len(refs))
	want := map[format.ID]struct{}{}
	for _, b := range refs {
		if loc, ok := r.Index().Lookup(b.ID); ok {
			out = append(out, BlockAt{ID: b.ID, Loc: loc})
		} else {
			want[b.ID] = struct{}{}
		}
	}
	if len(want) > 0 {
		found, err := r.FindBlocks(ctx, want)
		if err != nil {
			return nil, err
		}
		for id := range want {
			loc, ok := found[id]
			if !ok {
				// Not ErrNotFound: a history walk takes that for the end
				// of a shallow history, and prune would then drop what
				// lies beyond.
				return nil, fmt.Errorf("block list %s is not in the index of %s: the snapshot is incomplete", id.Short(), r.Location())
			}
			out = append(out, BlockAt{ID: id, Loc: loc})
		}
	}
	sizes := make(map[format.ID]uint32, len(refs))
	for _, b := range refs {
		sizes[b.ID] = b.Size
	}
	for _, b := range out {
		if b.Loc.Raw != sizes[b.ID] {
			return nil, fmt.Errorf("block list %s has %d bytes in %s, the snapshot says %d: %w", b.ID.Short(), b.Loc.Raw, r.Location(), sizes[b.ID], format.ErrCorrupt)
		}
	}
	return out, nil
}

// readLists reads and decodes list blocks, a few packs at a time.
func (r *Repository) readLists(ctx context.Context, blocks []BlockAt) (map[format.ID][]format.BlockRef, error) {
	lists := make(map[format.ID][]format.BlockRef, len(blocks))
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for pack, group := range GroupByPack(blocks) {
		g.Go(func() error {
			return r.ReadPackBlocks(gctx, pack, group, func(b BlockAt, _, raw []byte) error {
				list, err := format.DecodeList(nil, raw)
				if err != nil {
					return fmt.Errorf("block list %s: %w", b.ID.Short(), err)
				}
				mu.Lock()
				lists[b.ID] = list
				mu.Unlock()
				return nil
			})
		})
	}
	return lists, g.Wait()
}
