package benchutil

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/zstd"
)

// PageSize is the unit in which ChangedPages compares files.
const PageSize = 4096

// PageDiff is what changed between two trees, counted in pages.
type PageDiff struct {
	Pages      int64 `json:"pages"`      // 4 KiB pages that differ
	Bytes      int64 `json:"bytes"`      // their bytes (a short last page counts its length)
	Compressed int64 `json:"compressed"` // those bytes as one zstd stream at SpeedFastest (about zstd -1)
}

// ChangedPages compares every regular file under after with the file of
// the same path under before, page by page at the same offsets, and
// compresses the pages that differ (all pages of a file that before lacks)
// in path order as one zstd stream. This is what the ideal incremental
// copy would store: only the changed pages, compressed.
func ChangedPages(before, after string) (PageDiff, error) {
	var d PageDiff
	cw := &countWriter{}
	enc, err := zstd.NewWriter(cw, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return d, err
	}
	err = filepath.WalkDir(after, func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return err
		}
		return diffFile(filepath.Join(before, p[len(after):]), p, enc, &d)
	})
	if cerr := enc.Close(); err == nil {
		err = cerr
	}
	d.Compressed = cw.n
	return d, err
}

// diffFile adds the pages of newName that differ from oldName to d and
// writes them to w.
func diffFile(oldName, newName string, w io.Writer, d *PageDiff) error {
	newF, err := os.Open(newName)
	if err != nil {
		return err
	}
	defer newF.Close()
	var old io.Reader = eofReader{}
	if oldF, err := os.Open(oldName); err == nil {
		defer oldF.Close()
		old = oldF
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	a, b := make([]byte, PageSize), make([]byte, PageSize)
	for {
		nb, err := io.ReadFull(newF, b)
		if nb == 0 {
			return ignoreEOF(err)
		}
		na, _ := io.ReadFull(old, a)
		if na != nb || !bytes.Equal(a[:na], b[:nb]) {
			d.Pages++
			d.Bytes += int64(nb)
			if _, werr := w.Write(b[:nb]); werr != nil {
				return werr
			}
		}
		if err != nil {
			return ignoreEOF(err)
		}
	}
}

func ignoreEOF(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return nil
	}
	return err
}

// eofReader stands in for a file that does not exist before.
type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// countWriter counts and drops what is written.
type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}
