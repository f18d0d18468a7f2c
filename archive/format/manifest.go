package format

import (
	"encoding/binary"
	"errors"
	"fmt"

	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// EntryType is what a manifest entry describes.
type EntryType uint8

// Entry types, as stored.
const (
	TypeFile    EntryType = 'f'
	TypeDir     EntryType = 'd'
	TypeSymlink EntryType = 'l'
)

func (t EntryType) String() string {
	switch t {
	case TypeFile:
		return "file"
	case TypeDir:
		return "dir"
	case TypeSymlink:
		return "symlink"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// BlockRef is one block of a file, in order.
type BlockRef struct {
	ID   ID
	Size uint32 // raw length
}

// Entry is one path of a snapshot.
type Entry struct {
	Path   string // relative slash path, clean, never "." or ".."
	Type   EntryType
	Mode   uint32 // permission and special bits (07777)
	UID    uint32
	GID    uint32
	MTime  int64 // nanoseconds since the Unix epoch
	Size   int64
	Target string // symlink target
	Blocks []BlockRef
	// Lists are the list blocks holding Blocks when the file has more
	// than ListEntries blocks (listcodec.go). A decoded manifest has
	// Blocks only once Repository.ExpandLists has read them;
	// Repository.LoadManifest does that.
	Lists []BlockRef
}

// Manifest is one snapshot: what a state looked like at one save.
type Manifest struct {
	Version int
	Parent  ID // zero when this is the first version (or history is shallow)
	State   string
	Message string
	Labels  map[string]string
	Created time.Time
	Host    string
	User    string
	Tool    string // statepack version that wrote it
	Entries []Entry
}

// Limits on decoded manifests, checked before allocation (invariant 5).
const (
	MaxPathLen      = 4096
	maxStringLen    = 64 << 10
	maxLabels       = 256
	MaxManifestSize = 1 << 30
)

const manifestMagic = "SPM1"

// Manifest encodings: version 1 lists every file's blocks inline; version
// 2 adds a kind byte to each file, 0 for inline blocks and 1 for list
// blocks. A manifest is written as version 1 when no file needs lists, so
// that what older statepacks could read they still can.
const (
	ManifestV1 = 1
	ManifestV2 = 2

	fileInline = 0
	FileLists  = 1
)

// manifestVersion is the encoding EncodeManifest uses for m.
func manifestVersion(m *Manifest) int {
	for i := range m.Entries {
		if len(m.Entries[i].Lists) > 0 {
			return ManifestV2
		}
	}
	return ManifestV1
}

// AllBlocks calls fn for every block m references, list blocks included,
// in entry order, once per reference: what prune keeps, verify checks and
// push and pull move.
func (m *Manifest) AllBlocks(fn func(e *Entry, b BlockRef)) {
	for i := range m.Entries {
		e := &m.Entries[i]
		for _, b := range e.Lists {
			fn(e, b)
		}
		for _, b := range e.Blocks {
			fn(e, b)
		}
	}
}

// EncodeManifest serialises m. Entries must be sorted by path; each path is
// stored as the length of the prefix it shares with the previous path plus
// the rest, which makes deep trees compact and decoding allocation-light.
func EncodeManifest(m *Manifest) []byte {
	b := make([]byte, 0, 256+len(m.Entries)*64)
	b = append(b, manifestMagic...)
	version := manifestVersion(m)
	b = binary.AppendUvarint(b, uint64(version))
	if m.Parent.IsZero() {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = append(b, m.Parent[:]...)
	}
	for _, s := range []string{m.State, m.Message, m.Host, m.User, m.Tool} {
		b = AppendString(b, s)
	}
	b = binary.AppendVarint(b, m.Created.UnixNano())
	keys := sortedKeys(m.Labels)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = AppendString(AppendString(b, k), m.Labels[k])
	}
	b = binary.AppendUvarint(b, uint64(len(m.Entries)))
	prev := ""
	for i := range m.Entries {
		b = appendEntry(b, &m.Entries[i], prev, version)
		prev = m.Entries[i].Path
	}
	return b
}

func appendEntry(b []byte, e *Entry, prev string, version int) []byte {
	shared := commonPrefix(prev, e.Path)
	b = binary.AppendUvarint(b, uint64(shared))
	b = AppendString(b, e.Path[shared:])
	b = append(b, byte(e.Type))
	b = binary.AppendUvarint(b, uint64(e.Mode))
	b = binary.AppendUvarint(b, uint64(e.UID))
	b = binary.AppendUvarint(b, uint64(e.GID))
	b = binary.AppendVarint(b, e.MTime)
	switch e.Type {
	case TypeSymlink:
		b = AppendString(b, e.Target)
	case TypeFile:
		b = binary.AppendUvarint(b, uint64(e.Size))
		refs := e.Blocks
		if version >= ManifestV2 {
			kind := byte(fileInline)
			if len(e.Lists) > 0 {
				kind, refs = FileLists, e.Lists
			}
			b = append(b, kind)
		}
		b = binary.AppendUvarint(b, uint64(len(refs)))
		for _, r := range refs {
			b = append(b, r.ID[:]...)
			b = binary.AppendUvarint(b, uint64(r.Size))
		}
	}
	return b
}

// AppendString appends s as the manifest encodes strings: its length as
// a uvarint, then its bytes.
func AppendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// Decoder reads a manifest, failing with a bounded error on any bad field.
// After the first error every read returns a zero value, so a caller reads
// a whole record and checks Err once.
type Decoder struct {
	B       []byte // what is left to read
	Err     error  // the first error, which ends reading
	version int
	listed  int64 // blocks the list blocks read so far expand to
	lists   int64 // list block references read so far
}

var errShort = errors.New("truncated")

// Uvarint reads an unsigned varint, refusing one over max.
func (d *Decoder) Uvarint(max uint64) uint64 {
	v := readVarint(d, binary.Uvarint)
	if v > max {
		d.Err = fmt.Errorf("value %d over limit %d", v, max)
		return 0
	}
	return v
}

// Varint reads a signed varint.
func (d *Decoder) Varint() int64 { return readVarint(d, binary.Varint) }

// readVarint reads one varint with read (binary.Uvarint or Varint); after
// an error, it reads nothing and returns 0.
func readVarint[T int64 | uint64](d *Decoder, read func([]byte) (T, int)) T {
	if d.Err != nil {
		return 0
	}
	v, n := read(d.B)
	if n <= 0 {
		d.Err = errShort
		return 0
	}
	d.B = d.B[n:]
	return v
}

func (d *Decoder) bytes(n int) []byte {
	if d.Err != nil {
		return nil
	}
	if n > len(d.B) {
		d.Err = errShort
		return nil
	}
	v := d.B[:n]
	d.B = d.B[n:]
	return v
}

// Str reads a string written by AppendString, refusing one longer than
// max bytes before it is allocated.
func (d *Decoder) Str(max int) string {
	n := d.Uvarint(uint64(max))
	return string(d.bytes(int(n)))
}

// DecodeManifest parses and validates a manifest from untrusted bytes.
func DecodeManifest(data []byte) (*Manifest, error) {
	if len(data) > MaxManifestSize {
		return nil, fmt.Errorf("manifest of %d bytes over limit: %w", len(data), ErrCorrupt)
	}
	if len(data) < 4 || string(data[:4]) != manifestMagic {
		return nil, fmt.Errorf("manifest header: %w", ErrCorrupt)
	}
	d := &Decoder{B: data[4:]}
	m := &Manifest{}
	m.Version = int(d.Uvarint(1 << 16))
	if d.Err == nil && (m.Version < ManifestV1 || m.Version > ManifestV2) {
		return nil, fmt.Errorf("manifest version %d: %w", m.Version, ErrNewerFormat)
	}
	d.version = m.Version
	if flag := d.bytes(1); d.Err == nil && flag[0] == 1 {
		copy(m.Parent[:], d.bytes(32))
	}
	for _, s := range []*string{&m.State, &m.Message, &m.Host, &m.User, &m.Tool} {
		*s = d.Str(maxStringLen)
	}
	m.Created = time.Unix(0, d.Varint()).UTC()
	if nl := int(d.Uvarint(maxLabels)); nl > 0 {
		m.Labels = make(map[string]string, nl)
		for i := 0; i < nl; i++ {
			k := d.Str(maxStringLen)
			m.Labels[k] = d.Str(maxStringLen)
		}
	}
	// Every entry takes at least 8 bytes, which bounds the count.
	n := d.Uvarint(uint64(len(d.B) / 8))
	if d.Err != nil {
		return nil, fmt.Errorf("manifest header: %v: %w", d.Err, ErrCorrupt)
	}
	m.Entries = make([]Entry, n)
	v := newTreeValidator()
	prev := ""
	for i := range m.Entries {
		e := &m.Entries[i]
		if err := d.entry(e, prev); err != nil {
			return nil, fmt.Errorf("manifest entry %d: %v: %w", i, err, ErrCorrupt)
		}
		if err := v.check(e, prev, i == 0); err != nil {
			return nil, fmt.Errorf("manifest entry %q: %v: %w", e.Path, err, ErrCorrupt)
		}
		prev = e.Path
	}
	if len(d.B) != 0 {
		return nil, fmt.Errorf("manifest has %d trailing bytes: %w", len(d.B), ErrCorrupt)
	}
	if d.listed > d.lists*ListEntries {
		return nil, fmt.Errorf("its %d block lists expand to %d blocks, more than the %d (%d a list) statepack writes: %w", d.lists, d.listed, d.lists*ListEntries, ListEntries, ErrCorrupt)
	}
	return m, nil
}

func (d *Decoder) entry(e *Entry, prev string) error {
	shared := int(d.Uvarint(uint64(len(prev))))
	rest := d.bytes(int(d.Uvarint(MaxPathLen)))
	if d.Err != nil {
		return d.Err
	}
	if shared+len(rest) > MaxPathLen {
		return fmt.Errorf("path longer than %d bytes", MaxPathLen)
	}
	e.Path = prev[:shared] + string(rest)
	t := d.bytes(1)
	if d.Err != nil {
		return d.Err
	}
	e.Type = EntryType(t[0])
	e.Mode = uint32(d.Uvarint(0o7777))
	e.UID = uint32(d.Uvarint(1<<32 - 1))
	e.GID = uint32(d.Uvarint(1<<32 - 1))
	e.MTime = d.Varint()
	switch e.Type {
	case TypeSymlink:
		e.Target = d.Str(MaxPathLen)
	case TypeFile:
		return d.fileBlocks(e)
	case TypeDir:
	default:
		return fmt.Errorf("unknown entry type %d", t[0])
	}
	return d.Err
}

func (d *Decoder) fileBlocks(e *Entry) error {
	e.Size = int64(d.Uvarint(1 << 50))
	if d.version >= ManifestV2 {
		switch kind := d.bytes(1); {
		case d.Err != nil:
			return d.Err
		case kind[0] == FileLists:
			return d.fileLists(e)
		case kind[0] != fileInline:
			return fmt.Errorf("unknown file kind %d", kind[0])
		}
	}
	nb := int(d.Uvarint(uint64(len(d.B) / 33)))
	if d.Err != nil {
		return d.Err
	}
	if nb > 0 {
		e.Blocks = make([]BlockRef, nb)
	}
	var total int64
	for j := range e.Blocks {
		copy(e.Blocks[j].ID[:], d.bytes(32))
		e.Blocks[j].Size = uint32(d.Uvarint(MaxBlockSize))
		if d.Err == nil && e.Blocks[j].Size == 0 {
			return errors.New("empty block")
		}
		total += int64(e.Blocks[j].Size)
	}
	if d.Err == nil && total != e.Size {
		return fmt.Errorf("blocks add up to %d bytes, size says %d", total, e.Size)
	}
	return d.Err
}

// fileLists reads the list blocks of a file. Their sizes tell what they
// will expand to, which is bounded here, before anything is read or
// allocated for them (invariant 5): per file, by its size (every block
// holds at least one byte and at most MaxBlockSize), and per manifest,
// by what statepack writes (DecodeManifest: ListEntries blocks per list
// reference, however often one list block is named), with
// MaxExpandedBlocks as a ceiling. CheckListSum checks the sum of sizes.
func (d *Decoder) fileLists(e *Entry) error {
	nl := int(d.Uvarint(uint64(len(d.B) / 33)))
	if d.Err != nil {
		return d.Err
	}
	if nl == 0 {
		return errors.New("file with an empty list of block lists")
	}
	e.Lists = make([]BlockRef, nl)
	var blocks int64
	for j := range e.Lists {
		l := &e.Lists[j]
		copy(l.ID[:], d.bytes(32))
		l.Size = uint32(d.Uvarint(MaxListEntries * ListEntrySize))
		if d.Err != nil {
			return d.Err
		}
		if l.Size == 0 || l.Size%ListEntrySize != 0 {
			return fmt.Errorf("block list of %d bytes", l.Size)
		}
		blocks += int64(l.Size / ListEntrySize)
		if d.listed += int64(l.Size / ListEntrySize); d.listed > MaxExpandedBlocks {
			return fmt.Errorf("block lists name more than %d blocks", MaxExpandedBlocks)
		}
	}
	d.lists += int64(nl)
	if blocks > e.Size || blocks*MaxBlockSize < e.Size {
		return fmt.Errorf("block lists name %d blocks for a file of %d bytes", blocks, e.Size)
	}
	return nil
}

// treeValidator enforces that a manifest describes a tree that can be
// written inside DATA_DIR and nowhere else: clean relative paths, strictly
// sorted (so no duplicates), and every parent a directory of the same
// manifest — which also rules out a path beneath a symlink it creates.
type treeValidator struct {
	dirs map[string]struct{}
}

func newTreeValidator() *treeValidator {
	return &treeValidator{dirs: map[string]struct{}{}}
}

func (v *treeValidator) check(e *Entry, prev string, first bool) error {
	if err := ValidPath(e.Path); err != nil {
		return err
	}
	if !first && e.Path <= prev {
		return errors.New("paths not strictly sorted (duplicate or out of order)")
	}
	if i := strings.LastIndexByte(e.Path, '/'); i >= 0 {
		if _, ok := v.dirs[e.Path[:i]]; !ok {
			dir := e.Path[:i]
			return fmt.Errorf("parent %q is not a directory of this snapshot", dir)
		}
	}
	if e.Type == TypeDir {
		v.dirs[e.Path] = struct{}{}
	}
	if e.Type == TypeSymlink && (e.Target == "" || strings.ContainsRune(e.Target, 0)) {
		return errors.New("bad symlink target")
	}
	return nil
}

// ValidPath accepts what a manifest may name: a clean, relative slash path
// of valid UTF-8 with no NUL, no "." or ".." segment, no leading slash,
// no segment named as restore's temporary files (IsRestoreTemp).
// It scans the path once without allocating: manifests hold many of them.
func ValidPath(p string) error {
	switch {
	case p == "" || p == "." || p == "..":
		return errors.New("empty or dot path")
	case p[0] == '/':
		return errors.New("absolute path")
	case !utf8.ValidString(p):
		return errors.New("path is not valid UTF-8")
	case strings.IndexByte(p, 0) >= 0:
		return errors.New("path contains NUL")
	}
	for start := 0; start <= len(p); {
		end := strings.IndexByte(p[start:], '/')
		if end < 0 {
			end = len(p)
		} else {
			end += start
		}
		switch seg := p[start:end]; seg {
		case "..":
			return errors.New("path leaves the directory")
		case "", ".":
			return errors.New("path is not clean")
		}
		if IsRestoreTemp(p[start:end]) {
			// Walks treat such a name as restore's leftover: a snapshot
			// naming one would be removed, unsaved, by the next restore.
			return errors.New("path has the name of a restore's temporary file")
		}
		start = end + 1
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
