package archive

// ownedPaths are the repository's directory (when it is local) and the
// cache directory.
func (r *Repository) ownedPaths(cacheDir string) []OwnedPath {
	var out []OwnedPath
	if d, ok := UnwrapDir(r.be); ok {
		out = append(out, OwnedPath{What: "the store", Path: d.Root()})
	}
	if cacheDir != "" {
		out = append(out, OwnedPath{What: "the cache", Path: cacheDir})
	}
	return out
}
