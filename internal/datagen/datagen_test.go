package datagen

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// entry describes one path of a tree as a restore must reproduce it.
type entry struct {
	mode  fs.FileMode
	mtime time.Time
	size  int64
	data  string // SHA-256 of a file's content, or a symlink's target
}

// scan walks a tree and describes every entry below root by its slash path.
func scan(t *testing.T, root string) map[string]entry {
	t.Helper()
	tree := map[string]entry{}
	err := filepath.WalkDir(root, func(name string, d fs.DirEntry, err error) error {
		if err != nil || name == root {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		e := entry{mode: fi.Mode(), mtime: fi.ModTime()}
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(name)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			e.size, e.data = fi.Size(), hex.EncodeToString(sum[:])
		case fi.Mode()&fs.ModeSymlink != 0:
			if e.data, err = os.Readlink(name); err != nil {
				return err
			}
		}
		rel, _ := filepath.Rel(root, name)
		tree[filepath.ToSlash(rel)] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func generate(t *testing.T, seed, size int64) (string, Stats) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	st, err := Generate(dir, Options{Seed: seed, Size: size})
	if err != nil {
		t.Fatal(err)
	}
	return dir, st
}

func TestGenerateDeterministic(t *testing.T) {
	tests := []struct {
		name         string
		seedA, seedB int64
		same         bool
	}{
		{"same seed", 1, 1, true},
		{"other seed", 1, 2, false},
		{"negative seed", -7, -7, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _ := generate(t, tt.seedA, 1<<20)
			b, _ := generate(t, tt.seedB, 1<<20)
			ta, tb := scan(t, a), scan(t, b)
			if same := maps.Equal(ta, tb); same != tt.same {
				t.Fatalf("trees equal = %v, want %v", same, tt.same)
			}
			if !tt.same && slices.Equal(contents(ta), contents(tb)) {
				t.Fatal("different seeds gave the same contents")
			}
		})
	}
}

// contents lists the content hashes of a tree in path order.
func contents(tree map[string]entry) []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(tree)) {
		out = append(out, tree[name].data)
	}
	return out
}

func TestGenerateSize(t *testing.T) {
	for _, size := range []int64{1 << 20, 8 << 20, 32 << 20} {
		t.Run(fmt.Sprint(size>>20, "MiB"), func(t *testing.T) {
			dir, st := generate(t, 3, size)
			var got Stats
			for _, e := range scan(t, dir) {
				switch {
				case e.mode.IsRegular():
					got.Files++
					got.Bytes += e.size
				case e.mode.IsDir():
					got.Dirs++
				default:
					got.Symlinks++
				}
			}
			if got != st {
				t.Errorf("Stats = %+v, tree has %+v", st, got)
			}
			if diff := got.Bytes - size; diff < -size/10 || diff > size/10 {
				t.Errorf("generated %d bytes, want %d ±10%%", got.Bytes, size)
			}
		})
	}
}

func TestGenerateLayout(t *testing.T) {
	dir, _ := generate(t, 1, 2<<20)
	tree := scan(t, dir)
	want := map[string]fs.FileMode{
		EmptyBucket: fs.ModeDir | 0o755,
		Symlink:     fs.ModeSymlink | 0o777,
		Executable:  0o755,
		ReadOnly:    0o444,
		"api_states/iam/000000000000/us-east-1/store.state": 0o600,
		"api_states/sqs/000000000000/eu-west-1/store.state": 0o644,
		"dynamodb/000000000000_us-east-1.db":                0o644,
		"dynamodb/000000000000_eu-west-1.db":                0o644,
		"kinesis/orders-stream.json":                        0o644,
		"s3/data-lake/raw/orders/_SUCCESS":                  0o644,
	}
	for name, mode := range want {
		if e, ok := tree[name]; !ok {
			t.Errorf("%s missing", name)
		} else if e.mode.Type()|e.mode.Perm() != mode {
			t.Errorf("%s: mode %v, want %v", name, e.mode, mode)
		}
	}
	for name, e := range tree {
		if strings.HasPrefix(name, EmptyBucket+"/") {
			t.Errorf("%s: the empty bucket has an entry", name)
		}
		if e.mtime.Before(baseTime) || !e.mtime.Before(baseTime.Add(48*time.Hour)) {
			t.Errorf("%s: mtime %v outside the generation's days", name, e.mtime)
		}
		if strings.HasPrefix(name, "dynamodb/") && e.size%PageSize != 0 {
			t.Errorf("%s: size %d is not a multiple of %d", name, e.size, PageSize)
		}
	}
	if tree[Symlink].data != "data-lake" || tree["s3/data-lake"].mode.IsDir() == false {
		t.Errorf("%s -> %q, want the relative bucket data-lake", Symlink, tree[Symlink].data)
	}
	for _, kind := range []string{" ", "\u65e5\u672c\u8a9e", "\u00dc"} {
		if !slices.ContainsFunc(slices.Collect(maps.Keys(tree)), func(n string) bool { return strings.Contains(n, kind) }) {
			t.Errorf("no name contains %q", kind)
		}
	}
	head, err := os.ReadFile(filepath.Join(dir, "dynamodb/000000000000_us-east-1.db"))
	if err != nil || !bytes.HasPrefix(head, []byte("SQLite format 3\x00")) {
		t.Errorf("database lacks the SQLite header (%v)", err)
	}
}

func TestGenerateRefuses(t *testing.T) {
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(full, "x")
	tests := []struct {
		name    string
		dir     string
		size    int64
		wantErr error
	}{
		{"non-empty dir", full, 1 << 20, ErrNotEmpty},
		{"regular file", file, 1 << 20, nil},
		{"negative size", filepath.Join(t.TempDir(), "a"), -1, nil},
		{"tiny size", filepath.Join(t.TempDir(), "a"), 1000, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Generate(tt.dir, Options{Seed: 1, Size: tt.size})
			if err == nil {
				t.Fatal("Generate succeeded")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// copyTree copies the files, directories and symlinks below src to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, name)
		to := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(to, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(name)
			if err != nil {
				return err
			}
			return os.Symlink(target, to)
		default:
			b, err := os.ReadFile(name)
			if err != nil {
				return err
			}
			return os.WriteFile(to, b, 0o644)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

// diffTrees compares two trees file by file and page by page, independently
// of Mutate's own accounting: a page of a file in after counts when before
// lacks the file or holds other bytes (or fewer) at that page's offsets.
func diffTrees(t *testing.T, before, after string) MutateStats {
	t.Helper()
	old, cur := scan(t, before), scan(t, after)
	var d MutateStats
	for name, e := range cur {
		if !e.mode.IsRegular() {
			continue
		}
		o, existed := old[name]
		switch {
		case !existed:
			d.FilesAdded++
			d.PagesChanged += int((e.size + PageSize - 1) / PageSize)
			continue
		case o.data == e.data:
			continue
		}
		d.FilesChanged++
		a, errA := os.ReadFile(filepath.Join(before, name))
		b, errB := os.ReadFile(filepath.Join(after, name))
		if errA != nil || errB != nil {
			t.Fatal(errA, errB)
		}
		for off := 0; off < len(b); off += PageSize {
			page := b[off:min(off+PageSize, len(b))]
			if off+len(page) > len(a) || !bytes.Equal(a[off:off+len(page)], page) ||
				(len(page) < PageSize && len(a) > off+len(page)) {
				d.PagesChanged++
			}
		}
	}
	for name, e := range old {
		if _, ok := cur[name]; !ok && e.mode.IsRegular() {
			d.FilesDeleted++
		}
	}
	d.ChangedBytes = int64(d.PagesChanged) * PageSize
	return d
}

func TestMutateCountsChanges(t *testing.T) {
	tests := []struct {
		name string
		seed int64
		size int64
	}{
		{"small", 1, 1 << 20},
		{"larger", 5, 4 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, _ := generate(t, tt.seed, tt.size)
			for step := 1; step <= 2; step++ {
				before := filepath.Join(t.TempDir(), "before")
				copyTree(t, dir, before)
				start := time.Now()
				got, err := Mutate(dir, tt.seed, step)
				if err != nil {
					t.Fatal(err)
				}
				if want := diffTrees(t, before, dir); got != want {
					t.Errorf("step %d: Mutate reported %+v, the trees differ by %+v", step, got, want)
				}
				if got.FilesChanged == 0 || got.FilesAdded == 0 || got.FilesDeleted != 1 {
					t.Errorf("step %d: %+v, want changed, added and one deleted file", step, got)
				}
				checkMutatedTimes(t, dir, step, start)
			}
		})
	}
}

// checkMutatedTimes checks that Mutate set the times of what it touched to
// its step's day, and no time to the clock's.
func checkMutatedTimes(t *testing.T, dir string, step int, start time.Time) {
	t.Helper()
	day := baseTime.Add(time.Duration(step+1) * 24 * time.Hour)
	onDay := 0
	for name, e := range scan(t, dir) {
		if !e.mtime.Before(start.Add(-time.Minute)) {
			t.Errorf("%s: mtime %v is the clock's, not a fixed one", name, e.mtime)
		}
		if !e.mtime.Before(day) && e.mtime.Before(day.Add(24*time.Hour)) {
			onDay++
		}
	}
	if onDay == 0 {
		t.Errorf("step %d: no entry has a time on the step's day", step)
	}
}

func TestMutateDeterministic(t *testing.T) {
	tests := []struct {
		name         string
		stepA, stepB int
		same         bool
	}{
		{"same step", 1, 1, true},
		{"other step", 1, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _ := generate(t, 9, 1<<20)
			b, _ := generate(t, 9, 1<<20)
			if _, err := Mutate(a, 9, tt.stepA); err != nil {
				t.Fatal(err)
			}
			if _, err := Mutate(b, 9, tt.stepB); err != nil {
				t.Fatal(err)
			}
			if same := maps.Equal(scan(t, a), scan(t, b)); same != tt.same {
				t.Fatalf("trees equal = %v, want %v", same, tt.same)
			}
		})
	}
}

func TestMutateRefuses(t *testing.T) {
	tests := []struct {
		name string
		dir  string
		step int
	}{
		{"step 0", t.TempDir(), 0},
		{"missing dir", filepath.Join(t.TempDir(), "absent"), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Mutate(tt.dir, 1, tt.step); err == nil {
				t.Fatal("Mutate succeeded")
			}
		})
	}
}
