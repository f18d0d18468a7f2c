package archive

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/zeebo/blake3"
	"golang.org/x/sync/errgroup"

	"github.com/statepack/statepack/internal/progress"
)

// VerifyOptions choose how deep verify looks.
type VerifyOptions struct {
	ReadData bool // read every pack whole: check its id and re-hash every block
	Progress progress.Sink
}

// Problem is one damaged or missing object.
type Problem struct {
	Object    string   `json:"object"`
	Error     string   `json:"error"`
	Snapshots []string `json:"snapshots,omitempty"` // snapshots it affects
}

// VerifyReport is what verify found.
type VerifyReport struct {
	States    int       `json:"states"`
	Snapshots int       `json:"snapshots"`
	Indexes   int       `json:"indexes"`
	Packs     int       `json:"packs"`
	Blocks    int       `json:"blocks"`
	BytesRead int64     `json:"bytes_read"`
	Problems  []Problem `json:"problems"`
}

// OK reports whether nothing is wrong.
func (v *VerifyReport) OK() bool { return len(v.Problems) == 0 }

// Verify checks that every ref resolves, every snapshot decodes and names
// only indexed blocks in existing packs, every index object matches its id,
// and every pack's trailer agrees with the index. With ReadData it reads
// every pack and re-hashes every block (invariant 2).
func (r *Repository) Verify(ctx context.Context, o VerifyOptions) (*VerifyReport, error) {
	sink := progress.Or(o.Progress)
	rep := &VerifyReport{}
	badPack := map[ID]string{}
	notFiles, err := r.nonFiles(ctx)
	if err != nil {
		return nil, err
	}
	for _, step := range []func() error{
		func() error { return r.verifyIndexes(ctx, rep) },
		func() error { return r.verifyPacks(ctx, o.ReadData, rep, badPack, sink) },
		func() error { return r.verifySnapshots(ctx, rep, badPack) },
		func() error { return r.verifyLookupTables(ctx, rep) },
	} {
		if err := step(); err != nil {
			// A directory of the layout that is a symlink fails the
			// listings beneath it: reported below, it ends the checks.
			if errors.Is(err, ErrNotRegular) && len(notFiles) > 0 {
				break
			}
			return nil, err
		}
	}
	addNonFiles(rep, notFiles)
	return rep, nil
}

// nonFiles lists what in a directory repository is not a regular file
// where an object or a directory of the layout should be (a FIFO, a
// device, a symlink planted in a shared directory): readers refuse to
// open it (dirobjects.go). Other backends hold only objects.
func (r *Repository) nonFiles(ctx context.Context) ([]*ObjectError, error) {
	d, ok := UnwrapDir(r.Backend())
	if !ok {
		return nil, nil
	}
	bad, err := d.irregular(ctx)
	if err != nil {
		return nil, fmt.Errorf("verify %s: %w", r.Location(), err)
	}
	return bad, nil
}

// addNonFiles reports each non-file once, in place of what reading it
// said.
func addNonFiles(rep *VerifyReport, bad []*ObjectError) {
	seen := map[string]int{}
	for i, p := range rep.Problems {
		seen[p.Object] = i
	}
	for _, e := range bad {
		if i, ok := seen[e.Object]; ok {
			rep.Problems[i].Error = e.Error()
			continue
		}
		rep.Problems = append(rep.Problems, Problem{Object: e.Object, Error: e.Error()})
	}
}

// verifyLookupTables checks every lookup table on the repository and its
// filter: the header and tables against the table's name (its tables
// hash), the covered index objects against the listing, the filter
// against its own hash and its table. A table is only an accelerator,
// which readers check as they read and skip when it fails, but a damaged
// or stale one is reported so that `verify --repair` drops it; the next
// push from a store whose cache covers the index publishes a new one.
// Buckets are checked by the readers that read them, not here: that
// would read the whole table.
func (r *Repository) verifyLookupTables(ctx context.Context, rep *VerifyReport) error {
	tables, _, err := r.listLookupTables(ctx)
	if err != nil {
		return err
	}
	if len(tables) == 0 {
		return nil
	}
	listed, err := r.listIndexObjects(ctx)
	if err != nil {
		return err
	}
	for _, t := range tables {
		name := lookupTableName(t.id)
		problem := func(err error) {
			rep.Problems = append(rep.Problems, Problem{Object: name, Error: err.Error() + " (a lookup table: readers skip it; `statepack verify --repair` drops it)"})
		}
		c, err := r.openLookupTable(ctx, t, len(listed), indexBytes(listed))
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			problem(err)
			continue
		}
		if _, ok := c.covers(listed); !ok {
			problem(fmt.Errorf("%s: stale: it covers index objects no longer there", name))
			continue
		}
		if t.filterSize == 0 {
			continue
		}
		data, err := r.fetchLookupFilter(ctx, t, indexBytes(listed))
		if err == nil {
			_, err = r.checkLookupFilter(data, c)
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			name = lookupFilterName(t.id)
			problem(err)
		}
	}
	return nil
}

func (r *Repository) verifyIndexes(ctx context.Context, rep *VerifyReport) error {
	var listed []ObjectInfo
	if err := r.Backend().List(ctx, "index/", func(oi ObjectInfo) error { listed = append(listed, oi); return nil }); err != nil {
		return fmt.Errorf("list index of %s: %w", r.Location(), err)
	}
	for _, oi := range listed {
		name := oi.Name
		rep.Indexes++
		packs, err := r.readIndexObject(ctx, name, oi.Size)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			rep.Problems = append(rep.Problems, Problem{Object: name, Error: err.Error()})
			continue
		}
		for _, p := range packs {
			r.Index().AddPack(p.Pack, p.Entries)
		}
		r.markIndexed(name)
	}
	return nil
}

// verifyPacks compares every pack with the index: packs the index names
// must exist with a matching trailer; with readData, whole packs are read.
func (r *Repository) verifyPacks(ctx context.Context, readData bool, rep *VerifyReport, badPack map[ID]string, sink progress.Sink) error {
	byPack := map[ID][]PackEntry{}
	_ = r.Index().Each(func(id ID, l Location) error {
		byPack[l.Pack] = append(byPack[l.Pack], PackEntry{ID: id, Offset: l.Offset, Stored: l.Stored, Raw: l.Raw, Encoding: l.Encoding})
		rep.Blocks++
		return nil
	})
	sizes := map[ID]int64{}
	if err := r.Backend().List(ctx, "packs/", func(oi ObjectInfo) error {
		if id, err := ParseID(oi.Name[strings.LastIndexByte(oi.Name, '/')+1:]); err == nil {
			sizes[id] = oi.Size
		}
		return nil
	}); err != nil {
		return fmt.Errorf("list packs of %s: %w", r.Location(), err)
	}
	var total int64
	for _, s := range sizes {
		total += s
	}
	if readData {
		sink.Phase("verify", int64(len(sizes)), total)
	}
	ids := make([]ID, 0, len(byPack))
	for id := range byPack {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b ID) int { return strings.Compare(a.String(), b.String()) })
	// Packs are checked verifyJobs at a time: on S3 each check is a round
	// trip or a whole pack's transfer, and with --read-data decoding and
	// hashing the blocks keeps every core busy. Problems are reported in
	// the order of the pack ids whatever order the checks end in.
	problems := make([]error, len(ids))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(verifyJobs)
	for i, id := range ids {
		size, ok := sizes[id]
		g.Go(func() error {
			switch {
			case !ok:
				problems[i] = fmt.Errorf("%s is missing: %w", packName(id), ErrNotFound)
			case readData:
				problems[i] = r.checkPackData(gctx, id, size, byPack[id])
				sink.Add(1, size)
			default:
				problems[i] = r.checkPackTrailer(gctx, id, size, byPack[id])
			}
			return gctx.Err() // a cancelled run reports no problems, only that it stopped
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for i, id := range ids {
		rep.Packs++
		if size, ok := sizes[id]; ok && readData {
			rep.BytesRead += size
		}
		if err := problems[i]; err != nil {
			badPack[id] = err.Error()
			rep.Problems = append(rep.Problems, Problem{Object: packName(id), Error: err.Error()})
		}
	}
	return nil
}

// verifyJobs is how many packs verify checks at once: as many as push and
// pull move.
const verifyJobs = 4

// ReadPackTrailer reads and decodes a pack's trailer: its footer, then,
// in one ranged read, the entries, each checked as it arrives. Memory
// follows the entries that pass, not the count the footer claims: a
// hostile footer costs what its pack holds of valid entries.
func (r *Repository) ReadPackTrailer(ctx context.Context, id ID, size int64) ([]PackEntry, error) {
	name := packName(id)
	if size < packFooterSize {
		return nil, fmt.Errorf("%s is truncated: %w", name, errCorrupt)
	}
	footer, err := r.ReadRange(ctx, name, size-packFooterSize, packFooterSize)
	if err != nil {
		return nil, err
	}
	tsize, err := PackTrailerSize(footer, size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	n := int((tsize - packFooterSize) / packEntrySize)
	t := trailerTiling{end: size - tsize}
	if n == 0 {
		return nil, t.done()
	}
	rc, err := r.Backend().GetRange(ctx, name, t.end, tsize-packFooterSize)
	if err != nil {
		return nil, fmt.Errorf("read %s from %s: %w", name, r.Location(), err)
	}
	defer rc.Close()
	src := bufio.NewReaderSize(rc, 64<<10)
	entries := make([]PackEntry, 0, min(n, 4096))
	var raw [packEntrySize]byte
	for i := range n {
		if _, err := io.ReadFull(src, raw[:]); err != nil {
			return nil, fmt.Errorf("read %s from %s: %w", name, r.Location(), err)
		}
		entries = append(entries, PackEntry{})
		if err := t.decode(&entries[i], i, raw[:]); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	if err := t.done(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return entries, nil
}

// ReadRange reads n bytes of an object at off.
func (r *Repository) ReadRange(ctx context.Context, name string, off, n int64) ([]byte, error) {
	return r.readInto(ctx, name, off, n, nil)
}

func (r *Repository) checkPackTrailer(ctx context.Context, id ID, size int64, want []PackEntry) error {
	entries, err := r.ReadPackTrailer(ctx, id, size)
	if err != nil {
		return err
	}
	return compareEntries(entries, want)
}

func compareEntries(have, want []PackEntry) error {
	byID := make(map[ID]PackEntry, len(have))
	for _, e := range have {
		byID[e.ID] = e
	}
	for _, w := range want {
		if h, ok := byID[w.ID]; !ok || h != w {
			return fmt.Errorf("index entry for block %s does not match the pack trailer: %w", w.ID.Short(), errCorrupt)
		}
	}
	return nil
}

// checkPackData streams a whole pack (streamPack): it checks the pack
// against its id and its trailer against the index, and decodes and
// hashes every block. It holds a block of the pack, not the pack (packs
// may be up to a GiB, and a remote's listing is untrusted), so verify's
// memory does not grow with the pack size.
func (r *Repository) checkPackData(ctx context.Context, id ID, size int64, want []PackEntry) error {
	name := packName(id)
	entries, err := r.packLayout(ctx, id, size, want)
	if err != nil {
		return err
	}
	var blockErr error
	var raw []byte
	trailer, intact, err := r.streamPack(ctx, id, size, entries, func(e PackEntry, stored []byte) {
		if blockErr == nil {
			raw, blockErr = DecodeBlock(e.ID, e.at(id), stored, raw)
		}
	})
	switch {
	case err != nil:
		return err
	case !intact: // the id tells for the whole pack, whatever its blocks say
		return &IntegrityError{Object: name, Location: r.Location()}
	case blockErr != nil: // written so
		return fmt.Errorf("pack %s on %s: %w", id, r.Location(), blockErr)
	}
	have, err := DecodePackTrailer(trailer, size)
	if err == nil && !slices.Equal(have, entries) {
		err = fmt.Errorf("its trailer does not list the blocks where the index puts them: %w", errCorrupt)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// packLayout returns the entries of a pack's trailer, which tell where
// its blocks lie. When the index's entries for the pack tile it exactly
// (every block back to back from the start, then a trailer of as many
// entries: the pack a save or pull wrote), they are that trailer, checked
// once streamed; otherwise the trailer is read first.
func (r *Repository) packLayout(ctx context.Context, id ID, size int64, want []PackEntry) ([]PackEntry, error) {
	sorted := slices.Clone(want)
	slices.SortFunc(sorted, func(a, b PackEntry) int { return int(a.Offset) - int(b.Offset) })
	var next int64
	for _, e := range sorted {
		if int64(e.Offset) != next {
			next = -1
			break
		}
		next += int64(e.Stored)
	}
	if next >= 0 && next+int64(len(sorted))*packEntrySize+packFooterSize == size {
		return sorted, nil
	}
	entries, err := r.ReadPackTrailer(ctx, id, size)
	if err != nil {
		return nil, err
	}
	return entries, compareEntries(entries, want)
}

// streamPackBuffer is how much streamPack reads at once: a few blocks,
// not a read call per block.
const streamPackBuffer = 256 << 10

// streamPack reads the pack id of size bytes from its start, handing fn
// each of entries (which tile it from offset 0, as a trailer's do) with
// its stored bytes, valid during the call, then reads the trailer that
// follows them and returns it. It hashes what it reads: intact reports
// that the object is exactly those bytes and hashes to id; one that ends
// early or runs on is not intact. Only a failure to read is an error. It
// holds one block at a time.
func (r *Repository) streamPack(ctx context.Context, id ID, size int64, entries []PackEntry, fn func(e PackEntry, stored []byte)) (trailer []byte, intact bool, err error) {
	name := packName(id)
	rc, err := r.Backend().Get(ctx, name)
	if err != nil {
		return nil, false, fmt.Errorf("read %s from %s: %w", name, r.Location(), err)
	}
	defer rc.Close()
	h := blake3.New()
	src := io.TeeReader(bufio.NewReaderSize(io.LimitReader(rc, size+1), streamPackBuffer), h)
	readFull := func(b []byte) (bool, error) {
		_, err := io.ReadFull(src, b)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("read %s from %s: %w", name, r.Location(), err)
		}
		return true, nil
	}
	var stored []byte
	for _, e := range entries {
		stored = slices.Grow(stored[:0], int(e.Stored))[:e.Stored]
		if ok, err := readFull(stored); !ok {
			return nil, false, err
		}
		fn(e, stored)
	}
	trailer = make([]byte, len(entries)*packEntrySize+packFooterSize)
	if ok, err := readFull(trailer); !ok {
		return nil, false, err
	}
	extra, err := io.CopyN(io.Discard, src, 1)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, false, fmt.Errorf("read %s from %s: %w", name, r.Location(), err)
	}
	return trailer, extra == 0 && hashOf(h) == id, nil
}

// hashOf returns the id of the bytes written to h.
func hashOf(h *blake3.Hasher) ID {
	var id ID
	h.Sum(id[:0])
	return id
}

// verifySnapshots checks refs and snapshots, and names the snapshots that
// damaged packs or blocks affect.
func (r *Repository) verifySnapshots(ctx context.Context, rep *VerifyReport, badPack map[ID]string) error {
	states, err := r.States(ctx)
	if err != nil {
		return err
	}
	rep.States = len(states)
	for _, s := range states {
		head, _, err := r.ReadRef(ctx, s)
		if err == nil && !r.HasSnapshot(ctx, head) {
			err = fmt.Errorf("points at snapshot %s, which is missing", head.Short())
		}
		if err != nil {
			rep.Problems = append(rep.Problems, Problem{Object: refName(s), Error: err.Error()})
		}
	}
	snaps, err := r.Snapshots(ctx)
	if err != nil {
		return err
	}
	affected := map[string][]string{}
	for _, id := range snaps {
		rep.Snapshots++
		// Not expanded: verify walks the blocks once, and a manifest that
		// names one list block many times costs what it reads.
		m, lists, err := r.LoadManifestLists(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			rep.Problems = append(rep.Problems, Problem{Object: snapshotName(id), Error: err.Error(), Snapshots: []string{id.String()}})
			continue
		}
		r.snapshotDamage(id, m, lists, badPack, affected, rep)
	}
	for i := range rep.Problems {
		if s := affected[rep.Problems[i].Object]; len(s) > 0 {
			rep.Problems[i].Snapshots = s
		}
	}
	return nil
}

func (r *Repository) snapshotDamage(id ID, m *Manifest, lists *BlockLists, badPack map[ID]string, affected map[string][]string, rep *VerifyReport) {
	missing := 0
	seen := map[string]bool{}
	lists.Each(m, func(_ *Entry, b BlockRef) {
		loc, ok := r.Index().Lookup(b.ID)
		switch {
		case !ok:
			missing++
		case badPack[loc.Pack] != "" && !seen[packName(loc.Pack)]:
			affected[packName(loc.Pack)] = append(affected[packName(loc.Pack)], id.String())
			seen[packName(loc.Pack)] = true
		}
	})
	if missing > 0 {
		rep.Problems = append(rep.Problems, Problem{Object: snapshotName(id), Error: fmt.Sprintf("%d blocks are not in any index", missing), Snapshots: []string{id.String()}})
	}
}
