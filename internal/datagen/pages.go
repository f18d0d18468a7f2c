package datagen

import (
	"bytes"
	"io"
	"io/fs"
	"os"
)

// rewritePage writes p over page i of f and reports (as 0 or 1) whether its
// bytes changed; old is a page-sized scratch buffer.
func rewritePage(f *os.File, i int64, p, old []byte) (int, error) {
	if _, err := f.ReadAt(old, i*PageSize); err != nil {
		return 0, err
	}
	changed := 0
	if !bytes.Equal(old, p) {
		changed = 1
	}
	_, err := f.WriteAt(p, i*PageSize)
	return changed, err
}

// insertInto writes to dst (created, with mode perm) the content of src with
// ins inserted at offset at, streaming the rest of src.
func insertInto(src, dst string, at int64, ins []byte, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err = io.CopyN(out, in, at); err == nil {
		if _, err = out.Write(ins); err == nil {
			_, err = io.Copy(out, in)
		}
	}
	if err == nil {
		err = out.Chmod(perm)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// changedPages counts the pages of file newName that differ from the bytes
// at the same offsets of file oldName, reading both in pieces.
func changedPages(oldName, newName string) (int, error) {
	oldF, err := os.Open(oldName)
	if err != nil {
		return 0, err
	}
	defer oldF.Close()
	newF, err := os.Open(newName)
	if err != nil {
		return 0, err
	}
	defer newF.Close()
	oldBuf, newBuf := make([]byte, pieceSize), make([]byte, pieceSize)
	changed := 0
	for {
		nn, err := io.ReadFull(newF, newBuf)
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return 0, err
		}
		no, err := io.ReadFull(oldF, oldBuf)
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return 0, err
		}
		changed += comparePages(oldBuf[:no], newBuf[:nn])
		if nn < len(newBuf) {
			return changed, nil
		}
	}
}

// comparePages counts the pages of cur that differ from old at the same
// offsets; a page that old lacks or holds only in part differs.
func comparePages(old, cur []byte) int {
	n := 0
	for off := 0; off < len(cur); off += PageSize {
		end, oldEnd := min(off+PageSize, len(cur)), min(off+PageSize, len(old))
		if off >= len(old) || !bytes.Equal(old[off:oldEnd], cur[off:end]) {
			n++
		}
	}
	return n
}
