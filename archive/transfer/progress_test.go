package transfer_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/statepack/statepack/archive/transfer"
	"github.com/statepack/statepack/internal/treetest"
)

// countingSink records the totals a phase announced and what was added.
type countingSink struct {
	mu                 sync.Mutex
	totalFiles, totalB int64
	addedFiles, addedB int64
}

func (s *countingSink) Phase(_ string, files, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.totalFiles += files
	s.totalB += bytes
}

func (s *countingSink) Add(files, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addedFiles += files
	s.addedB += bytes
}

func (s *countingSink) Warn(string) {}

// TestPushProgressCountsBytes: a cold push, which sends whole packs as
// they are, reports their bytes as it goes, so that its progress bar
// reaches the total it announced instead of staying at 0%.
func TestPushProgressCountsBytes(t *testing.T) {
	a, rem := newStoreWith(t, 1<<20), dirRemote(t)
	files := map[string]treetest.Spec{}
	for i := range 4 {
		files[filepath.Join("s3", string(rune('a'+i)))] = treetest.Spec{Content: bigContent(byte(i), 1<<20)}
	}
	treetest.Write(t, a.data, files)
	a.save(t, "main")
	sink := &countingSink{}
	res, err := transfer.Push(context.Background(), a.repo, rem, transfer.PushOptions{State: "main", Progress: sink})
	if err != nil {
		t.Fatal(err)
	}
	if res.Bytes == 0 || sink.totalB != res.Bytes || sink.addedB != sink.totalB || sink.addedFiles != sink.totalFiles {
		t.Errorf("push of %d bytes: phases announced %d blocks, %d bytes; progress reached %d blocks, %d bytes",
			res.Bytes, sink.totalFiles, sink.totalB, sink.addedFiles, sink.addedB)
	}
}

// TestPullMissMessage: a miss names the state and its fallbacks, in the
// singular for one.
func TestPullMissMessage(t *testing.T) {
	a, rem := newStore(t), dirRemote(t)
	for _, tc := range []struct {
		fallbacks []string
		want      string
	}{
		{nil, "state 'pr-1' not found"},
		{[]string{"main"}, "state 'pr-1' (nor its fallback 'main') not found"},
		{[]string{"main", "dev"}, "state 'pr-1' (nor its fallbacks 'main', 'dev') not found"},
	} {
		_, err := transfer.Pull(context.Background(), a.repo, rem, transfer.PullOptions{State: "pr-1", Fallbacks: tc.fallbacks})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("pull with fallbacks %q: %v, want %q", tc.fallbacks, err, tc.want)
		}
	}
}
