package datagen

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// objects deletes one S3 object and adds a few to non-empty buckets, in a
// directory named after the step.
func (m *mutator) objects() error {
	objects, err := m.files("s3", func(string) bool { return true })
	if err != nil {
		return err
	}
	if len(objects) > 0 {
		victim := pick(m.g, objects)
		if err := os.Remove(victim); err != nil {
			return err
		}
		m.stats.FilesDeleted++
		m.touched[filepath.Dir(victim)] = true
	}
	buckets, err := m.buckets()
	if err != nil || len(buckets) == 0 {
		return err
	}
	for i := range m.g.between(2, 5) {
		if err := m.addObject(pick(m.g, buckets), i); err != nil {
			return err
		}
	}
	return nil
}

// buckets lists the bucket directories under s3/ that hold objects: the
// empty buckets stay empty.
func (m *mutator) buckets() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(m.root, "s3"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(m.root, "s3", e.Name())
		inner, err := os.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		if len(inner) > 0 {
			out = append(out, dir)
		}
	}
	return out, nil
}

// addObject adds the i-th object of the step to bucket: JSON events or a
// binary blob of 1 KiB to 256 KiB, under a new name.
func (m *mutator) addObject(bucket string, i int) error {
	dir := filepath.Join(bucket, fmt.Sprintf("stage-%03d", m.step))
	if err := os.Mkdir(dir, 0o755); err == nil {
		if err := os.Chmod(dir, 0o755); err != nil {
			return err
		}
		m.touched[bucket] = true
	} else if !errors.Is(err, fs.ErrExist) {
		return err
	}
	m.touched[dir] = true
	base, src := fmt.Sprintf("object-%02d.bin", i), binaryFile("\x1f\x8b\x08\x00")
	if m.g.IntN(2) == 0 {
		base = fmt.Sprintf("events-%02d.json", i)
		src = func(g *rng) source { return &eventSource{g: g, ms: m.clock()} }
	}
	rel, err := filepath.Rel(m.root, freeName(dir, base))
	if err != nil {
		return err
	}
	f := &fileSpec{
		path:  filepath.ToSlash(rel),
		size:  int64(m.g.between(1<<10, 256<<10)),
		mode:  0o644,
		mtime: m.fileTime(),
		seed:  m.g.Uint64(),
		src:   src,
	}
	if _, err := writeFile(m.root, f, nil); err != nil {
		return err
	}
	m.stats.FilesAdded++
	m.stats.PagesChanged += int((f.size + PageSize - 1) / PageSize)
	return nil
}

// freeName returns dir/base, or dir/base with a numbered suffix when that
// name is taken (a step applied twice).
func freeName(dir, base string) string {
	ext := filepath.Ext(base)
	name := filepath.Join(dir, base)
	for n := 1; ; n++ {
		if _, err := os.Lstat(name); errors.Is(err, fs.ErrNotExist) {
			return name
		}
		name = filepath.Join(dir, fmt.Sprintf("%s-%d%s", strings.TrimSuffix(base, ext), n, ext))
	}
}
