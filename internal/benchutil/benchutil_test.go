package benchutil

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
)

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []time.Duration
		want time.Duration
	}{
		{"none", nil, 0},
		{"one", []time.Duration{5}, 5},
		{"odd", []time.Duration{9, 1, 5}, 5},
		{"even", []time.Duration{4, 1, 2, 3}, 2}, // (2+3)/2 in integer nanoseconds
	} {
		if got := Median(c.in); got != c.want {
			t.Errorf("%s: Median(%v) = %v, want %v", c.name, c.in, got, c.want)
		}
	}
	if got := MedianInt([]int64{7, 1, 3, 5}); got != 3 {
		t.Errorf("MedianInt = %d, want 3 (the lower middle)", got)
	}
}

func TestSeriesSummary(t *testing.T) {
	var s Series
	for _, x := range []Sample{{Wall: 3, CPU: 30, MaxRSS: 10}, {Wall: 1, CPU: 10, MaxRSS: 50}, {Wall: 2, CPU: 20, MaxRSS: 20}} {
		s.Add(x)
	}
	got := s.Summary()
	want := Summary{Runs: 3, Wall: 2, MinW: 1, MaxW: 3, CPU: 20, MaxRSS: 50}
	if got != want {
		t.Errorf("Summary = %+v, want %+v", got, want)
	}
}

// TestRun: a child's output, wall time, CPU time and peak RSS are
// measured, and a failure quotes its standard error.
func TestRun(t *testing.T) {
	s, out, err := Run(exec.Command("sh", "-c", "echo hello; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done"))
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "hello\n" || s.Wall <= 0 || s.CPU <= 0 || s.MaxRSS < 1<<10 {
		t.Errorf("Run = %+v, %q", s, out)
	}
	_, _, err = Run(exec.Command("sh", "-c", "echo broken >&2; exit 3"))
	if err == nil || !strings.Contains(err.Error(), "broken") {
		t.Errorf("failed Run error = %v, want it to quote stderr", err)
	}
}

func writeFile(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestChangedPages: rewritten, appended and new pages count, equal pages
// and deleted files do not.
func TestChangedPages(t *testing.T) {
	dir := t.TempDir()
	before, after := filepath.Join(dir, "before"), filepath.Join(dir, "after")
	page := func(c byte) []byte { return bytes.Repeat([]byte{c}, PageSize) }
	writeFile(t, filepath.Join(before, "db"), bytes.Join([][]byte{page('a'), page('b'), page('c')}, nil))
	writeFile(t, filepath.Join(after, "db"), bytes.Join([][]byte{page('a'), page('X'), page('c'), page('d')[:100]}, nil))
	writeFile(t, filepath.Join(before, "same"), page('s'))
	writeFile(t, filepath.Join(after, "same"), page('s'))
	writeFile(t, filepath.Join(before, "gone"), page('g'))
	writeFile(t, filepath.Join(after, "sub/new"), page('n'))
	d, err := ChangedPages(before, after)
	if err != nil {
		t.Fatal(err)
	}
	if d.Pages != 3 || d.Bytes != 2*PageSize+100 {
		t.Errorf("ChangedPages = %+v, want 3 pages of %d bytes", d, 2*PageSize+100)
	}
	if d.Compressed <= 0 || d.Compressed >= d.Bytes {
		t.Errorf("compressed %d bytes of %d repetitive ones", d.Compressed, d.Bytes)
	}
}

func TestDirBytes(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "packs/a"), make([]byte, 10))
	writeFile(t, filepath.Join(dir, "cache/c"), make([]byte, 100))
	writeFile(t, filepath.Join(dir, "config"), make([]byte, 1))
	for _, c := range []struct {
		skip []string
		want int64
	}{{nil, 111}, {[]string{"cache"}, 11}, {[]string{"cache", "config"}, 10}} {
		if got, err := DirBytes(dir, c.skip...); err != nil || got != c.want {
			t.Errorf("DirBytes(skip %v) = %d, %v; want %d", c.skip, got, err, c.want)
		}
	}
}

func TestRemoveAllReadOnlyDirs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tree")
	writeFile(t, filepath.Join(dir, "ro/file"), []byte("x"))
	if err := os.Chmod(filepath.Join(dir, "ro"), 0o555); err != nil {
		t.Fatal(err)
	}
	if err := RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("tree still there: %v", err)
	}
}

func TestTable(t *testing.T) {
	tb := &Table{Left: 1, Header: []string{"op", "s"}, Rows: [][]string{{"save", "1.5"}, {"no-op save", "10.25"}}}
	var buf bytes.Buffer
	if err := tb.Fprint(&buf); err != nil {
		t.Fatal(err)
	}
	want := "op              s\n----------  -----\nsave          1.5\nno-op save  10.25\n"
	if buf.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", buf.String(), want)
	}
}

// TestCountingProxy: requests are counted and forwarded with the Host
// header the client sent.
func TestCountingProxy(t *testing.T) {
	var hosts []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hosts = append(hosts, r.Host)
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	p, err := StartCountingProxy(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for range 3 {
		resp, err := http.Get(p.URL + "/bucket/key")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "ok" {
			t.Fatalf("body %q", body)
		}
	}
	if n := p.Take(); n != 3 {
		t.Errorf("Take = %d, want 3", n)
	}
	if n := p.Take(); n != 0 {
		t.Errorf("second Take = %d, want 0", n)
	}
	if want := strings.TrimPrefix(p.URL, "http://"); len(hosts) == 0 || hosts[0] != want {
		t.Errorf("server saw Host %v, want %s", hosts, want)
	}
}

// TestLink: bytes cross a Link intact both ways, and connections share
// its rate: two downloads at once take at least their sum over the rate.
// Only lower bounds are checked, which a slow machine cannot break.
func TestLink(t *testing.T) {
	const rate, size = 8 << 20, 2 << 20
	payload := bytes.Repeat([]byte("statepack link "), size/15+1)[:size]
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			b, _ := io.ReadAll(r.Body)
			if bytes.Equal(b, payload) {
				got.Add(1)
			}
			return
		}
		_, _ = w.Write(payload)
	}))
	defer srv.Close()
	l, err := StartLink(strings.TrimPrefix(srv.URL, "http://"), rate)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	least := func(bytes int) time.Duration { return time.Duration(bytes)*time.Second/rate - linkBurst }

	start := time.Now()
	var g errgroup.Group
	for range 2 {
		g.Go(func() error {
			resp, err := http.Get(l.URL + "/object")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err == nil && !bytes.Equal(b, payload) {
				err = fmt.Errorf("GET: %d bytes, not the %d the server sent", len(b), size)
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < least(2*size) {
		t.Errorf("two GETs of %d bytes at once took %v over a link of %d B/s, want at least %v", size, d, rate, least(2*size))
	}

	start = time.Now()
	req, _ := http.NewRequest(http.MethodPut, l.URL+"/object", bytes.NewReader(payload))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if d := time.Since(start); d < least(size) {
		t.Errorf("PUT of %d bytes took %v, want at least %v", size, d, least(size))
	}
	if got.Load() != 1 {
		t.Error("the server did not receive the PUT's bytes intact")
	}
	if _, err := StartLink("127.0.0.1:1", 0); err == nil {
		t.Error("StartLink accepted a rate of 0")
	}
}

// TestTrash: a retired tree, read-only directories included, leaves its
// place and stays on disk until Empty; retiring nothing is no error.
func TestTrash(t *testing.T) {
	base := t.TempDir()
	tr, err := NewTrash(filepath.Join(base, "trash"))
	if err != nil {
		t.Fatal(err)
	}
	tree := filepath.Join(base, "tree")
	if err := os.MkdirAll(filepath.Join(tree, "ro"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "ro", "f"), []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(tree, "ro"), 0o555); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second time there is nothing to retire
		if err := tr.Retire(tree); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Lstat(tree); !os.IsNotExist(err) {
		t.Errorf("retired tree still in its place (%v)", err)
	}
	if n, err := DirBytes(filepath.Join(base, "trash")); err != nil || n != 4 {
		t.Errorf("trash holds %d bytes (%v), want the retired file's 4", n, err)
	}
	if err := tr.Empty(); err != nil {
		t.Fatal(err)
	}
	if n, _ := DirBytes(filepath.Join(base, "trash")); n != 0 {
		t.Errorf("emptied trash holds %d bytes", n)
	}
	if free, err := FreeBytes(base); err != nil || free <= 0 {
		t.Errorf("FreeBytes = %d, %v", free, err)
	}
}

func TestWarmSize(t *testing.T) {
	for _, c := range []struct{ n, free, want int64 }{
		{2 << 30, 20 << 30, 2 << 30},
		{2 << 30, 2 << 30, 1 << 30}, // leaves warmReserve free
		{2 << 30, 1 << 30, 0},
		{2 << 30, 0, 0}, // MemFree unknown
		{0, 20 << 30, 0},
	} {
		if got := warmSize(c.n, c.free); got != c.want {
			t.Errorf("warmSize(%d, %d) = %d, want %d", c.n, c.free, got, c.want)
		}
	}
}

// TestWarmMemory: the memory is faulted in and given back; the suite's
// RSS, which every child's peak includes, is not left higher.
func TestWarmMemory(t *testing.T) {
	if freeMemory() <= 0 {
		t.Fatal("MemFree not found in /proc/meminfo")
	}
	rss := func() int64 {
		var kib int64
		fmt.Sscanf(ProcField("/proc/self/status", "VmRSS"), "%d kB", &kib)
		return kib << 10
	}
	before := rss()
	if err := WarmMemory(64 << 20); err != nil {
		t.Fatal(err)
	}
	if after := rss(); after > before+16<<20 {
		t.Errorf("RSS %d MiB after warming, %d before: the memory was not given back", after>>20, before>>20)
	}
}
