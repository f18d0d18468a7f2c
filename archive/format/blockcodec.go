package format

import (
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// IntegrityError names an object whose bytes do not match its id.
type IntegrityError struct {
	Object   string
	Location string
}

func (e *IntegrityError) Error() string {
	return fmt.Sprintf("%s on %s is damaged: its content does not match its id", e.Object, e.Location)
}

// Unwrap makes errors.Is(err, ErrCorrupt) hold.
func (e *IntegrityError) Unwrap() error { return ErrCorrupt }

// zstdDecoder is shared: DecodeAll is safe for concurrent use. The cap limit
// bounds every decompression by the destination's capacity, which callers
// size from the recorded raw length, so a zstd bomb cannot grow memory.
var zstdDecoder, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecodeAllCapLimit(true), zstd.WithDecoderMaxMemory(MaxBlockSize))

// DecodeBlock turns stored bytes back into the block and verifies its id.
// dst is reused when its capacity allows.
func DecodeBlock(id ID, loc Location, stored []byte, dst []byte) ([]byte, error) {
	if cap(dst) < int(loc.Raw) {
		dst = make([]byte, 0, max(loc.Raw, 64<<10))
	}
	var raw []byte
	switch loc.Encoding {
	case EncodingRaw:
		raw = append(dst[:0], stored...)
	case EncodingZstd:
		var err error
		// Bounded by cap(dst): the recorded length, or a buffer reused
		// from an earlier block, never more than MaxBlockSize.
		raw, err = zstdDecoder.DecodeAll(stored, dst[:0])
		if err != nil {
			return nil, fmt.Errorf("block %s: decompress: %v: %w", id.Short(), err, ErrCorrupt)
		}
	default:
		return nil, fmt.Errorf("block %s: unknown encoding %d: %w", id.Short(), loc.Encoding, ErrCorrupt)
	}
	if len(raw) != int(loc.Raw) || Hash(raw) != id {
		return nil, fmt.Errorf("block %s in pack %s: content does not match its id: %w", id.Short(), loc.Pack.Short(), ErrCorrupt)
	}
	return raw, nil
}
