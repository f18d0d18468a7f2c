package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/lookup"
	"github.com/statepack/statepack/chunker"
	"github.com/statepack/statepack/remote/backend"
)

// Repository is one statepack repository on a Backend: the local store, or
// a remote opened the same way.
type Repository struct {
	be  backend.Backend
	cfg format.Config

	find *lookup.Finder // FindBlocks and lookup tables (lookup.go)

	zeroIDs sync.Map // block length -> id of that many zeros (BlockID)

	mu sync.Mutex // guards idx and indexed, replaced by prune and repair

	idx     *Index
	indexed map[string]bool // index objects already loaded
}

// Open opens an existing repository.
func Open(ctx context.Context, be backend.Backend) (*Repository, error) {
	cfg, err := loadConfig(ctx, be)
	if err != nil {
		return nil, err
	}
	r := &Repository{be: be, cfg: cfg, idx: NewIndex(), indexed: map[string]bool{}}
	r.find = lookup.NewFinder(be, cfg, lookupReads{r})
	return r, nil
}

// Init creates a repository with cfg on an empty backend.
func Init(ctx context.Context, be backend.Backend, cfg format.Config) (*Repository, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := writeConfig(ctx, be, cfg); err != nil {
		return nil, err
	}
	return Open(ctx, be)
}

// OpenOrInit opens the repository, creating it with default parameters
// when the backend holds nothing yet (the local store on first use).
func OpenOrInit(ctx context.Context, be backend.Backend) (*Repository, error) {
	cfg, err := format.NewConfig(chunker.DefaultParams(), format.DefaultPackSize)
	if err != nil {
		return nil, err
	}
	r, _, err := OpenOrCreate(ctx, be, cfg)
	return r, err
}

// OpenOrCreate opens the repository on be or, when be holds nothing yet
// (IsEmpty), creates one with cfg; created reports which. It is the one
// rule for where a repository may be created, used by the local store,
// by a first push to a remote and by `statepack init`. A backend holding
// anything else is refused with Open's error (ErrNotRepository). Two
// processes creating one repository at once both end with the one whose
// config was written first.
func OpenOrCreate(ctx context.Context, be backend.Backend, cfg format.Config) (r *Repository, created bool, err error) {
	r, err = Open(ctx, be)
	if !errors.Is(err, format.ErrNotRepository) {
		return r, false, err
	}
	if !IsEmpty(ctx, be) {
		// Another process may have created the repository between the
		// read of config and the listing: then config is there now.
		if r, rerr := Open(ctx, be); rerr == nil {
			return r, false, nil
		}
		return nil, false, err
	}
	r, err = Init(ctx, be, cfg)
	if errors.Is(err, backend.ErrConflict) {
		r, err = Open(ctx, be) // created concurrently
		return r, false, err
	}
	return r, err == nil, err
}

var errStop = errors.New("stop")

// IsEmpty reports whether a backend holds no object yet, apart from the
// local stat cache (which is not repository content): where a repository
// may be created.
func IsEmpty(ctx context.Context, be backend.Backend) bool {
	empty := true
	_ = be.List(ctx, "", func(oi backend.ObjectInfo) error {
		if strings.HasPrefix(oi.Name, "cache/") {
			return nil
		}
		empty = false
		return errStop
	})
	return empty
}

// Backend is where the repository lives.
func (r *Repository) Backend() backend.Backend { return r.be }

// Config is the repository's config object.
func (r *Repository) Config() format.Config { return r.cfg }

// Location names the repository for messages.
func (r *Repository) Location() string { return r.be.Location() }

// LoadIndex reads every index object not read yet. Each object is checked
// against its name before it is trusted.
func (r *Repository) LoadIndex(ctx context.Context) (*Index, error) {
	var names []backend.ObjectInfo
	err := r.be.List(ctx, "index/", func(oi backend.ObjectInfo) error {
		if !r.isIndexed(oi.Name) {
			names = append(names, oi)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list index of %s: %w", r.Location(), err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Objects are read in parallel but added in name order, in one sort
	// and merge: the first location of a block is the same in every run,
	// and tens of thousands of entries cost no per-entry map insertions.
	objects := make([][]format.IndexPack, len(names))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, oi := range names {
		g.Go(func() error {
			packs, err := r.ReadIndexNamed(gctx, oi.Name, oi.Size)
			objects[i] = packs
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	r.Index().AddPacks(slices.Concat(objects...))
	for _, oi := range names {
		r.MarkIndexed(oi.Name)
	}
	return r.Index(), nil
}

// Index is the in-memory index as loaded so far.
func (r *Repository) Index() *Index {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.idx
}

// resetIndex forgets the loaded index after prune or repair rewrote it.
func (r *Repository) ResetIndex() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.idx, r.indexed = NewIndex(), map[string]bool{}
}

func (r *Repository) MarkIndexed(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.indexed[name] = true
}

func (r *Repository) isIndexed(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.indexed[name]
}

// ReadIndexNamed reads and decodes index object name, whose size a
// listing gave (-1 for none): one listed over MaxIndexObjectSize is
// refused before it is read.
func (r *Repository) ReadIndexNamed(ctx context.Context, name string, size int64) ([]format.IndexPack, error) {
	id, err := format.ParseID(strings.TrimPrefix(name, "index/"))
	if err != nil {
		return nil, fmt.Errorf("%s: unexpected object %s", r.Location(), name)
	}
	if size > format.MaxIndexObjectSize {
		return nil, oversized(name, r.Location(), format.MaxIndexObjectSize)
	}
	data, err := r.readVerified(ctx, name, id, format.MaxIndexObjectSize)
	if err != nil {
		return nil, err
	}
	packs, err := format.DecodeIndex(data)
	if err != nil {
		return nil, fmt.Errorf("%s: index %s: %w", r.Location(), id.Short(), err)
	}
	return packs, nil
}

// ReadIndexObject reads and decodes one index object by id.
func (r *Repository) ReadIndexObject(ctx context.Context, id format.ID) ([]format.IndexPack, error) {
	return r.ReadIndexNamed(ctx, format.IndexName(id), -1)
}

// readVerified reads a whole object (at most limit bytes) and checks that
// it hashes to id (invariant 2).
func (r *Repository) readVerified(ctx context.Context, name string, id format.ID, limit int64) ([]byte, error) {
	return r.readVerifiedHint(ctx, name, id, limit, -1)
}

// readVerifiedHint is readVerified for an object whose size a listing
// gave (hint; -1 for none), which presizes the buffer when the reader
// cannot tell its own size (an S3 response behind the retry and counting
// wrappers).
func (r *Repository) readVerifiedHint(ctx context.Context, name string, id format.ID, limit, hint int64) ([]byte, error) {
	return r.readVerifiedWith(ctx, name, id, limit, func(rc io.Reader) ([]byte, error) { return readAllSized(rc, limit, hint) })
}

// readVerifiedWith is readVerified reading the object with read, which
// returns at most limit+1 bytes.
func (r *Repository) readVerifiedWith(ctx context.Context, name string, id format.ID, limit int64, read func(io.Reader) ([]byte, error)) ([]byte, error) {
	if err := r.refuseOversized(name, limit); err != nil {
		return nil, err
	}
	rc, err := r.be.Get(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("read %s from %s: %w", name, r.Location(), err)
	}
	defer rc.Close()
	data, err := read(rc)
	if errors.Is(err, errTooLarge) || err == nil && int64(len(data)) > limit {
		return nil, oversized(name, r.Location(), limit)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s from %s: %w", name, r.Location(), err)
	}
	if format.Hash(data) != id {
		return nil, &format.IntegrityError{Object: name, Location: r.Location()}
	}
	return data, nil
}

// readAllSized reads at most limit+1 bytes, presizing the buffer when the
// reader knows its size (a local file, a cached copy) or, failing that,
// to hint, a size a listing gave, which spares the repeated growth of
// io.ReadAll on multi-megabyte index objects. A listing is untrusted, so
// the hint presizes at most maxSizeHint; past it the buffer grows with
// what is actually read.
func readAllSized(rc io.Reader, limit, hint int64) ([]byte, error) {
	size, known := readerSize(rc)
	if !known {
		size = min(hint, maxSizeHint)
	}
	if known && size > limit {
		// The reader's own size (a file's stat): an object over its bound
		// is refused before a byte of it is read.
		return nil, errTooLarge
	}
	if size < 0 || size > limit {
		return readAllReusing(rc, limit, nil)
	}
	// One byte more than expected tells a longer object from this one
	// without the doubled buffer bytes.Buffer.ReadFrom makes to find EOF.
	return readAllReusing(rc, limit, make([]byte, 0, size+1))
}

// readAllReusing reads at most limit+1 bytes of rc into buf's storage,
// growing it only as bytes arrive, as io.ReadAll does: a reader of many
// objects of about one size allocates once, and an untrusted size never
// allocates at all.
func readAllReusing(rc io.Reader, limit int64, buf []byte) ([]byte, error) {
	lr := io.LimitReader(rc, limit+1)
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// errTooLarge: an object's size, as its reader tells it, is over the
// bound of what is read of it.
var errTooLarge = errors.New("object over its size bound")

// oversized is the error for an object larger than any statepack writes
// of its kind (invariant 5: refused before it is read, where its size is
// known first).
func oversized(name, location string, limit int64) error {
	return fmt.Errorf("%s on %s is larger than %d bytes, more than statepack writes: %w", name, location, limit, format.ErrCorrupt)
}

// maxSizeHint bounds the buffer a listed size presizes: above any index
// object statepack writes (about 3 MiB).
const maxSizeHint = 8 << 20

// ReadBlock reads one block, verified.
func (r *Repository) ReadBlock(ctx context.Context, id format.ID, dst []byte) ([]byte, error) {
	loc, ok := r.Index().Lookup(id)
	if !ok {
		return nil, fmt.Errorf("block %s is not in the index of %s: %w", id.Short(), r.Location(), backend.ErrNotFound)
	}
	stored, err := r.ReadStored(ctx, loc, nil)
	if err != nil {
		return nil, err
	}
	return r.DecodeBlock(id, loc, stored, dst)
}

// BlockID is the id of a block of content: the one place where block ids
// are computed, by save, by restore's comparisons and for list blocks.
// The ids of all-zero blocks (sparse files, preallocated databases) are
// cached by length: checking for zeros is far cheaper than hashing.
func (r *Repository) BlockID(data []byte) format.ID {
	if len(data) < 4096 || !format.AllZero(data) {
		return format.Hash(data)
	}
	if id, ok := r.zeroIDs.Load(len(data)); ok {
		return id.(format.ID)
	}
	id := format.Hash(data)
	r.zeroIDs.Store(len(data), id)
	return id
}

// DecodeBlock turns a block's stored bytes, as read from its pack, back
// into its content and verifies it against its id (invariant 2): the one
// place where that happens, for every reader of blocks.
func (r *Repository) DecodeBlock(id format.ID, loc format.Location, stored, dst []byte) ([]byte, error) {
	return format.DecodeBlock(id, loc, stored, dst)
}

// ReadStored reads a block's stored bytes from its pack.
func (r *Repository) ReadStored(ctx context.Context, loc format.Location, buf []byte) ([]byte, error) {
	return r.ReadInto(ctx, format.PackName(loc.Pack), int64(loc.Offset), int64(loc.Stored), buf)
}

// readInto reads n bytes of an object at off, into buf when it is large
// enough: the one ranged read behind blocks, trailers and transfer spans.
func (r *Repository) ReadInto(ctx context.Context, name string, off, n int64, buf []byte) ([]byte, error) {
	rc, err := r.be.GetRange(ctx, name, off, n)
	if err != nil {
		return nil, fmt.Errorf("read %s from %s: %w", name, r.Location(), err)
	}
	defer rc.Close()
	if int64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(rc, buf); err != nil {
		return nil, fmt.Errorf("read %s from %s: %w", name, r.Location(), err)
	}
	return buf, nil
}

// LoadManifest reads, verifies and decodes a snapshot, and reads the block
// lists of its large files: every file entry has its Blocks.
func (r *Repository) LoadManifest(ctx context.Context, id format.ID) (*format.Manifest, error) {
	m, err := r.LoadManifestUnexpanded(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := r.ExpandLists(ctx, m); err != nil {
		return nil, fmt.Errorf("snapshot %s on %s: %w", id.Short(), r.Location(), err)
	}
	return m, nil
}

// LoadManifestUnexpanded reads, verifies and decodes a snapshot without
// reading block lists: files with Lists have no Blocks. History walks use
// it, since they need parents, times and sizes, not blocks.
func (r *Repository) LoadManifestUnexpanded(ctx context.Context, id format.ID) (*format.Manifest, error) {
	data, err := r.readVerifiedLarge(ctx, format.SnapshotName(id), id, format.MaxManifestSize)
	if err != nil {
		return nil, err
	}
	m, err := format.DecodeManifest(data)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s on %s: %w", id.Short(), r.Location(), err)
	}
	return m, nil
}

// LoadManifestBytes returns a snapshot's verified bytes, for copying.
func (r *Repository) LoadManifestBytes(ctx context.Context, id format.ID) ([]byte, error) {
	return r.readVerifiedLarge(ctx, format.SnapshotName(id), id, format.MaxManifestSize)
}

// PutManifestBytes stores an encoded manifest and returns its id.
func (r *Repository) PutManifestBytes(ctx context.Context, data []byte) (format.ID, error) {
	id := format.Hash(data)
	if err := r.be.Put(ctx, format.SnapshotName(id), bytes.NewReader(data), int64(len(data))); err != nil {
		return id, fmt.Errorf("write snapshot to %s: %w", r.Location(), err)
	}
	return id, nil
}

// PutPack stores a finished pack.
func (r *Repository) PutPack(ctx context.Context, id format.ID, data []byte) error {
	if err := r.be.Put(ctx, format.PackName(id), bytes.NewReader(data), int64(len(data))); err != nil {
		return fmt.Errorf("write pack to %s: %w", r.Location(), err)
	}
	return nil
}

// PutIndex stores index objects for packs that are already complete and
// adds them to the in-memory index. It returns the names written.
func (r *Repository) PutIndex(ctx context.Context, packs []format.IndexPack) ([]string, error) {
	var names []string
	packs = format.SplitIndexPacks(packs)
	for len(packs) > 0 {
		n, entries := 0, 0
		// A pack counts as one entry at least: its id and count take
		// room too, so an object stays under maxIndexObjectSize.
		for n < len(packs) && (n == 0 || entries+max(len(packs[n].Entries), 1) <= format.MaxIndexEntries) {
			entries += max(len(packs[n].Entries), 1)
			n++
		}
		name, err := r.putIndexObject(ctx, packs[:n])
		if err != nil {
			return names, err
		}
		names = append(names, name)
		packs = packs[n:]
	}
	return names, nil
}

func (r *Repository) putIndexObject(ctx context.Context, packs []format.IndexPack) (string, error) {
	data := format.EncodeIndex(packs)
	name := format.IndexName(format.Hash(data))
	if err := r.be.Put(ctx, name, bytes.NewReader(data), int64(len(data))); err != nil {
		return name, fmt.Errorf("write index to %s: %w", r.Location(), err)
	}
	for _, p := range packs {
		r.Index().AddPack(p.Pack, p.Entries)
	}
	r.MarkIndexed(name)
	r.find.KeepIndexCopy(format.Hash(data), data)
	return name, nil
}
