package archive

import (
	"github.com/statepack/statepack/archive/datadir"
	"github.com/statepack/statepack/remote/backend"
)

// ownedPaths are the repository's directory (when it is local) and the
// cache directory.
func (r *Repository) OwnedPaths(cacheDir string) []datadir.OwnedPath {
	var out []datadir.OwnedPath
	if d, ok := backend.As[backend.Local](r.be); ok {
		out = append(out, datadir.OwnedPath{What: "the store", Path: d.Root()})
	}
	if cacheDir != "" {
		out = append(out, datadir.OwnedPath{What: "the cache", Path: cacheDir})
	}
	return out
}
