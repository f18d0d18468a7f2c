package archive

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// TestReadAllSized: whatever size a listing claimed (none, too little,
// too much, absurd), the bytes read are the object's, at most limit+1.
func TestReadAllSized(t *testing.T) {
	data := bytes.Repeat([]byte("index object "), 1000)
	for _, tc := range []struct {
		name        string
		limit, hint int64
		want        int
	}{
		{"no hint", 1 << 20, -1, len(data)},
		{"exact", 1 << 20, int64(len(data)), len(data)},
		{"hint too small", 1 << 20, 10, len(data)},
		{"hint too large", 1 << 20, int64(len(data)) * 3, len(data)},
		{"absurd hint", 1 << 40, 1 << 40, len(data)},
		{"over the limit", 100, 50, 101},
		{"over the limit, exact hint", 100, int64(len(data)), 101},
		{"empty hint", 1 << 20, 0, len(data)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAllSized(io.MultiReader(bytes.NewReader(data[:7]), bytes.NewReader(data[7:])), tc.limit, tc.hint)
			if err != nil || !bytes.Equal(got, data[:tc.want]) {
				t.Fatalf("read %d bytes (%v), want %d", len(got), err, tc.want)
			}
		})
	}
}

// TestReadAllReusing: the bytes read are the object's, at most limit+1,
// into the buffer given when it is large enough; a read error is returned.
func TestReadAllReusing(t *testing.T) {
	data := bytes.Repeat([]byte("pack bytes "), 1000)
	for _, tc := range []struct {
		name   string
		src    []byte
		limit  int64
		buf    []byte
		want   int
		reused bool
	}{
		{"no buffer", data, 1 << 20, nil, len(data), false},
		{"buffer too small", data, 1 << 20, make([]byte, 10), len(data), false},
		{"buffer large enough", data, 1 << 20, make([]byte, 5, len(data)+1), len(data), true},
		{"over the limit", data, 100, make([]byte, 0, 200), 101, true},
		{"empty object", nil, 1 << 20, make([]byte, 0, 8), 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cut := min(7, len(tc.src))
			got, err := readAllReusing(io.MultiReader(bytes.NewReader(tc.src[:cut]), bytes.NewReader(tc.src[cut:])), tc.limit, tc.buf)
			if err != nil || len(got) != tc.want || !bytes.Equal(got, tc.src[:tc.want]) {
				t.Fatalf("read %d bytes (%v), want %d", len(got), err, tc.want)
			}
			if reused := cap(tc.buf) > 0 && cap(got) == cap(tc.buf) && &got[:1][0] == &tc.buf[:1][0]; reused != tc.reused {
				t.Errorf("buffer reused: %v, want %v", reused, tc.reused)
			}
		})
	}
	broken := errors.New("connection reset")
	if _, err := readAllReusing(io.MultiReader(bytes.NewReader(data[:50]), iotest.ErrReader(broken)), 1<<20, nil); !errors.Is(err, broken) {
		t.Errorf("read error: %v, want %v", err, broken)
	}
}
