package saver

import (
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// holeReader reads a file but produces the zeros of its holes without
// asking the kernel for them (SEEK_DATA/SEEK_HOLE): a sparse file of many
// gigabytes costs memory-speed zeroing, not reads. The bytes are exactly
// the file's, so chunk boundaries do not change.
type holeReader struct {
	f        *os.File
	off      int64
	size     int64
	holeEnd  int64 // when off < holeEnd, [off, holeEnd) is a hole
	dataEnd  int64 // when off < dataEnd, [off, dataEnd) is data
	disabled bool  // the file system does not report holes
}

func newHoleReader(f *os.File, size int64) *holeReader {
	return &holeReader{f: f, size: size}
}

func (h *holeReader) Read(p []byte) (int, error) {
	if h.off >= h.size {
		return 0, io.EOF
	}
	if !h.disabled && h.off >= h.holeEnd && h.off >= h.dataEnd {
		h.locate()
	}
	p = p[:min(int64(len(p)), h.size-h.off)]
	if !h.disabled && h.off < h.holeEnd {
		n := min(int64(len(p)), h.holeEnd-h.off)
		clear(p[:n])
		h.off += n
		return int(n), nil
	}
	if !h.disabled {
		p = p[:min(int64(len(p)), h.dataEnd-h.off)]
	}
	n, err := h.f.ReadAt(p, h.off)
	h.off += int64(n)
	if errors.Is(err, io.EOF) && h.off < h.size {
		err = io.ErrUnexpectedEOF // shrank while read; the stat check catches it
	}
	if err == io.EOF || (err == nil && n == 0) {
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

// locate finds whether off starts a hole or data, and where it ends.
func (h *holeReader) locate() {
	fd := int(h.f.Fd())
	data, err := unix.Seek(fd, h.off, unix.SEEK_DATA)
	switch {
	case errors.Is(err, unix.ENXIO): // no data after off: a hole to the end
		h.holeEnd = h.size
		return
	case err != nil:
		h.disabled = true
		return
	case data > h.off:
		h.holeEnd = min(data, h.size)
		return
	}
	hole, err := unix.Seek(fd, h.off, unix.SEEK_HOLE)
	if err != nil {
		h.disabled = true
		return
	}
	h.dataEnd = min(hole, h.size)
	if h.dataEnd <= h.off {
		h.disabled = true
	}
}
