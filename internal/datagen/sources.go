package datagen

import (
	"encoding/base64"
	"io"
	"strings"
)

// pieceSize is how much content is generated before it is written: files of
// any size are streamed in pieces of about this size.
const pieceSize = 1 << 20

// A source produces a file's content one unit at a time: a record, a line or
// a page. Sources keep the state that makes content look like the real thing
// (headers written once, counters and clocks that move forward).
type source interface {
	// next appends the next unit to b and returns the extended slice.
	next(b []byte) []byte
}

// writeContent writes exactly size bytes from src to w in pieces of about
// pieceSize, cutting the last unit short when it does not fit. It returns buf,
// possibly grown, for reuse.
func writeContent(w io.Writer, src source, size int64, buf []byte) ([]byte, error) {
	for size > 0 {
		buf = buf[:0]
		for int64(len(buf)) < size && len(buf) < pieceSize {
			buf = src.next(buf)
		}
		n := min(int64(len(buf)), size)
		if _, err := w.Write(buf[:n]); err != nil {
			return buf, err
		}
		size -= n
	}
	return buf, nil
}

// appendTemplate appends tmpl with its "{id}" placeholder, if any, replaced
// by id.
func appendTemplate(b []byte, tmpl string, id []byte) []byte {
	before, after, found := strings.Cut(tmpl, "{id}")
	b = append(b, before...)
	if found {
		b = append(b, id...)
		b = append(b, after...)
	}
	return b
}

// binarySource produces incompressible bytes after a short magic header, as
// images, archives and executables look to a compressor.
type binarySource struct {
	g     *rng
	magic string
}

func (s *binarySource) next(b []byte) []byte {
	if s.magic != "" {
		b = append(b, s.magic...)
		s.magic = ""
	}
	return s.g.appendRandom(b, 32<<10)
}

// logSource produces application log lines: timestamps moving forward,
// levels, request ids and a small set of recurring messages.
type logSource struct {
	g   *rng
	ms  int64 // the clock, in Unix milliseconds
	iso isoClock
	app string
	id  []byte
}

func (s *logSource) next(b []byte) []byte {
	g := s.g
	s.ms += int64(g.IntN(250))
	b = s.iso.append(b, s.ms)
	b = append(b, ' ')
	b = append(b, pick(g, levels)...)
	b = append(b, " ["...)
	b = append(b, s.app...)
	b = append(b, "] request_id="...)
	b = g.appendUUID(b)
	b = append(b, ' ')
	s.id = g.appendHex(s.id[:0], 8)
	b = appendTemplate(b, pick(g, messages), s.id)
	b = append(b, " user=u-"...)
	b = g.appendDigits(b, 5)
	b = append(b, " latency_ms="...)
	b = appendPad(b, int64(g.IntN(900)), 1)
	return append(b, '\n')
}

// csvSource produces an orders export: a header line, then one order a line.
type csvSource struct {
	g       *rng
	ms      int64
	iso     isoClock
	started bool
}

func (s *csvSource) next(b []byte) []byte {
	if !s.started {
		s.started = true
		return append(b, "order_id,customer_id,sku,quantity,unit_price,currency,created_at,status,note\n"...)
	}
	g := s.g
	s.ms += int64(g.IntN(5000))
	b = append(b, "o-"...)
	b = g.appendHex(b, 12)
	b = append(b, ",c-"...)
	b = g.appendDigits(b, 6)
	b = append(b, ",SKU-"...)
	b = g.appendDigits(b, 4)
	b = append(b, ',')
	b = appendPad(b, int64(g.between(1, 9)), 1)
	b = append(b, ',')
	b = appendMoney(b, int64(g.between(99, 99999)))
	b = append(b, ',')
	b = append(b, pick(g, currencies)...)
	b = append(b, ',')
	b = s.iso.append(b, s.ms)
	b = append(b, ',')
	b = append(b, pick(g, statuses)...)
	b = append(b, ",\""...)
	b = appendWords(g, b, g.between(0, 5))
	return append(b, "\"\n"...)
}

// eventSource produces web analytics events, one JSON object a line.
type eventSource struct {
	g   *rng
	ms  int64
	iso isoClock
	id  []byte
}

func (s *eventSource) next(b []byte) []byte {
	g := s.g
	s.ms += int64(g.IntN(2000))
	b = append(b, `{"ts":"`...)
	b = s.iso.append(b, s.ms)
	b = append(b, `","type":"`...)
	b = append(b, pick(g, eventTypes)...)
	b = append(b, `","user":"u-`...)
	b = g.appendDigits(b, 5)
	b = append(b, `","session":"`...)
	b = g.appendHex(b, 16)
	b = append(b, `","path":"`...)
	s.id = g.appendDigits(s.id[:0], 4)
	b = appendTemplate(b, pick(g, pagePaths), s.id)
	b = append(b, `","ua":"`...)
	b = append(b, pick(g, userAgents)...)
	b = append(b, `","duration_ms":`...)
	b = appendPad(b, int64(g.IntN(3000)), 1)
	return append(b, "}\n"...)
}

// kinesisSource produces Kinesis records as stored by kinesis-mock: JSON
// with a sequence number, an arrival time, a partition key and the record's
// data, itself a small JSON event, base64-encoded.
type kinesisSource struct {
	g      *rng
	ms     int64
	seq    int64
	shards int
	data   []byte
}

func (s *kinesisSource) next(b []byte) []byte {
	g := s.g
	s.ms += int64(g.IntN(40))
	s.seq += int64(g.between(1, 3))
	b = append(b, `{"SequenceNumber":"49658`...)
	b = appendPad(b, s.seq, 51)
	b = append(b, `","ApproximateArrivalTimestamp":`...)
	b = appendSeconds(b, s.ms)
	b = append(b, `,"PartitionKey":"customer-`...)
	b = appendPad(b, int64(g.IntN(2000)), 4)
	b = append(b, `","ShardId":"shardId-`...)
	b = appendPad(b, int64(g.IntN(s.shards)), 12)
	b = append(b, `","EncryptionType":"NONE","Data":"`...)
	b = base64.StdEncoding.AppendEncode(b, s.event())
	return append(b, "\"}\n"...)
}

// event builds the record's payload: a small, repetitive JSON event.
func (s *kinesisSource) event() []byte {
	g := s.g
	d := append(s.data[:0], `{"eventType":"`...)
	d = append(d, pick(g, eventTypes)...)
	d = append(d, `","orderId":"o-`...)
	d = appendPad(d, int64(g.IntN(100000)), 6)
	d = append(d, `","amount":`...)
	d = appendMoney(d, int64(g.IntN(50000)))
	d = append(d, `,"currency":"`...)
	d = append(d, pick(g, currencies)...)
	d = append(d, `","ts":`...)
	d = appendPad(d, s.ms, 1)
	d = append(d, '}')
	s.data = d
	return d
}
