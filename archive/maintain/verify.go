package maintain

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

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/lookup"
	"github.com/statepack/statepack/internal/progress"
	"github.com/statepack/statepack/remote/backend"
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
func Verify(ctx context.Context, r *archive.Repository, o VerifyOptions) (*VerifyReport, error) {
	sink := progress.Or(o.Progress)
	rep := &VerifyReport{}
	badPack := map[format.ID]string{}
	notFiles, err := nonFiles(ctx, r)
	if err != nil {
		return nil, err
	}
	for _, step := range []func() error{
		func() error { return verifyIndexes(ctx, r, rep) },
		func() error { return verifyPacks(ctx, r, o.ReadData, rep, badPack, sink) },
		func() error { return verifySnapshots(ctx, r, rep, badPack) },
		func() error { return verifyLookupTables(ctx, r, rep) },
	} {
		if err := step(); err != nil {
			// A directory of the layout that is a symlink fails the
			// listings beneath it: reported below, it ends the checks.
			if errors.Is(err, backend.ErrNotRegular) && len(notFiles) > 0 {
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
func nonFiles(ctx context.Context, r *archive.Repository) ([]*backend.ObjectError, error) {
	d, ok := backend.As[backend.Local](r.Backend())
	if !ok {
		return nil, nil
	}
	bad, err := d.Irregular(ctx)
	if err != nil {
		return nil, fmt.Errorf("verify %s: %w", r.Location(), err)
	}
	return bad, nil
}

// addNonFiles reports each non-file once, in place of what reading it
// said.
func addNonFiles(rep *VerifyReport, bad []*backend.ObjectError) {
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
func verifyLookupTables(ctx context.Context, r *archive.Repository, rep *VerifyReport) error {
	tables, _, err := r.ListLookupTables(ctx)
	if err != nil {
		return err
	}
	if len(tables) == 0 {
		return nil
	}
	listed, err := r.ListIndexObjects(ctx)
	if err != nil {
		return err
	}
	for _, t := range tables {
		name := lookup.TableName(t.ID)
		problem := func(err error) {
			rep.Problems = append(rep.Problems, Problem{Object: name, Error: err.Error() + " (a lookup table: readers skip it; `statepack verify --repair` drops it)"})
		}
		c, err := r.OpenLookupTable(ctx, t, len(listed), lookup.IndexBytes(listed))
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			problem(err)
			continue
		}
		if _, ok := c.Covers(listed); !ok {
			problem(fmt.Errorf("%s: stale: it covers index objects no longer there", name))
			continue
		}
		if t.FilterSize == 0 {
			continue
		}
		data, err := r.FetchLookupFilter(ctx, t, lookup.IndexBytes(listed))
		if err == nil {
			_, err = r.CheckLookupFilter(data, c)
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			name = lookup.FilterName(t.ID)
			problem(err)
		}
	}
	return nil
}

func verifyIndexes(ctx context.Context, r *archive.Repository, rep *VerifyReport) error {
	var listed []backend.ObjectInfo
	if err := r.Backend().List(ctx, "index/", func(oi backend.ObjectInfo) error { listed = append(listed, oi); return nil }); err != nil {
		return fmt.Errorf("list index of %s: %w", r.Location(), err)
	}
	for _, oi := range listed {
		name := oi.Name
		rep.Indexes++
		packs, err := r.ReadIndexNamed(ctx, name, oi.Size)
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
		r.MarkIndexed(name)
	}
	return nil
}

// verifyPacks compares every pack with the index: packs the index names
// must exist with a matching trailer; with readData, whole packs are read.
func verifyPacks(ctx context.Context, r *archive.Repository, readData bool, rep *VerifyReport, badPack map[format.ID]string, sink progress.Sink) error {
	byPack := map[format.ID][]format.PackEntry{}
	_ = r.Index().Each(func(id format.ID, l format.Location) error {
		byPack[l.Pack] = append(byPack[l.Pack], format.PackEntry{ID: id, Offset: l.Offset, Stored: l.Stored, Raw: l.Raw, Encoding: l.Encoding})
		rep.Blocks++
		return nil
	})
	sizes := map[format.ID]int64{}
	if err := r.Backend().List(ctx, "packs/", func(oi backend.ObjectInfo) error {
		if id, err := format.ParseID(oi.Name[strings.LastIndexByte(oi.Name, '/')+1:]); err == nil {
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
	ids := make([]format.ID, 0, len(byPack))
	for id := range byPack {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b format.ID) int { return strings.Compare(a.String(), b.String()) })
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
				problems[i] = fmt.Errorf("%s is missing: %w", format.PackName(id), backend.ErrNotFound)
			case readData:
				problems[i] = checkPackData(gctx, r, id, size, byPack[id])
				sink.Add(1, size)
			default:
				problems[i] = checkPackTrailer(gctx, r, id, size, byPack[id])
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
			rep.Problems = append(rep.Problems, Problem{Object: format.PackName(id), Error: err.Error()})
		}
	}
	return nil
}

// verifyJobs is how many packs verify checks at once: as many as push and
// pull move.
const verifyJobs = 4

func checkPackTrailer(ctx context.Context, r *archive.Repository, id format.ID, size int64, want []format.PackEntry) error {
	entries, err := r.ReadPackTrailer(ctx, id, size)
	if err != nil {
		return err
	}
	return compareEntries(entries, want)
}

func compareEntries(have, want []format.PackEntry) error {
	byID := make(map[format.ID]format.PackEntry, len(have))
	for _, e := range have {
		byID[e.ID] = e
	}
	for _, w := range want {
		if h, ok := byID[w.ID]; !ok || h != w {
			return fmt.Errorf("index entry for block %s does not match the pack trailer: %w", w.ID.Short(), format.ErrCorrupt)
		}
	}
	return nil
}

// checkPackData streams a whole pack (streamPack): it checks the pack
// against its id and its trailer against the index, and decodes and
// hashes every block. It holds a block of the pack, not the pack (packs
// may be up to a GiB, and a remote's listing is untrusted), so verify's
// memory does not grow with the pack size.
func checkPackData(ctx context.Context, r *archive.Repository, id format.ID, size int64, want []format.PackEntry) error {
	name := format.PackName(id)
	entries, err := packLayout(ctx, r, id, size, want)
	if err != nil {
		return err
	}
	var blockErr error
	var raw []byte
	trailer, intact, err := streamPack(ctx, r, id, size, entries, func(e format.PackEntry, stored []byte) {
		if blockErr == nil {
			raw, blockErr = r.DecodeBlock(e.ID, e.At(id), stored, raw)
		}
	})
	switch {
	case err != nil:
		return err
	case !intact: // the id tells for the whole pack, whatever its blocks say
		return &format.IntegrityError{Object: name, Location: r.Location()}
	case blockErr != nil: // written so
		return fmt.Errorf("pack %s on %s: %w", id, r.Location(), blockErr)
	}
	have, err := format.DecodePackTrailer(trailer, size)
	if err == nil && !slices.Equal(have, entries) {
		err = fmt.Errorf("its trailer does not list the blocks where the index puts them: %w", format.ErrCorrupt)
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
func packLayout(ctx context.Context, r *archive.Repository, id format.ID, size int64, want []format.PackEntry) ([]format.PackEntry, error) {
	sorted := slices.Clone(want)
	slices.SortFunc(sorted, func(a, b format.PackEntry) int { return int(a.Offset) - int(b.Offset) })
	var next int64
	for _, e := range sorted {
		if int64(e.Offset) != next {
			next = -1
			break
		}
		next += int64(e.Stored)
	}
	if next >= 0 && next+int64(len(sorted))*format.PackEntrySize+format.PackFooterSize == size {
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
func streamPack(ctx context.Context, r *archive.Repository, id format.ID, size int64, entries []format.PackEntry, fn func(e format.PackEntry, stored []byte)) (trailer []byte, intact bool, err error) {
	name := format.PackName(id)
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
	trailer = make([]byte, len(entries)*format.PackEntrySize+format.PackFooterSize)
	if ok, err := readFull(trailer); !ok {
		return nil, false, err
	}
	extra, err := io.CopyN(io.Discard, src, 1)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, false, fmt.Errorf("read %s from %s: %w", name, r.Location(), err)
	}
	return trailer, extra == 0 && format.HashOf(h) == id, nil
}

// verifySnapshots checks refs and snapshots, and names the snapshots that
// damaged packs or blocks affect.
func verifySnapshots(ctx context.Context, r *archive.Repository, rep *VerifyReport, badPack map[format.ID]string) error {
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
			rep.Problems = append(rep.Problems, Problem{Object: format.RefName(s), Error: err.Error()})
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
			rep.Problems = append(rep.Problems, Problem{Object: format.SnapshotName(id), Error: err.Error(), Snapshots: []string{id.String()}})
			continue
		}
		snapshotDamage(r, id, m, lists, badPack, affected, rep)
	}
	for i := range rep.Problems {
		if s := affected[rep.Problems[i].Object]; len(s) > 0 {
			rep.Problems[i].Snapshots = s
		}
	}
	return nil
}

func snapshotDamage(r *archive.Repository, id format.ID, m *format.Manifest, lists *format.BlockLists, badPack map[format.ID]string, affected map[string][]string, rep *VerifyReport) {
	missing := 0
	seen := map[string]bool{}
	lists.Each(m, func(_ *format.Entry, b format.BlockRef) {
		loc, ok := r.Index().Lookup(b.ID)
		switch {
		case !ok:
			missing++
		case badPack[loc.Pack] != "" && !seen[format.PackName(loc.Pack)]:
			affected[format.PackName(loc.Pack)] = append(affected[format.PackName(loc.Pack)], id.String())
			seen[format.PackName(loc.Pack)] = true
		}
	})
	if missing > 0 {
		rep.Problems = append(rep.Problems, Problem{Object: format.SnapshotName(id), Error: fmt.Sprintf("%d blocks are not in any index", missing), Snapshots: []string{id.String()}})
	}
}
