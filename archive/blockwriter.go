package archive

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
	"github.com/statepack/statepack/archive/format"
	"golang.org/x/sync/errgroup"
)

// BlockWriter takes blocks from file readers, drops those the repository
// already has, compresses the rest on every core and hands them to a
// PackWriter. Memory is bounded: a fixed pool of block buffers gives
// back-pressure to readers, and the PackWriter holds at most one pack per
// compressor in flight and one being filled.
type BlockWriter struct {
	r  *Repository
	pw *PackWriter

	mu       sync.Mutex
	inflight map[format.ID]struct{}

	bufs   chan []byte
	jobs   chan blockJob
	g      *errgroup.Group
	gctx   context.Context
	ctx    context.Context
	cancel context.CancelFunc
	closed sync.Once

	NewBlocks atomic.Int64
	NewRaw    atomic.Int64
	NewStored atomic.Int64
}

type blockJob struct {
	id   format.ID
	data []byte
	buf  []byte      // to return to the pool
	hint *streamHint // the file's, or nil
}

// NewBlockWriter starts the compressors of a save into r. It must be
// ended by Close or Abort.
func NewBlockWriter(ctx context.Context, r *Repository) *BlockWriter {
	workers := runtime.GOMAXPROCS(0)
	ctx, cancel := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(ctx)
	w := &BlockWriter{
		r: r, pw: r.NewPackWriter(ctx, PackWriterOptions{Jobs: workers}),
		inflight: map[format.ID]struct{}{},
		bufs:     make(chan []byte, 4*workers+4),
		jobs:     make(chan blockJob, 2*workers),
		g:        g, gctx: gctx, ctx: ctx, cancel: cancel,
	}
	for i := 0; i < cap(w.bufs); i++ {
		w.bufs <- make([]byte, 0, r.cfg.Chunker.Max)
	}
	for i := 0; i < workers; i++ {
		g.Go(w.compressLoop)
	}
	return w
}

// Add hands over one block; data may be reused by the caller on return. It
// reports whether the block was new to the repository.
func (w *BlockWriter) Add(id format.ID, data []byte) (bool, error) { return w.add(nil, id, data) }

// BlockID is the repository's id of a block (Repository.BlockID).
func (w *BlockWriter) BlockID(data []byte) format.ID { return w.r.BlockID(data) }

// Stream returns an Add for the blocks of one file, in order: what the
// compressors learn from its earlier blocks (random data, literals that
// entropy coding does not shrink) decides how its later ones are tried.
func (w *BlockWriter) Stream() *blockStream { return &blockStream{w: w} }

// blockStream adds the blocks of one file.
type blockStream struct {
	w    *BlockWriter
	hint streamHint
}

// Add is blockWriter.Add for the stream's next block.
func (s *blockStream) Add(id format.ID, data []byte) (bool, error) { return s.w.add(&s.hint, id, data) }

func (w *BlockWriter) add(hint *streamHint, id format.ID, data []byte) (bool, error) {
	if w.r.Index().Has(id) {
		return false, nil
	}
	w.mu.Lock()
	if _, dup := w.inflight[id]; dup {
		w.mu.Unlock()
		return false, nil
	}
	w.inflight[id] = struct{}{}
	w.mu.Unlock()
	var buf []byte
	select {
	case buf = <-w.bufs:
	case <-w.gctx.Done():
		return false, w.abortErr()
	}
	buf = append(buf[:0], data...)
	select {
	case w.jobs <- blockJob{id: id, data: buf, buf: buf, hint: hint}:
		return true, nil
	case <-w.gctx.Done():
		return false, w.abortErr()
	}
}

func (w *BlockWriter) abortErr() error {
	return context.Cause(w.gctx)
}

func (w *BlockWriter) compressLoop() error {
	c, err := newBlockCompressor(w.r.cfg.Chunker.Max)
	if err != nil {
		return err
	}
	defer c.Close()
	for {
		var job blockJob
		var ok bool
		select {
		case job, ok = <-w.jobs:
		case <-w.gctx.Done():
			return context.Cause(w.gctx)
		}
		if !ok {
			return nil
		}
		stored, encoding := c.compress(job.data, job.hint)
		if err := w.addToPack(job.id, stored, len(job.data), encoding); err != nil {
			return err
		}
		w.bufs <- job.buf
	}
}

func (w *BlockWriter) addToPack(id format.ID, stored []byte, raw int, enc uint8) error {
	w.NewBlocks.Add(1)
	w.NewRaw.Add(int64(raw))
	w.NewStored.Add(int64(len(stored)))
	return w.pw.Add(id, stored, raw, enc)
}

// Close stores the last pack and returns every pack written; all of them
// are complete in the backend when it returns without error.
func (w *BlockWriter) Close() ([]format.IndexPack, error) {
	w.closed.Do(func() { close(w.jobs) })
	defer w.cancel()
	if err := w.g.Wait(); err != nil {
		w.pw.Abort()
		return nil, err
	}
	packs, err := w.pw.Close(w.ctx)
	if err != nil {
		return nil, fmt.Errorf("write last pack: %w", err)
	}
	return packs, nil
}

// Abort stops the compressors and the uploads without writing the
// pending pack. Safe to call after Close.
func (w *BlockWriter) Abort() {
	w.cancel()
	w.closed.Do(func() { close(w.jobs) })
	_ = w.g.Wait()
	w.pw.Abort()
}

// blockCompressor turns blocks into their stored form, one block at a
// time; each compressor of the pipeline has its own.
type blockCompressor struct {
	enc   *zstd.Encoder // the pipeline's encoder
	plain *zstd.Encoder // the same without entropy coding of literals
	out   []byte
	own   streamHint // for blocks added outside a stream
}

// streamHint is what the compressors learned from the earlier blocks of
// one file. Consecutive blocks of a file may be compressed at the same
// time on different cores, so it is atomic; it only steers effort, and
// never changes what a block decodes to.
type streamHint struct {
	// sample: the last block did not shrink, so a large block is first
	// tried on a sample (see compressible).
	sample atomic.Bool
	// plain counts the blocks in a row whose literals zstd stored raw
	// because Huffman coding did not shrink them (pickled states full of
	// random ids and payloads): from plainAfter on, blocks are compressed
	// without trying, except every probeEvery-th, which tries again.
	plain  atomic.Int32
	blocks atomic.Int32
}

const (
	plainAfter = 2
	probeEvery = 16
)

func newBlockCompressor(maxBlock int) (*blockCompressor, error) {
	enc, err := newBlockEncoder(maxBlock)
	if err != nil {
		return nil, err
	}
	plain, err := zstd.NewWriter(nil, append(blockEncoderOptions(maxBlock), zstd.WithNoEntropyCompression(true))...)
	if err != nil {
		enc.Close()
		return nil, err
	}
	return &blockCompressor{enc: enc, plain: plain, out: make([]byte, 0, maxBlock+1024)}, nil
}

// Close releases the encoders.
func (c *blockCompressor) Close() {
	c.enc.Close()
	c.plain.Close()
}

// compress returns the bytes to store for data and their encoding: one
// zstd frame when that is smaller than data, else data itself. The
// result is valid until the next call. h is the file's hint, nil for
// none.
//
// Huffman coding of literals is tried only while it pays for the file:
// on the generated LocalStack tree, pickled service states compress to
// exactly the same size without it, 20% faster, while SQLite, JSON and
// log blocks keep it (they would grow 9-23%); periodic probes catch a
// file whose content changes. Both kinds of frame decode alike.
func (c *blockCompressor) compress(data []byte, h *streamHint) ([]byte, uint8) {
	if h == nil {
		h = &c.own
	}
	if h.sample.Load() && !compressible(c.enc, data, c.out) {
		return data, format.EncodingRaw
	}
	if h.plain.Load() >= plainAfter && h.blocks.Add(1)%probeEvery != 0 {
		c.out = c.plain.EncodeAll(data, c.out[:0])
	} else {
		c.out = c.enc.EncodeAll(data, c.out[:0])
		if literalsCoded(c.out) {
			h.plain.Store(0)
		} else {
			h.plain.Add(1)
		}
	}
	h.sample.Store(len(c.out) >= len(data)*97/100)
	if len(c.out) < len(data) {
		return c.out, format.EncodingZstd
	}
	return data, format.EncodingRaw
}

// literalsCoded reports whether a zstd frame holds a compressed block
// whose literals are Huffman coded (RFC 8878, 3.1.1.2 and 3.1.1.3.1): a
// frame whose literals are all raw or RLE gained nothing from trying.
// Anything it cannot parse counts as coded, which keeps trying.
func literalsCoded(frame []byte) bool {
	var h zstd.Header
	if err := h.Decode(frame); err != nil || h.HeaderSize > len(frame) {
		return true
	}
	b := frame[h.HeaderSize:]
	for len(b) >= 3 {
		hdr := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
		last, typ, size := hdr&1 == 1, hdr>>1&3, int(hdr>>3)
		b = b[3:]
		switch typ {
		case 1: // RLE block: one byte
			size = 1
		case 2: // compressed: Literals_Block_Type is the low 2 bits
			if len(b) == 0 || b[0]&3 >= 2 {
				return true
			}
		}
		if size > len(b) {
			return true
		}
		b = b[size:]
		if last {
			return false
		}
	}
	return true
}

// newBlockEncoder returns the encoder of one compressor of the save
// pipeline, for blocks of at most maxBlock bytes. Each block becomes one
// zstd frame that a decoder verifies by the block id, so:
//
//   - SpeedFastest on one goroutine (the pipeline runs one encoder per
//     core), no frame checksum (BLAKE3 of the result is checked anyway),
//     and no extra memory for speed that EncodeAll does not use;
//   - a window of the next power of two at or above maxBlock (at least
//     128 KiB, at most the 4 MiB SpeedFastest uses by default). The
//     window is given before the level, so that the level does not lower
//     zstd's block size to 64 KiB: a block of up to 128 KiB (most of them
//     at the default 64 KiB average) is then one zstd block encoded
//     without history, about 9% faster than two with history, and the
//     frame is a single segment that a decoder sizes from its header.
//
// BenchmarkCompress in bench_test.go measures the alternatives.
func newBlockEncoder(maxBlock int) (*zstd.Encoder, error) {
	return zstd.NewWriter(nil, blockEncoderOptions(maxBlock)...)
}

func blockEncoderOptions(maxBlock int) []zstd.EOption {
	window := 128 << 10
	for window < maxBlock && window < 4<<20 {
		window <<= 1
	}
	return []zstd.EOption{zstd.WithWindowSize(window), zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true), zstd.WithEncoderCRC(false)}
}

// sampleSize is how much of a large block is compressed first to tell
// whether the block is worth compressing at all.
const sampleSize = 4096

// compressible compresses a sample of a large block: runs of random data
// (already compressed S3 objects, encrypted stores) are stored raw
// without spending a full compression on each block. Small blocks are
// always tried.
//
// A sample costs about 6% more work on a block that does compress, while
// a full attempt on random data costs little more than a sample (zstd's
// fast encoder skips ahead where it finds no matches and stores literals
// raw: about 10 GB/s, against 0.35-1 GB/s on compressible data). So a
// file's block is sampled only after one of its blocks did not compress,
// and compressed straight away after a sample that does: runs of
// compressible blocks pay nothing, runs of random ones a sample each.
func compressible(enc *zstd.Encoder, data, scratch []byte) bool {
	if len(data) < 4*sampleSize {
		return true
	}
	sample := enc.EncodeAll(data[:sampleSize], scratch[:0])
	return len(sample) < sampleSize*97/100
}
