package miniotest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// readyTimeout bounds the wait for a starting MinIO to answer.
const readyTimeout = 60 * time.Second

// process is a MinIO child process and its data directory.
type process struct {
	cmd  *exec.Cmd
	dir  string
	logs *tail
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, valid after done
}

// findMinIO locates the binary: STATEPACK_MINIO, the module's
// .tools/bin/minio, or minio on PATH.
func findMinIO() (string, error) {
	if p := os.Getenv(EnvMinIO); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvMinIO, p, err)
		}
		return p, nil
	}
	if root, ok := moduleRoot(); ok {
		p := filepath.Join(root, ".tools", "bin", "minio")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	return "", errNoMinIO
}

// moduleRoot walks up from the working directory (a test's package
// directory) to the directory holding go.mod.
func moduleRoot() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// startMinIO starts bin and waits until it serves. A port taken between
// choosing and binding it makes MinIO exit; then it tries again.
func startMinIO(ctx context.Context, bin string, opts Options) (*Server, error) {
	var err error
	for range 3 {
		var s *Server
		if s, err = startOnce(ctx, bin, opts); err == nil {
			return s, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, err
}

func startOnce(ctx context.Context, bin string, opts Options) (*Server, error) {
	dir, err := os.MkdirTemp("", "statepack-minio-")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(2)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &Server{
		Endpoint:  "http://127.0.0.1:" + strconv.Itoa(ports[0]),
		AccessKey: "statepack-" + RandomHex(4),
		SecretKey: RandomHex(16),
	}
	var env []string
	if opts.TLS {
		s.Endpoint = "https://127.0.0.1:" + strconv.Itoa(ports[0])
		if s.CAFile, err = writeSelfSigned(filepath.Join(dir, "certs")); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	if opts.KMSKey != "" {
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		s.KMSKeyID = opts.KMSKey
		env = append(env, "MINIO_KMS_SECRET_KEY="+opts.KMSKey+":"+base64.StdEncoding.EncodeToString(key))
	}
	p, err := spawn(bin, dir, ports, s.AccessKey, s.SecretKey, env)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := p.waitReady(ctx, s.Endpoint, s.CAFile); err != nil {
		p.stop()
		return nil, err
	}
	s.proc = p
	if err := s.connect(); err != nil {
		p.stop()
		return nil, err
	}
	return s, nil
}

func spawn(bin, dir string, ports []int, user, password string, extraEnv []string) (*process, error) {
	cmd := exec.Command(bin, "server", filepath.Join(dir, "data"),
		"--address", "127.0.0.1:"+strconv.Itoa(ports[0]),
		"--console-address", "127.0.0.1:"+strconv.Itoa(ports[1]),
		"--certs-dir", filepath.Join(dir, "certs")) // never pick up ~/.minio/certs
	cmd.Env = append(hermeticEnv(),
		"MINIO_ROOT_USER="+user,
		"MINIO_ROOT_PASSWORD="+password,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CI_CD=1",
	)
	cmd.Env = append(cmd.Env, extraEnv...)
	logs := &tail{max: 16 << 10}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &process{cmd: cmd, dir: dir, logs: logs, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// hermeticEnv is the environment without MINIO_* settings of the user's.
func hermeticEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MINIO_") {
			env = append(env, kv)
		}
	}
	return env
}

// freePorts asks the kernel for n free loopback ports.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// waitReady polls MinIO's readiness probe until it answers 200, the
// process exits, or readyTimeout passes. caFile, when set, is the CA an
// HTTPS endpoint's certificate is checked against.
func (p *process) waitReady(ctx context.Context, endpoint, caFile string) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	tr, err := transport(caFile)
	if err != nil {
		return err
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Timeout: 2 * time.Second, Transport: tr}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/minio/health/ready", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("minio exited before it was ready (%v); output:\n%s", p.err, p.logs)
		case <-ctx.Done():
			return fmt.Errorf("minio not ready at %s after %v; output:\n%s", endpoint, readyTimeout, p.logs)
		case <-tick.C:
		}
	}
}

// stop ends the process (politely, then not) and removes its data.
func (p *process) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	os.RemoveAll(p.dir)
}

// tail keeps the last max bytes written to it: MinIO's output, shown when
// it fails to start.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = t.buf[over:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
