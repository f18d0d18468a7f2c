package archive

import (
	"context"

	"github.com/klauspost/compress/zstd"
)

func zstdEncoderForTest(data []byte) []byte {
	enc, _ := zstd.NewWriter(nil)
	defer enc.Close()
	return enc.EncodeAll(data, nil)
}

// BlockEncoderOptions are the save pipeline's zstd options for blocks of
// at most maxBlock bytes.
func BlockEncoderOptions(maxBlock int) []zstd.EOption { return blockEncoderOptions(maxBlock) }

// SetAfterReadHook installs a hook run after a file's content was read.
func SetAfterReadHook(fn func(string)) { testHookAfterRead = fn }

// RemoveAllLocks clears locks a simulated crash left behind.
func RemoveAllLocks(t interface{ Fatal(...any) }, r *Repository) {
	if _, err := r.RemoveLocks(context.Background(), true); err != nil {
		t.Fatal(err)
	}
}
