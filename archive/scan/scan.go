package scan

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/statepack/statepack/archive/format"
)

// FileStat is the part of lstat(2) that save and restore compare.
type FileStat struct {
	Size  int64
	MTime int64
	CTime int64
	Ino   uint64
	Mode  uint32
	UID   uint32
	GID   uint32
}

// StatOf takes the FileStat out of an lstat result, mode bits as a
// manifest records them (permissions and setuid, setgid, sticky).
func StatOf(fi fs.FileInfo) FileStat {
	st := FileStat{Size: fi.Size(), MTime: fi.ModTime().UnixNano(), Mode: uint32(fi.Mode().Perm())}
	if fi.Mode()&fs.ModeSetuid != 0 {
		st.Mode |= 0o4000
	}
	if fi.Mode()&fs.ModeSetgid != 0 {
		st.Mode |= 0o2000
	}
	if fi.Mode()&fs.ModeSticky != 0 {
		st.Mode |= 0o1000
	}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.CTime = sys.Ctim.Sec*1e9 + sys.Ctim.Nsec
		st.Ino = sys.Ino
		st.UID, st.GID = sys.Uid, sys.Gid
	}
	return st
}

// Scanned is one path found in DATA_DIR.
type Scanned struct {
	format.Entry
	Stat   FileStat
	ReadAt int64 // when save began reading the content stat describes; 0 if it did not
}

// Filter chooses paths by doublestar globs on their slash path relative to
// DATA_DIR. A pattern that matches a directory covers all beneath it.
// Excludes win over includes; no includes means everything.
type Filter struct {
	Include []string
	Exclude []string
}

// Validate checks the patterns' syntax.
func (f Filter) Validate() error {
	for _, p := range append(slices.Clone(f.Include), f.Exclude...) {
		if !doublestar.ValidatePattern(p) {
			return fmt.Errorf("invalid pattern %q", p)
		}
	}
	return nil
}

// Empty reports whether the filter selects everything.
func (f Filter) Empty() bool { return len(f.Include) == 0 && len(f.Exclude) == 0 }

func matchesSelfOrParent(patterns []string, rel string) bool {
	for p := rel; p != "." && p != "/" && p != ""; p = path.Dir(p) {
		for _, pat := range patterns {
			if ok, _ := doublestar.Match(strings.TrimSuffix(pat, "/"), p); ok {
				return true
			}
		}
	}
	return false
}

// Excluded reports whether rel is left out by an exclude pattern.
func (f Filter) Excluded(rel string) bool { return matchesSelfOrParent(f.Exclude, rel) }

// Selected reports whether rel itself is chosen.
func (f Filter) Selected(rel string) bool {
	if f.Excluded(rel) {
		return false
	}
	return len(f.Include) == 0 || matchesSelfOrParent(f.Include, rel)
}

// ScanTree walks root and returns its entries sorted by path, with the
// ancestors of every selected entry. Sockets, FIFOs and devices are
// skipped and reported through warn.
func ScanTree(root string, f Filter, warn func(string)) ([]Scanned, error) {
	out, _, err := ScanTreeTemps(root, f, warn)
	return out, err
}

// ScanTreeTemps is ScanTree that also returns the temporary files of a
// restore it skipped (slash paths relative to root), which restore
// removes.
func ScanTreeTemps(root string, f Filter, warn func(string)) ([]Scanned, []string, error) {
	out, warnings, temps, err := walkTree(root, f)
	if err != nil {
		return nil, nil, err
	}
	for _, msg := range warnings {
		warn(msg)
	}
	if len(f.Include) > 0 {
		out = keepSelected(out, f)
	}
	slices.SortFunc(out, func(a, b Scanned) int { return strings.Compare(a.Path, b.Path) })
	return out, temps, nil
}

func entryOf(p, rel string, fi fs.FileInfo) (Scanned, bool, error) {
	st := StatOf(fi)
	e := Scanned{Entry: format.Entry{Path: rel, Mode: st.Mode, UID: st.UID, GID: st.GID, MTime: st.MTime}, Stat: st}
	switch {
	case fi.Mode().IsRegular():
		e.Type, e.Size = format.TypeFile, st.Size
	case fi.IsDir():
		e.Type = format.TypeDir
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(p)
		if err != nil {
			return e, false, fmt.Errorf("read symlink %s: %w", p, err)
		}
		e.Type, e.Target = format.TypeSymlink, target
	default:
		return e, false, nil
	}
	return e, true, nil
}

// keepSelected drops what the include patterns do not choose, keeping the
// directories that lead to chosen entries.
func keepSelected(in []Scanned, f Filter) []Scanned {
	need := map[string]bool{}
	for _, e := range in {
		if f.Selected(e.Path) {
			need[e.Path] = true
			for d := path.Dir(e.Path); d != "."; d = path.Dir(d) {
				need[d] = true
			}
		}
	}
	out := in[:0]
	for _, e := range in {
		if need[e.Path] {
			out = append(out, e)
		}
	}
	return out
}

// SameStat reports whether two stats of a file say its content is the
// same: inode, size, mtime and ctime.
func SameStat(a, b FileStat) bool {
	return a.Ino == b.Ino && a.Size == b.Size && a.MTime == b.MTime && a.CTime == b.CTime
}
