package torture

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/statepack/statepack/internal/miniotest"
	"github.com/statepack/statepack/internal/testbin"
)

func TestMain(m *testing.M) {
	code := miniotest.Main(m)
	if err := writeReport(); err != nil {
		fmt.Fprintf(os.Stderr, "torture: write report: %v\n", err)
		code = 1
	}
	removeBinary()
	os.Exit(code)
}

// Environment variables that shape a run.
const (
	envRounds = "STATEPACK_TORTURE"
	envSeed   = "STATEPACK_TORTURE_SEED"
	envMB     = "STATEPACK_TORTURE_MB"
	envReport = "STATEPACK_TORTURE_REPORT"
)

// config is what one run of the package does, from the environment.
type config struct {
	Rounds  int    // kill points per command and backend
	Seed    uint64 // everything random derives from it
	DataMB  int64  // size of the generated DATA_DIR
	Long    bool   // STATEPACK_TORTURE was set
	Command string // how to run the same again
}

var (
	cfgOnce sync.Once
	cfg     config
	cfgErr  error
)

// settings reads the run's configuration once and logs how to replay it.
func settings(t testing.TB) config {
	t.Helper()
	cfgOnce.Do(func() {
		cfg = config{Rounds: 8, DataMB: 24}
		if testing.Short() {
			cfg.Rounds = 3
		}
		if v := os.Getenv(envRounds); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				cfgErr = fmt.Errorf("%s=%q: want a positive count", envRounds, v)
				return
			}
			cfg.Rounds, cfg.Long, cfg.DataMB = n, true, 48
		}
		if v := os.Getenv(envMB); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 4 || n > 4096 {
				cfgErr = fmt.Errorf("%s=%q: want MiB between 4 and 4096", envMB, v)
				return
			}
			cfg.DataMB = n
		}
		cfg.Seed = uint64(time.Now().UnixNano())
		if v := os.Getenv(envSeed); v != "" {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				cfgErr = fmt.Errorf("%s=%q: want an unsigned integer", envSeed, v)
				return
			}
			cfg.Seed = n
		}
		var cmd []string
		if cfg.Long {
			cmd = append(cmd, fmt.Sprintf("%s=%d", envRounds, cfg.Rounds))
		}
		cmd = append(cmd, fmt.Sprintf("%s=%d", envSeed, cfg.Seed))
		if os.Getenv(envMB) != "" {
			cmd = append(cmd, fmt.Sprintf("%s=%d", envMB, cfg.DataMB))
		}
		cmd = append(cmd, "go test -count=1 -timeout 60m -run Torture ./internal/torture")
		cfg.Command = strings.Join(cmd, " ")
	})
	if cfgErr != nil {
		t.Fatal(cfgErr)
	}
	return cfg
}

// binPath remembers the binary testbin built, so that TestMain can remove
// it (testbin.Main would, but it cannot be combined with miniotest.Main).
var binPath struct {
	sync.Mutex
	path string
}

// binary returns the statepack binary, built on first use.
func binary(t testing.TB) string {
	t.Helper()
	p := testbin.Path(t)
	binPath.Lock()
	binPath.path = p
	binPath.Unlock()
	return p
}

func removeBinary() {
	binPath.Lock()
	defer binPath.Unlock()
	if binPath.path == "" || os.Getenv("STATEPACK_BIN") != "" {
		return
	}
	if dir := filepath.Dir(binPath.path); strings.HasPrefix(filepath.Base(dir), "statepack-testbin-") {
		_ = os.RemoveAll(dir)
	}
}
