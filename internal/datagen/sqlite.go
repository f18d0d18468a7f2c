package datagen

import (
	"encoding/base64"
	"encoding/binary"
	"slices"
)

// PageSize is the unit in which DynamoDB files are written and in which
// MutateStats counts changes: SQLite's default page size, and the page size
// of most file systems.
const PageSize = 4096

// SQLite file header fields (https://sqlite.org/fileformat.html), as offsets
// into the first page.
const (
	hdrChangeCounter = 24 // incremented by every write transaction
	hdrPageCount     = 28 // database size in pages
	hdrVersionValid  = 92 // the change counter the page count is valid for
	sqliteLeafTable  = 0x0d
)

// dynamoTables are the tables in every generated database: DynamoDB Local's
// metadata table and the items tables of a typical application.
var dynamoTables = []string{
	"CREATE TABLE dm (TableName TEXT, CreationDateTime INTEGER, LastDecreaseDate INTEGER, LastIncreaseDate INTEGER, NumberOfDecreasesToday INTEGER, ReadCapacityUnits INTEGER, WriteCapacityUnits INTEGER, TableInfo BLOB, BillingMode INTEGER DEFAULT 0, PayPerRequestDateTime INTEGER DEFAULT 0, PRIMARY KEY(TableName))",
	`CREATE TABLE "orders" (rangeKey BLOB DEFAULT NULL, hashKey BLOB DEFAULT NULL, hashValue BLOB NOT NULL, itemSize INTEGER DEFAULT 0, ObjectJSON BLOB NOT NULL, PRIMARY KEY(hashKey, rangeKey))`,
	`CREATE TABLE "customers" (rangeKey BLOB DEFAULT NULL, hashKey BLOB DEFAULT NULL, hashValue BLOB NOT NULL, itemSize INTEGER DEFAULT 0, ObjectJSON BLOB NOT NULL, PRIMARY KEY(hashKey, rangeKey))`,
	`CREATE TABLE "sessions" (rangeKey BLOB DEFAULT NULL, hashKey BLOB DEFAULT NULL, hashValue BLOB NOT NULL, itemSize INTEGER DEFAULT 0, ObjectJSON BLOB NOT NULL, PRIMARY KEY(hashKey, rangeKey))`,
}

// dynamoSource produces an SQLite-like database of DynamoDB items: a header
// page, then table leaf pages, each holding as many item records as fit in a
// random fill factor, the rest of the page zero, as SQLite leaves it.
type dynamoSource struct {
	g       *rng
	pages   int64 // the database size recorded in the header
	rowid   int64
	ms      int64
	iso     isoClock
	started bool
	cols    []column
	cell    []byte
	item    []byte
	key     []byte
}

func (s *dynamoSource) next(b []byte) []byte {
	if !s.started {
		s.started = true
		return s.headerPage(b)
	}
	return s.leafPage(b)
}

// headerPage appends page 1: the 100-byte database header, then the schema
// table's leaf page.
func (s *dynamoSource) headerPage(b []byte) []byte {
	b, p := appendZeroPage(b)
	copy(p, "SQLite format 3\x00")
	binary.BigEndian.PutUint16(p[16:], PageSize)
	p[18], p[19] = 1, 1 // rollback journal
	p[21], p[22], p[23] = 64, 32, 32
	binary.BigEndian.PutUint32(p[hdrChangeCounter:], 1)
	binary.BigEndian.PutUint32(p[hdrPageCount:], uint32(s.pages))
	binary.BigEndian.PutUint32(p[40:], 1) // schema cookie
	binary.BigEndian.PutUint32(p[44:], 4) // schema format
	binary.BigEndian.PutUint32(p[56:], 1) // UTF-8
	binary.BigEndian.PutUint32(p[hdrVersionValid:], 1)
	binary.BigEndian.PutUint32(p[96:], 3045001)
	cells := make([][]byte, len(dynamoTables))
	for i, sql := range dynamoTables {
		name := tableName(sql)
		cols := []column{text("table"), text(name), text(name), integer(int64(i + 2)), text(sql)}
		cells[i] = appendCell(nil, int64(i+1), cols)
	}
	layoutLeaf(p, 100, cells)
	return b
}

// tableName extracts the table's name from its CREATE TABLE statement.
func tableName(sql string) string {
	name := sql[len("CREATE TABLE "):]
	if name[0] == '"' {
		name = name[1:]
	}
	for i, c := range name {
		if c == '"' || c == ' ' {
			return name[:i]
		}
	}
	return name
}

// leafPage appends one table leaf page filled to a random 55-95%.
func (s *dynamoSource) leafPage(b []byte) []byte {
	b, p := appendZeroPage(b)
	fill := PageSize * s.g.between(55, 95) / 100
	var cells [][]byte
	used, all := 8, s.cell[:0]
	for {
		start := len(all)
		all = s.appendItemCell(all)
		size := len(all) - start
		if used+size+2 > fill && len(cells) > 0 {
			break
		}
		used += size + 2
		cells = append(cells, all[start:])
	}
	s.cell = all
	layoutLeaf(p, 0, cells)
	return b
}

// appendZeroPage appends a zeroed page to b and returns b and the new page.
func appendZeroPage(b []byte) ([]byte, []byte) {
	n := len(b)
	b = slices.Grow(b, PageSize)[:n+PageSize]
	clear(b[n:])
	return b, b[n:]
}

// layoutLeaf lays out a table leaf page as SQLite does: the page header at
// offset hdr (100 on the first page, after the database header), then the
// cell pointers, the cells packed at the end of the page, and free space
// (left as it is: zero) in between.
func layoutLeaf(p []byte, hdr int, cells [][]byte) {
	h := p[hdr:]
	h[0] = sqliteLeafTable
	binary.BigEndian.PutUint16(h[3:], uint16(len(cells)))
	end := len(p)
	for i, c := range cells {
		end -= len(c)
		copy(p[end:], c)
		binary.BigEndian.PutUint16(h[8+2*i:], uint16(end))
	}
	binary.BigEndian.PutUint16(h[5:], uint16(end))
}

// appendItemCell appends a cell holding one DynamoDB Local item row:
// rangeKey, hashKey, hashValue, itemSize and the item as DynamoDB JSON.
func (s *dynamoSource) appendItemCell(b []byte) []byte {
	g := s.g
	s.rowid++
	s.ms += int64(g.IntN(30_000))
	hash := append(s.key[:0], "customer#"...)
	hash = g.appendDigits(hash, 8)
	rng := append(hash, "order#"...)
	rng = g.appendUUID(rng)
	s.key = rng
	item := s.appendItem(s.item[:0], hash, rng[len(hash):])
	s.item = item
	var digest [16]byte
	g.fill(digest[:])
	s.cols = append(s.cols[:0], blob(rng[len(hash):]), blob(hash), blob(digest[:]),
		integer(int64(len(item))), blob(item))
	return appendCell(b, s.rowid, s.cols)
}

// appendItem appends an order item in DynamoDB's JSON attribute-value form.
func (s *dynamoSource) appendItem(b, hash, sort []byte) []byte {
	g := s.g
	b = append(b, `{"pk":{"S":"`...)
	b = append(b, hash...)
	b = append(b, `"},"sk":{"S":"`...)
	b = append(b, sort...)
	b = append(b, `"},"status":{"S":"`...)
	b = append(b, pick(g, statuses)...)
	b = append(b, `"},"total":{"N":"`...)
	b = appendMoney(b, int64(g.IntN(100000)))
	b = append(b, `"},"currency":{"S":"`...)
	b = append(b, pick(g, currencies)...)
	b = append(b, `"},"createdAt":{"S":"`...)
	b = s.iso.append(b, s.ms)
	b = append(b, `"},"items":{"N":"`...)
	b = appendPad(b, int64(g.between(1, 12)), 1)
	b = append(b, `"},"note":{"S":"`...)
	b = appendWords(g, b, g.between(1, 8))
	b = append(b, `"},"payload":{"B":"`...)
	var raw [384]byte
	n := g.between(96, len(raw))
	g.fill(raw[:n])
	b = base64.StdEncoding.AppendEncode(b, raw[:n])
	return append(b, `"}}`...)
}

// A column is one value of an SQLite record: an integer, a text or a blob.
type column struct {
	serial uint64 // SQLite serial type
	data   []byte
}

// text, blob and integer make columns of each kind.
func text(s string) column { return column{uint64(2*len(s) + 13), []byte(s)} }

func blob(p []byte) column { return column{uint64(2*len(p) + 12), p} }

func integer(v int64) column {
	return column{6, binary.BigEndian.AppendUint64(nil, uint64(v))}
}

// appendCell appends a table leaf cell: payload length, rowid, then the
// record (header of serial types, then the column values).
func appendCell(b []byte, rowid int64, cols []column) []byte {
	hdr, body := 1, 0
	for _, c := range cols {
		hdr += varintLen(c.serial)
		body += len(c.data)
	}
	b = appendVarint(b, uint64(hdr+body))
	b = appendVarint(b, uint64(rowid))
	b = appendVarint(b, uint64(hdr))
	for _, c := range cols {
		b = appendVarint(b, c.serial)
	}
	for _, c := range cols {
		b = append(b, c.data...)
	}
	return b
}

// appendVarint appends v as an SQLite varint: big-endian groups of seven
// bits, the high bit set on all but the last (enough for v < 2^56).
func appendVarint(b []byte, v uint64) []byte {
	n := varintLen(v)
	for i := n - 1; i >= 0; i-- {
		c := byte(v>>(7*uint(i))) & 0x7f
		if i > 0 {
			c |= 0x80
		}
		b = append(b, c)
	}
	return b
}

// varintLen returns the length of v as an SQLite varint.
func varintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
