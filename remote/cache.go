package remote

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/statepack/statepack/archive/format"
)

// cacheDirFor is where what is learnt of a remote lives under the local
// store's cache: the lookup cache of its index (archive.Repository.UseLookupCache).
func cacheDirFor(storeCache, location string) string {
	return filepath.Join(storeCache, fmt.Sprintf("remote-%s", format.Hash([]byte(location)).Short()))
}

// removeLegacyIndexCopies deletes the copies of every index object that
// earlier versions kept in index/ of a remote's cache directory: the
// lookup cache replaces them (and keeps copies only of the objects it
// has not merged yet), and on a remote of millions of blocks they took
// as much disk as its whole index.
func removeLegacyIndexCopies(dir string) {
	_ = os.RemoveAll(filepath.Join(dir, "index"))
}
