package chunker

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/iotest"
)

func TestFixed(t *testing.T) {
	data := random8M()[:3<<20]
	for _, size := range []int{1, 4096, 4097, 65536} {
		for _, n := range []int{0, 1, size - 1, size, size + 1, 3 * size, 1<<20 + 7, 3 << 20} {
			if n < 0 || n > len(data) {
				continue
			}
			for _, rd := range readers {
				t.Run(fmt.Sprintf("%d/%d/%s", size, n, rd.name), func(t *testing.T) {
					f, err := NewFixed(size)
					if err != nil {
						t.Fatal(err)
					}
					f.Reset(rd.wrap(data[:n]))
					off := 0
					for {
						chunk, err := f.Next()
						if err == io.EOF {
							break
						}
						if err != nil {
							t.Fatal(err)
						}
						want := min(size, n-off)
						if len(chunk) != want || !bytes.Equal(chunk, data[off:off+want]) {
							t.Fatalf("chunk at %d: %d bytes, want %d bytes of the input", off, len(chunk), want)
						}
						off += len(chunk)
					}
					if off != n {
						t.Fatalf("chunks cover %d bytes of %d", off, n)
					}
					if _, err := f.Next(); err != io.EOF {
						t.Fatalf("Next after the end = %v, want io.EOF", err)
					}
				})
			}
		}
	}
}

func TestFixedErrors(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name string
		r    io.Reader
		want error
	}{
		{"read error mid page", io.MultiReader(bytes.NewReader(make([]byte, 6000)), iotest.ErrReader(errBoom)), errBoom},
		{"invalid count", badReader{}, errBadRead},
		{"no progress", stuckReader{}, io.ErrNoProgress},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := NewFixed(4096)
			if err != nil {
				t.Fatal(err)
			}
			f.Reset(tt.r)
			var got []int
			for {
				chunk, err := f.Next()
				if err == nil {
					got = append(got, len(chunk))
					continue
				}
				if !errors.Is(err, tt.want) {
					t.Fatalf("Next = %v, want an error wrapping %v", err, tt.want)
				}
				if _, err2 := f.Next(); err2 != err {
					t.Fatalf("error not sticky: %v then %v", err, err2)
				}
				break
			}
			for _, n := range got {
				if n != 4096 {
					t.Fatalf("chunks %v: a chunk cut short by a read error was returned", got)
				}
			}
		})
	}
	for _, size := range []int{0, -1, MaxFixedSize + 1} {
		if _, err := NewFixed(size); err == nil {
			t.Errorf("NewFixed(%d) accepted", size)
		}
	}
}
