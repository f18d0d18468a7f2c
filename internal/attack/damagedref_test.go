package attack

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestForceReplacesDamagedRef: a ref that holds no snapshot id (garbage a
// careless script or an attacker wrote) stops push and pull with a clear
// line that says --force replaces it, and --force does: by compare-and-
// swap against what the ref held, on the remote (push) and in the local
// store (pull). Before, --force could not, since the damaged ref came
// without the version tag a compare-and-swap needs, and the only way out
// was deleting the object by hand.
func TestForceReplacesDamagedRef(t *testing.T) {
	forEachRemote(t, func(t *testing.T, h *hostile) {
		v := h.victim
		h.put("refs/mine", []byte("not a snapshot id\n"))
		r := v.run("push", "mine")
		if r.code == 0 || !strings.Contains(r.stderr, "--force replaces it") {
			t.Fatalf("push over a damaged remote ref: want a refusal that names --force:\n%s", r)
		}
		v.must("push", "mine", "--force")
		mine := v.jsonField("snapshot", "push", "mine") // up to date now
		if got := string(h.get("refs/mine")); got != mine+"\n" {
			t.Fatalf("remote ref after push --force: %q, want %s", got, mine)
		}

		// The same in the local store: pull --force replaces its ref.
		ref := filepath.Join(v.store, "refs", "base")
		if err := os.MkdirAll(filepath.Dir(ref), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(ref, []byte("garbage"), 0o644); err != nil {
			t.Fatal(err)
		}
		r = v.run("pull", "base")
		if r.code == 0 || !strings.Contains(r.stderr, "--force replaces it") {
			t.Fatalf("pull over a damaged local ref: want a refusal that names --force:\n%s", r)
		}
		v.must("pull", "base", "--force")
		if got, err := os.ReadFile(ref); err != nil || string(got) != h.baseID.String()+"\n" {
			t.Fatalf("local ref after pull --force: %q, %v; want %s", got, err, h.baseID)
		}
		v.must("verify")
	})
}
