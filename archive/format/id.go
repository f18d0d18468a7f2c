package format

import (
	"encoding/hex"
	"fmt"
	"io"

	"github.com/zeebo/blake3"
)

// ID names every block and object: the BLAKE3-256 of its bytes.
type ID [32]byte

// Hash returns the ID of data.
func Hash(data []byte) ID { return ID(blake3.Sum256(data)) }

// String is the lowercase hex form used in object names and output.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short is the first 8 hex digits, for tables.
func (id ID) Short() string { return hex.EncodeToString(id[:4]) }

// IsZero reports whether id is unset.
func (id ID) IsZero() bool { return id == ID{} }

// ParseID parses a full 64-digit lowercase hex id.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 64 {
		return id, fmt.Errorf("invalid id %q: want 64 hex digits", Clip(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return id, fmt.Errorf("invalid id %q: want lowercase hex", s)
		}
	}
	_, _ = hex.Decode(id[:], []byte(s))
	return id, nil
}

// Object name helpers: the one place that knows the repository layout.

// PackName is the object name of a pack.
func PackName(id ID) string { s := id.String(); return "packs/" + s[:2] + "/" + s }

// IndexName is the object name of an index object.
func IndexName(id ID) string { return "index/" + id.String() }

// SnapshotName is the object name of a snapshot's manifest.
func SnapshotName(id ID) string { return "snapshots/" + id.String() }

// RefName is the object name of the ref that holds a state's head.
func RefName(state string) string {
	return "refs/" + state
}

// Clip shortens untrusted text (a ref's content may be megabytes) for an
// error message.
func Clip(s string) string {
	if len(s) <= 80 {
		return s
	}
	return s[:80] + "..."
}

// HashOf returns the id of the bytes written to h.
func HashOf(h *blake3.Hasher) ID {
	var id ID
	h.Sum(id[:0])
	return id
}

// MaxStateName bounds a state name's length.
const MaxStateName = 128

// HashStream returns the id of the bytes r yields: a pack is checked
// against its name as it streams from its file, not held whole.
func HashStream(r io.Reader) (ID, error) {
	h := blake3.New()
	if _, err := io.Copy(h, r); err != nil {
		return ID{}, err
	}
	return HashOf(h), nil
}
