package archive

import (
	"context"
	"testing"

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

// ForgeLookupClaim rewrites the lookup cache in dir so that it also
// claims block claim, at the location of block like; with stale, the
// claim's bucket keeps its old hash, as bytes damaged in place would.
func ForgeLookupClaim(t *testing.T, dir string, cfg Config, claim, like ID, stale bool) {
	forgeClaim(t, dir, repoKey(cfg), claim, like, stale)
}

// LimitScatterFiles sets how many temporary files s keeps open.
func LimitScatterFiles(s *ScatterRestore, n int) { s.fds.max = n }

// ScatterOpenFiles is how many temporary files s has open.
func ScatterOpenFiles(s *ScatterRestore) int {
	s.fds.mu.Lock()
	defer s.fds.mu.Unlock()
	return len(s.fds.open)
}
