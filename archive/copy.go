package archive

import (
	"context"
	"fmt"
	"io"

	"golang.org/x/sync/errgroup"

	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/internal/progress"
	"github.com/statepack/statepack/remote/backend"
)

// DefaultCopyJobs is how many packs a copy moves at once: enough to fill
// a link to S3 from a CI runner, few enough to keep memory at a few packs.
const DefaultCopyJobs = 4

// indexEvery is how many packs a copy stores between index objects, so
// that a copy cut off keeps what it finished.
const indexEvery = 8

// Side names the side of a copy that is the local store: its index is
// loaded (under the caller's lock) and asked in memory, while the other
// side, a remote, is always asked through FindBlocks, never through an
// index some earlier call may have loaded before another writer or a
// prune changed it.
type Side int

const (
	// SrcLocal: the source is the local store (a push).
	SrcLocal Side = iota
	// DstLocal: the destination is the local store (a pull).
	DstLocal
)

// CopyOptions say how Copy moves a snapshot.
type CopyOptions struct {
	Local    Side // which side is the local store
	Jobs     int  // packs moved at once; 0 means DefaultCopyJobs
	Progress progress.Sink
	// DstHead is the destination's head of the state copied (zero for
	// none). When the source holds that snapshot too, its blocks are
	// known to be on the destination (a ref names only complete
	// snapshots, invariant 1) and are not looked up there: the next
	// version of a state, pushed by a runner with a fresh store, asks
	// the remote's index about its new blocks only.
	DstHead format.ID
	// Receive, when set, is called once the snapshot's list blocks can be
	// read, before the other blocks move; the function it returns (nil
	// for none) is handed every block copied from then on, verified, with
	// its decoded bytes, valid during the call. Pull --restore writes the
	// files as the blocks arrive through it.
	Receive func(ctx context.Context, m *format.Manifest, lists *format.BlockLists) (func(id format.ID, raw []byte), error)
}

// CopyResult counts what a copy moved.
type CopyResult struct {
	Blocks        int64 // blocks copied
	Bytes         int64 // their stored bytes
	SkippedBlocks int64 // blocks the destination had
	SkippedBytes  int64 // their raw bytes
	Packs         int   // packs written on the destination
}

// Copy copies snapshot id from src to dst, as push and pull do: the
// blocks dst lacks, each verified, into new packs on dst (a pack wanted
// whole is stored as it is, once it checks against its id), and then the
// manifest. It moves no ref: the caller does that last, once everything
// the ref reaches is there.
//
// The local side (o.Local) is asked in memory, its index loaded here; the
// other (a remote) through FindBlocks. The list blocks of the snapshot's
// large files are copied first when only dst can then read them (a pull),
// since they name the rest.
func Copy(ctx context.Context, src, dst *Repository, id format.ID, o CopyOptions) (*CopyResult, error) {
	data, err := src.LoadManifestBytes(ctx, id)
	if err != nil {
		return nil, err
	}
	m, err := format.DecodeManifest(data)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s on %s: %w", id.Short(), src.Location(), err)
	}
	c := &copier{src: src, dst: dst, id: id, o: o, srcLocal: o.Local == SrcLocal, sink: progress.Or(o.Progress), jobs: copyJobs(o.Jobs), res: &CopyResult{}}
	local := dst
	if c.srcLocal {
		local = src
	}
	if _, err := local.LoadIndex(ctx); err != nil {
		return nil, err
	}
	var refs []format.BlockRef
	var lists *format.BlockLists
	if c.srcLocal {
		// The lists are walked, not expanded: a snapshot naming one list
		// block a million times costs what it sends, not what it claims.
		if lists, err = src.ReadBlockLists(ctx, m); err != nil {
			return nil, fmt.Errorf("snapshot %s: %w", id.Short(), err)
		}
		refs = m.ListBlocks()
	} else {
		if err := c.blocks(ctx, m.ListBlocks(), nil); err != nil {
			return nil, err
		}
		if lists, err = dst.ReadBlockLists(ctx, m); err != nil {
			return nil, fmt.Errorf("block lists of state '%s': %w", m.State, err)
		}
	}
	var receive func(format.ID, []byte)
	if o.Receive != nil {
		if receive, err = o.Receive(ctx, m, lists); err != nil {
			return nil, err
		}
	}
	if err := c.blocks(ctx, distinct(refs, lists.Distinct(m)), receive); err != nil {
		return nil, err
	}
	if _, err := dst.PutManifestBytes(ctx, data); err != nil {
		return nil, err
	}
	return c.res, nil
}

// distinct appends to a the blocks of b it does not hold.
func distinct(a, b []format.BlockRef) []format.BlockRef {
	if len(a) == 0 {
		return b
	}
	seen := make(map[format.ID]struct{}, len(a)+len(b))
	for _, r := range a {
		seen[r.ID] = struct{}{}
	}
	for _, r := range b {
		if _, dup := seen[r.ID]; !dup {
			seen[r.ID] = struct{}{}
			a = append(a, r)
		}
	}
	return a
}

func copyJobs(n int) int {
	if n <= 0 {
		return DefaultCopyJobs
	}
	return min(n, 64)
}

// copier is one Copy in progress.
type copier struct {
	src, dst *Repository
	id       format.ID // the snapshot copied
	o        CopyOptions
	srcLocal bool // the source is the local store, the destination a remote
	sink     progress.Sink
	jobs     int
	res      *CopyResult
}

// blocks copies the blocks of refs that dst lacks, handing each to
// receive too when it is not nil.
func (c *copier) blocks(ctx context.Context, refs []format.BlockRef, receive func(format.ID, []byte)) error {
	need, err := c.missing(ctx, refs)
	if err != nil || len(need) == 0 {
		return err
	}
	at, err := c.locate(ctx, need)
	if err != nil {
		return err
	}
	var total int64
	for _, b := range at {
		total += int64(b.Loc.Stored)
	}
	c.sink.Phase("transfer", int64(len(at)), total)
	w := c.dst.NewPackWriter(ctx, PackWriterOptions{Jobs: c.jobs, IndexEvery: indexEvery})
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.jobs)
	for pack, blocks := range GroupByPack(at) {
		g.Go(func() error { return c.pack(gctx, pack, blocks, w, receive) })
	}
	if err := g.Wait(); err != nil {
		w.Abort()
		return err
	}
	if _, err := w.Close(ctx); err != nil {
		return err
	}
	st := w.Stats()
	c.res.Packs += st.Packs
	c.res.Blocks += st.Blocks
	c.res.Bytes += st.Bytes
	return nil
}

// missing returns the blocks of refs that dst does not hold, counting the
// others as skipped.
func (c *copier) missing(ctx context.Context, refs []format.BlockRef) ([]format.BlockRef, error) {
	var have map[format.ID]format.Location
	if c.srcLocal && len(refs) > 0 {
		want := make(map[format.ID]struct{}, len(refs))
		for _, b := range refs {
			want[b.ID] = struct{}{}
		}
		known := c.headBlocks(ctx, want)
		var err error
		if have, err = c.dst.FindBlocks(ctx, want); err != nil {
			return nil, err
		}
		for id := range known {
			have[id] = format.Location{}
		}
	}
	var need []format.BlockRef
	for _, b := range refs {
		_, found := have[b.ID]
		if found || have == nil && c.dst.Index().Has(b.ID) {
			c.res.SkippedBlocks++
			c.res.SkippedBytes += int64(b.Size)
			continue
		}
		need = append(need, b)
	}
	return need, nil
}

// headBlocks takes out of want, and returns, the blocks of o.DstHead when
// the source holds that snapshot. A head the source lacks, or cannot
// expand, changes nothing. Should dst's ref move on before the caller's
// compare-and-swap, the copy's manifest is never named by a ref, so
// nothing refers to a block this skipped.
func (c *copier) headBlocks(ctx context.Context, want map[format.ID]struct{}) map[format.ID]struct{} {
	head := c.o.DstHead
	if head.IsZero() || !c.src.HasSnapshot(ctx, head) {
		return nil
	}
	m, lists, err := c.src.LoadManifestLists(ctx, head)
	if err != nil {
		return nil
	}
	found := map[format.ID]struct{}{}
	lists.Each(m, func(_ *format.Entry, b format.BlockRef) {
		if _, ok := want[b.ID]; ok {
			found[b.ID] = struct{}{}
			delete(want, b.ID)
		}
	})
	return found
}

// locate finds where in src the blocks are.
func (c *copier) locate(ctx context.Context, need []format.BlockRef) ([]BlockAt, error) {
	at := make([]BlockAt, 0, len(need))
	if c.srcLocal {
		idx := c.src.Index()
		for _, b := range need {
			loc, ok := idx.Lookup(b.ID)
			if !ok {
				return nil, fmt.Errorf("snapshot %s is incomplete locally: block %s is missing; run `statepack verify`", c.id.Short(), b.ID.Short())
			}
			at = append(at, BlockAt{ID: b.ID, Loc: loc})
		}
		return at, nil
	}
	want := make(map[format.ID]struct{}, len(need))
	for _, b := range need {
		want[b.ID] = struct{}{}
	}
	where, err := c.src.FindBlocks(ctx, want)
	if err != nil {
		return nil, err
	}
	for _, b := range need {
		loc, ok := where[b.ID]
		if !ok || loc.Raw != b.Size {
			return nil, fmt.Errorf("snapshot on %s is incomplete: block %s is not in its index; nothing was changed locally (run `statepack verify --remote`)", c.src.Location(), b.ID.Short())
		}
		at = append(at, BlockAt{ID: b.ID, Loc: loc})
	}
	return at, nil
}

// pack copies the wanted blocks of one source pack. A pack of the local
// store (a push's source) wanted whole goes as it is,
// checked against its id only: the local store's trailers are its own,
// while a remote's pack is untrusted, trailer included. Anything else is read with as few
// ranged reads as the layout allows and every block verified; a pack
// read whole that checks, trailer included, is kept as it came, and the
// blocks of others go into new packs.
func (c *copier) pack(ctx context.Context, pack format.ID, blocks []BlockAt, w *PackWriter, receive func(format.ID, []byte)) error {
	if receive == nil && c.srcLocal {
		sent, err := c.wholeLocalPack(ctx, pack, blocks, w)
		if sent || err != nil {
			return err
		}
	}
	return c.src.ReadPackFrom(ctx, pack, blocks, PackReceiver{
		Block: func(b BlockAt, stored, raw []byte) error {
			if receive != nil {
				receive(b.ID, raw)
			}
			c.sink.Add(1, int64(len(stored)))
			return nil
		},
		Keep: func(data []byte, entries []format.PackEntry) error { return w.PutPack(ctx, pack, data, entries) },
		Add:  func(b BlockAt, stored []byte) error { return w.Add(b.ID, stored, int(b.Loc.Raw), b.Loc.Encoding) },
	})
}

// wholeLocalPack sends a pack of a local source as it is when every block
// in it is wanted (a cold push): no decoding, no repacking, and the pack
// streams from its file. It is hashed against its id first. It reports
// false, and sends nothing, when the pack is not wanted whole or the
// source is not local.
func (c *copier) wholeLocalPack(ctx context.Context, pack format.ID, blocks []BlockAt, w *PackWriter) (bool, error) {
	local, ok := backend.As[backend.Local](c.src.be)
	if !ok {
		return false, nil
	}
	name := format.PackName(pack)
	info, err := local.Stat(ctx, name)
	if err != nil {
		return false, err
	}
	entries, err := c.src.ReadPackTrailer(ctx, pack, info.Size)
	if err != nil || len(entries) != len(blocks) {
		return false, err
	}
	f, err := local.Get(ctx, name)
	if err != nil {
		return false, err
	}
	defer f.Close()
	sum, err := format.HashStream(f)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", name, err)
	}
	if sum != pack {
		return false, &format.IntegrityError{Object: name, Location: c.src.Location()}
	}
	rs, ok := f.(io.ReadSeeker)
	if !ok {
		return false, nil
	}
	if _, err := rs.Seek(0, io.SeekStart); err != nil {
		return false, err
	}
	if err := c.dst.be.Put(ctx, name, rs, info.Size); err != nil {
		return false, fmt.Errorf("write pack to %s: %w", c.dst.Location(), err)
	}
	var stored int64
	for _, b := range blocks {
		stored += int64(b.Loc.Stored)
	}
	c.sink.Add(int64(len(blocks)), stored)
	return true, w.AddPack(ctx, pack, entries)
}
