package actiontest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/statepack/statepack/internal/treetest"
)

// localStack stands in for the LocalStack of one job, answering its state
// endpoints: asked to save, it writes a file into DATA_DIR, as LocalStack
// writes its state; asked to load, it records the tree it would load.
type localStack struct {
	url string
	dir string // DATA_DIR

	mu     sync.Mutex
	ops    []string      // what it was asked to do
	atLoad treetest.Tree // DATA_DIR when asked to load
	err    error         // what went wrong in the stand-in
}

// savedFile is the file it writes when asked to save.
const savedFile = "api_states/sqs/saved-by-localstack.json"

func startLocalStack(t *testing.T, dataDir string) *localStack {
	ls := &localStack{dir: dataDir}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /_localstack/state/{op}", ls.serve)
	// statepack asks whether LocalStack is up before it restores.
	mux.HandleFunc("GET /_localstack/health", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"services": {}}`))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	ls.url = srv.URL
	return ls
}

// done returns what LocalStack was asked to do and DATA_DIR at the load.
func (ls *localStack) done(t *testing.T) ([]string, treetest.Tree) {
	t.Helper()
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.err != nil {
		t.Fatalf("the LocalStack stand-in: %v", ls.err)
	}
	return ls.ops, ls.atLoad
}

func (ls *localStack) serve(w http.ResponseWriter, r *http.Request) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	op := r.PathValue("op")
	var err error
	switch {
	case op != "save" && op != "load":
		err = fmt.Errorf("unexpected state operation %q", op)
	case op == "save":
		err = os.WriteFile(filepath.Join(ls.dir, filepath.FromSlash(savedFile)), []byte(`{"saved": true}`), 0o644)
	default:
		ls.atLoad, err = treetest.Read(ls.dir)
	}
	ls.ops = append(ls.ops, op)
	if err != nil {
		ls.err = err
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	for _, s := range []string{"dynamodb", "s3", "sqs"} {
		fmt.Fprintf(w, `{"service": %q, "status": "ok"}`+"\n", s)
	}
}
