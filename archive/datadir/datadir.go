package datadir

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrUnsafeDataDir is matched (errors.Is) by every refusal of CheckDataDir.
var ErrUnsafeDataDir = errors.New("unsafe DATA_DIR")

// UnsafeDataDirError says why a directory may not be DATA_DIR: restore
// deletes what DATA_DIR holds beyond the snapshot, so a DATA_DIR that
// holds more than an application's data would lose what no snapshot can
// give back (invariant 9).
type UnsafeDataDirError struct {
	Dir    string // DATA_DIR as given
	Reason string // e.g. "is the root directory", "contains the store /s"
	Owner  string // the OwnedPath.What it overlaps, "" for /, a home or system directory
	Root   bool   // it is / (or a link to it): often "$UNSET/"
}

// Error implements error.
func (e *UnsafeDataDirError) Error() string {
	return fmt.Sprintf("refusing DATA_DIR %s: it %s", e.Dir, e.Reason)
}

// Is makes errors.Is(err, ErrUnsafeDataDir) hold.
func (e *UnsafeDataDirError) Is(target error) bool { return target == ErrUnsafeDataDir }

// OwnedPath is a file or directory statepack needs, which DATA_DIR must
// neither be, contain nor lie inside.
type OwnedPath struct {
	What string // "the store", "the cache", "the remote"
	Path string
}

// systemDirs are top-level directories of the system, never an
// application's data directory alone.
var systemDirs = []string{"/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32",
	"/proc", "/run", "/sbin", "/sys", "/tmp", "/usr", "/var"}

// CheckDataDir refuses a DATA_DIR that a restore could not empty without
// destroying what no snapshot gives back: the root directory, a system
// directory, a home directory (or one holding homes), a directory that is,
// contains or lies inside one of owned or statepack's own binary, and the
// root of a mounted file system that holds one of owned. Symlinks are
// resolved first, so a link to / is /. It only reads: an absent DATA_DIR
// is judged by where it would be created.
func CheckDataDir(dataDir string, owned ...OwnedPath) error {
	if dataDir == "" {
		return ErrNoDataDir
	}
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return fmt.Errorf("DATA_DIR %s: %w", dataDir, err)
	}
	real := ResolveExisting(abs)
	owner := ""
	refuse := func(format string, args ...any) error {
		reason := fmt.Sprintf(format, args...)
		if real != abs {
			reason = fmt.Sprintf("resolves to %s, which %s", real, reason)
		}
		return &UnsafeDataDirError{Dir: dataDir, Reason: reason, Owner: owner, Root: real == "/"}
	}
	if real == "/" {
		return refuse("is the root directory")
	}
	if exe, err := os.Executable(); err == nil {
		owned = append(owned, OwnedPath{What: "statepack's own binary", Path: exe})
	}
	for _, o := range owned {
		if o.Path == "" {
			continue
		}
		if why := overlapOf(real, o); why != "" {
			owner = o.What
			return refuse("%s", why)
		}
	}
	for _, d := range systemDirs {
		if real == d {
			return refuse("is the system directory %s", d)
		}
	}
	for _, h := range homeDirs() {
		switch hr := ResolveExisting(h); {
		case hr == real:
			return refuse("is the home directory %s", h)
		case Within(real, hr):
			return refuse("contains the home directory %s", h)
		}
	}
	return nil
}

// overlapOf says how the resolved DATA_DIR real overlaps o, or "".
// Paths are compared as strings and, for what exists, by device and
// inode, so a bind mount of the store's parent is found too.
func overlapOf(real string, o OwnedPath) string {
	oa, err := filepath.Abs(o.Path)
	if err != nil {
		return ""
	}
	or := ResolveExisting(oa)
	switch {
	case or == real || sameFile(or, real):
		return fmt.Sprintf("is %s %s", o.What, o.Path)
	case Within(real, or) || hasAncestor(or, real):
		return fmt.Sprintf("contains %s %s", o.What, o.Path)
	case Within(or, real) || hasAncestor(real, or):
		return fmt.Sprintf("is inside %s %s", o.What, o.Path)
	case mountRootHolding(real, or):
		return fmt.Sprintf("is the root of the file system that holds %s %s", o.What, o.Path)
	}
	return ""
}

// Within reports whether dir contains p (p strictly below dir). Both are
// clean absolute paths; "/" contains every other path.
func Within(dir, p string) bool {
	if dir == p {
		return false
	}
	if dir == string(filepath.Separator) {
		return true
	}
	return strings.HasPrefix(p, dir+string(filepath.Separator))
}

// ResolveExisting resolves the symlinks of the longest existing prefix of
// the clean absolute path p and joins the rest to it: where p is, or
// where creating it would put it.
func ResolveExisting(p string) string {
	p = filepath.Clean(p)
	rest := ""
	for {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Join(r, rest)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return filepath.Join(p, rest)
		}
		rest = filepath.Join(filepath.Base(p), rest)
		p = parent
	}
}

// AbsOrClean is p made absolute, or only cleaned when that fails.
func AbsOrClean(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return filepath.Clean(p)
}

// devIno identifies a directory independently of the path it is reached by.
type devIno struct{ dev, ino uint64 }

func statID(p string) (devIno, bool) {
	fi, err := os.Stat(p)
	if err != nil {
		return devIno{}, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return devIno{}, false
	}
	return devIno{uint64(st.Dev), st.Ino}, true
}

func sameFile(a, b string) bool {
	ia, oka := statID(a)
	ib, okb := statID(b)
	return oka && okb && ia == ib
}

// hasAncestor reports whether a strict ancestor of p (by its resolved
// path) is the directory dir, compared by device and inode.
func hasAncestor(p, dir string) bool {
	id, ok := statID(dir)
	if !ok {
		return false
	}
	for q := filepath.Dir(p); ; q = filepath.Dir(q) {
		if qi, ok := statID(q); ok && qi == id {
			return true
		}
		if filepath.Dir(q) == q {
			return false
		}
	}
}

// mountRootHolding reports whether dir is where a whole file system is
// mounted (not a bind mount of one of its subdirectories, as a container's
// volume is) and p lies on that file system: emptying dir may delete p
// through another mount of it. Without /proc (a chroot) it says false.
func mountRootHolding(dir, p string) bool {
	if !wholeFSMountedAt(dir) {
		return false
	}
	di, ok := statID(dir)
	if !ok {
		return false
	}
	for q := p; ; q = filepath.Dir(q) {
		if qi, ok := statID(q); ok {
			return qi.dev == di.dev
		}
		if filepath.Dir(q) == q {
			return false
		}
	}
}

// wholeFSMountedAt reports whether /proc/self/mountinfo shows the root of
// a file system mounted at dir (the last mount there wins).
func wholeFSMountedAt(dir string) bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	whole := false
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint options...
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && unescapeMount(fields[4]) == dir {
			whole = unescapeMount(fields[3]) == "/"
		}
	}
	return whole
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// homeDirs returns $HOME and the home directories of root and of the
// people in the passwd database (UID_MIN to UID_MAX, 1000 to 60000 by
// default): system accounts' homes are often their data directories
// (redis: /var/lib/redis), so they are left out.
func homeDirs() []string {
	var out []string
	if h := os.Getenv("HOME"); h != "" && filepath.IsAbs(h) {
		out = append(out, filepath.Clean(h))
	}
	f, err := os.Open("/etc/passwd")
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 7 {
			continue
		}
		uid, err := strconv.Atoi(fields[2])
		home := fields[5]
		if err != nil || !filepath.IsAbs(home) || filepath.Clean(home) == "/" {
			continue
		}
		if uid == 0 || uid >= 1000 && uid <= 60000 {
			out = append(out, filepath.Clean(home))
		}
	}
	return out
}

// ErrNoDataDir: neither DATA_DIR nor --data-dir names a directory.
var ErrNoDataDir = errors.New("persistence is disabled: set DATA_DIR or pass --data-dir")
