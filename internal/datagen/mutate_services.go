package datagen

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// databases updates every DynamoDB database.
func (m *mutator) databases() error {
	names, err := m.files("dynamodb", func(name string) bool { return strings.HasSuffix(name, ".db") })
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := m.updateDatabase(name); err != nil {
			return err
		}
	}
	return nil
}

// updateDatabase rewrites a few random pages of a database in place, appends
// a few pages and updates the header page, as an SQLite write transaction
// does.
func (m *mutator) updateDatabase(name string) error {
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	pages := fi.Size() / PageSize
	if pages < 1 || fi.Size()%PageSize != 0 {
		return fmt.Errorf("%s: not a database of %d-byte pages", name, PageSize)
	}
	g := m.g
	src := &dynamoSource{g: g, started: true, ms: m.clock(), rowid: int64(m.step) << 32}
	page, old := make([]byte, 0, PageSize), make([]byte, PageSize)
	changed := 0
	for _, i := range m.choosePages(pages, g.between(2, 6)+int(pages/512)) {
		c, err := rewritePage(f, i, src.next(page[:0]), old)
		if err != nil {
			return err
		}
		changed += c
	}
	added := int64(g.between(1, 4)) + pages/1024
	for i := range added {
		if _, err := f.WriteAt(src.next(page[:0]), (pages+i)*PageSize); err != nil {
			return err
		}
	}
	c, err := bumpHeader(f, pages+added, old)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	m.stats.FilesChanged++
	m.stats.PagesChanged += changed + int(added) + c
	t := m.fileTime()
	return os.Chtimes(name, t, t)
}

// choosePages returns n distinct random page numbers, never page 0 (the
// header), in the order drawn.
func (m *mutator) choosePages(pages int64, n int) []int64 {
	n = min(n, int(pages-1))
	seen := make(map[int64]bool, n)
	out := make([]int64, 0, n)
	for len(out) < n {
		i := 1 + m.g.Int64N(pages-1)
		if !seen[i] {
			seen[i] = true
			out = append(out, i)
		}
	}
	return out
}

// bumpHeader updates the header page after a write transaction: the change
// counter goes up by one and the page count is set to pages. It reports (as 0
// or 1) whether the page changed; scratch is a page-sized buffer.
func bumpHeader(f *os.File, pages int64, scratch []byte) (int, error) {
	h := make([]byte, PageSize)
	if _, err := f.ReadAt(h, 0); err != nil {
		return 0, err
	}
	counter := binary.BigEndian.Uint32(h[hdrChangeCounter:]) + 1
	binary.BigEndian.PutUint32(h[hdrChangeCounter:], counter)
	binary.BigEndian.PutUint32(h[hdrVersionValid:], counter)
	binary.BigEndian.PutUint32(h[hdrPageCount:], uint32(pages))
	return rewritePage(f, 0, h, scratch)
}

// stores rewrites one or two service stores.
func (m *mutator) stores() error {
	names, err := m.files("api_states", func(name string) bool { return filepath.Base(name) == "store.state" })
	if err != nil || len(names) == 0 {
		return err
	}
	order := m.g.Perm(len(names))
	for _, i := range order[:min(len(names), m.g.between(1, 2))] {
		if err := m.rewriteStore(names[i]); err != nil {
			return err
		}
	}
	return nil
}

// rewriteStore rewrites a store the way LocalStack pickles one: to a new
// file renamed over the old, here with a few new records inserted near the
// start, so that everything after them moves to new offsets.
func (m *mutator) rewriteStore(name string) error {
	fi, err := os.Stat(name)
	if err != nil {
		return err
	}
	at := min(fi.Size(), 16+m.g.Int64N(PageSize))
	src := &stateSource{g: m.g, svc: storeService(name), region: filepath.Base(filepath.Dir(name)), ms: m.clock(), started: true}
	var records []byte
	for range m.g.between(1, 8) {
		records = src.next(records)
	}
	tmp := name + ".datagen-tmp"
	if err := insertInto(name, tmp, at, records, fi.Mode().Perm()); err != nil {
		os.Remove(tmp)
		return err
	}
	changed, err := changedPages(name, tmp)
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	m.stats.FilesChanged++
	m.stats.PagesChanged += changed
	m.touched[filepath.Dir(name)] = true
	t := m.fileTime()
	return os.Chtimes(name, t, t)
}

// storeService finds the service a store belongs to from its path
// (api_states/<service>/<account>/<region>/store.state).
func storeService(name string) service {
	svc := filepath.Base(filepath.Dir(filepath.Dir(filepath.Dir(name))))
	for _, s := range services {
		if s.name == svc {
			return s
		}
	}
	return service{name: svc, resource: "resource", attrs: []string{"Name"}}
}

// streams appends records to most Kinesis streams (always to the first).
func (m *mutator) streams() error {
	names, err := m.files("kinesis", func(name string) bool { return strings.HasSuffix(name, ".json") })
	if err != nil {
		return err
	}
	for i, name := range names {
		if i > 0 && m.g.IntN(4) == 0 {
			continue
		}
		if err := m.appendRecords(name); err != nil {
			return err
		}
	}
	return nil
}

// appendRecords appends a few dozen records to a stream's file.
func (m *mutator) appendRecords(name string) error {
	src := &kinesisSource{g: m.g, ms: m.clock(), seq: int64(m.step) << 40, shards: 2}
	var records []byte
	for range m.g.between(20, 200) {
		records = src.next(records)
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err == nil {
		_, err = f.Write(records)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	// The last old page, if partial, and every page after it changed.
	size := fi.Size() + int64(len(records))
	m.stats.FilesChanged++
	m.stats.PagesChanged += int((size+PageSize-1)/PageSize - fi.Size()/PageSize)
	t := m.fileTime()
	return os.Chtimes(name, t, t)
}
