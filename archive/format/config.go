package format

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/statepack/statepack/chunker"
)

// FormatVersion is the repository format this build reads and writes.
const FormatVersion = 1

// DefaultPackSize is the target size of a pack: large enough that S3
// request costs vanish, small enough that pulling a few blocks by range and
// repacking stay cheap.
const DefaultPackSize = 16 << 20

// MaxPackTarget is the largest pack size target a new repository takes.
// Packs are built in memory (a save fills one per compressing core, and
// one more while the last is written), so the target bounds a save's
// memory: at 64 MiB a save of 1 GiB peaks near 170 MiB, at 256 MiB near
// 480. Configs with larger targets (up to 1 GiB, which Validate accepts,
// so that every existing repository opens) are still read; writers close
// their packs at this size.
const MaxPackTarget = 64 << 20

// PackTarget is the size at which writers close a pack: the config's
// target, at most MaxPackTarget.
func (c Config) PackTarget() int { return min(c.PackSize, MaxPackTarget) }

// Config is the repository's `config` object. It fixes what must stay the
// same for the repository's lifetime so that equal content yields equal
// block ids on every machine.
type Config struct {
	Version  int           `json:"version"`
	ID       string        `json:"id"`
	Chunker  ChunkerConfig `json:"chunker"`
	PackSize int           `json:"pack_size"`
	// A zstd_level, which older configs carry, is
	// ignored: every block is compressed at zstd's fastest level, and
	// decompression does not depend on the level.
}

// ErrNotRepository: the location holds no statepack repository.
var ErrNotRepository = errors.New("not a statepack repository")

// ErrNewerFormat: the repository was written by a newer statepack.
var ErrNewerFormat = errors.New("repository format is newer than this statepack")

// NewConfig returns a config with a fresh repository id.
func NewConfig(p chunker.Params, packSize int) (Config, error) {
	if err := p.Validate(); err != nil {
		return Config{}, err
	}
	if packSize <= 0 {
		packSize = DefaultPackSize
	}
	if packSize < 1<<20 || packSize > MaxPackTarget {
		return Config{}, fmt.Errorf("pack size of %d bytes is outside 1 MiB..64 MiB", packSize)
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Config{}, err
	}
	cc := ChunkerConfig{Min: p.Min, Avg: p.Avg, Max: p.Max, SQLitePages: true}
	return Config{Version: FormatVersion, ID: hex.EncodeToString(b[:]), Chunker: cc, PackSize: packSize}, nil
}

// ChunkerConfig records the chunker parameters in the config object.
type ChunkerConfig struct {
	Min int `json:"min"`
	Avg int `json:"avg"`
	Max int `json:"max"`
	// SQLitePages cuts SQLite databases at their page boundaries instead
	// of by content (see saver.PageBlockSize). Absent, and so false, in
	// repositories made before it existed, which keep cutting as they did.
	SQLitePages bool `json:"sqlite_pages,omitempty"`
}

// Params converts to the chunker's type.
func (c ChunkerConfig) Params() chunker.Params {
	return chunker.Params{Min: c.Min, Avg: c.Avg, Max: c.Max}
}

// Validate checks a config read from a backend: it may come from anyone.
func (c Config) Validate() error {
	if c.Version > FormatVersion {
		return fmt.Errorf("%w (version %d; this statepack reads version %d): upgrade statepack", ErrNewerFormat, c.Version, FormatVersion)
	}
	if c.Version < 1 {
		return fmt.Errorf("%w: config has version %d", ErrNotRepository, c.Version)
	}
	if err := c.Chunker.Params().Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if c.PackSize < 1<<20 || c.PackSize > 1<<30 {
		return fmt.Errorf("config: pack size %d outside 1 MiB..1 GiB", c.PackSize)
	}
	return nil
}

// EncodeConfig returns the bytes of the config object.
func EncodeConfig(c Config) ([]byte, error) {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// DecodeConfig reads a config object and checks it (Validate). Bytes that
// are not a config are ErrNotRepository; the message never quotes them
// (an object's bytes never appear in an error).
func DecodeConfig(data []byte) (Config, error) {
	var c Config
	if json.NewDecoder(bytes.NewReader(data)).Decode(&c) != nil {
		return Config{}, fmt.Errorf("config is damaged (%d bytes that are not a statepack config): %w", len(data), ErrNotRepository)
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}
