package archive

import (
	"context"

	"github.com/klauspost/compress/zstd"
)

// RemoveAllLocks clears locks a simulated crash left behind.
func RemoveAllLocks(t interface{ Fatal(...any) }, r *Repository) {
	if _, err := r.RemoveLocks(context.Background(), true); err != nil {
		t.Fatal(err)
	}
}

// BlockEncoderOptions are the save pipeline's zstd options for blocks of
// at most maxBlock bytes.
func BlockEncoderOptions(maxBlock int) []zstd.EOption { return blockEncoderOptions(maxBlock) }
