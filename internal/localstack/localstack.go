// Package localstack talks to a running LocalStack so that statepack can
// snapshot a consistent DATA_DIR: before a save LocalStack is asked to
// write its in-memory state to disk, after a restore to load it again. It
// also knows where each service keeps its state under DATA_DIR, so users
// can name services instead of path globs.
package localstack

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"
)

// DefaultURL is where LocalStack listens unless told otherwise.
const DefaultURL = "http://localhost:4566"

// Client calls LocalStack's state endpoints.
type Client struct {
	URL  string
	HTTP *http.Client
}

// New returns a client for url (DefaultURL when empty) with a timeout
// that bounds a LocalStack that accepts but never answers.
func New(url string) *Client {
	if url == "" {
		url = DefaultURL
	}
	return &Client{URL: strings.TrimSuffix(url, "/"), HTTP: &http.Client{Timeout: 5 * time.Minute}}
}

// Result is one line of LocalStack's streamed answer.
type Result struct {
	Service string `json:"service"`
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

// ServiceError names the service whose state LocalStack could not write or
// load.
type ServiceError struct {
	Op      string // "save" or "load"
	Service string
	Status  string
	Message string
}

func (e *ServiceError) Error() string {
	msg := fmt.Sprintf("LocalStack could not %s the state of %s (status %q)", e.Op, e.Service, e.Status)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// ErrUnreachable: nothing answers at the LocalStack URL.
var ErrUnreachable = errors.New("LocalStack is not reachable")

// ErrNotReady: something answers at the LocalStack URL, but not as a
// LocalStack that is up (its health endpoint does not say OK).
var ErrNotReady = errors.New("LocalStack is not ready")

// pingTimeout bounds Ping: the health endpoint answers at once when
// LocalStack is up.
const pingTimeout = 15 * time.Second

// Ping checks that LocalStack is up with GET /_localstack/health, so that
// a command can refuse before it changes anything rather than fail after.
// The error wraps ErrUnreachable or ErrNotReady.
func (c *Client) Ping(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, http.MethodGet, c.URL+"/_localstack/health", nil)
	if err != nil {
		return fmt.Errorf("LocalStack URL %s: %w", c.URL, err)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err() // the caller gave up, not LocalStack
		}
		return fmt.Errorf("%w at %s: is it running? (%v)", ErrUnreachable, c.URL, unwrapURLError(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%w: %s answered %s to GET /_localstack/health", ErrNotReady, c.URL, resp.Status)
	}
	return nil
}

// Save asks LocalStack to persist the state of services (all when empty)
// with POST /_localstack/state/save.
func (c *Client) Save(ctx context.Context, services []string) ([]Result, error) {
	return c.call(ctx, "save", services)
}

// Load asks LocalStack to reload its state from DATA_DIR with POST
// /_localstack/state/load.
func (c *Client) Load(ctx context.Context, services []string) ([]Result, error) {
	return c.call(ctx, "load", services)
}

func (c *Client) call(ctx context.Context, op string, services []string) ([]Result, error) {
	var body io.Reader
	if len(services) > 0 {
		data, _ := json.Marshal(map[string][]string{"services": services})
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL+"/_localstack/state/"+op, body)
	if err != nil {
		return nil, fmt.Errorf("LocalStack URL %s: %w", c.URL, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w at %s: is it running? (%v)", ErrUnreachable, c.URL, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("LocalStack at %s answered %s to state %s: %s", c.URL, resp.Status, op, strings.TrimSpace(string(snippet)))
	}
	return readResults(resp.Body, op)
}

// readResults reads the JSON lines LocalStack streams, one per service,
// and fails naming the first service that did not report "ok".
func readResults(r io.Reader, op string) ([]Result, error) {
	var out []Result
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var res Result
		if err := json.Unmarshal(line, &res); err != nil {
			return out, fmt.Errorf("LocalStack sent an unreadable line during state %s: %q", op, truncate(string(line), 120))
		}
		out = append(out, res)
		if !strings.EqualFold(res.Status, "ok") {
			return out, &ServiceError{Op: op, Service: res.Service, Status: res.Status, Message: res.Message}
		}
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("LocalStack stopped answering during state %s: %w", op, err)
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func unwrapURLError(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

// extraDirs are the directories some services keep beside api_states.
var extraDirs = map[string][]string{
	"dynamodb":   {"dynamodb"},
	"kinesis":    {"kinesis"},
	"s3":         {"s3"},
	"lambda":     {"lambda"},
	"opensearch": {"opensearch"},
	"es":         {"elasticsearch"},
}

// Paths maps LocalStack service names to the globs, relative to DATA_DIR,
// that hold their state: api_states/<service> for every service, plus the
// service's own directory for those that have one (dynamodb/, kinesis/,
// s3/ ...). A name that is not a plain service name is an error.
func Paths(services []string) ([]string, error) {
	var out []string
	for _, s := range services {
		s = strings.ToLower(strings.TrimSpace(s))
		if s == "" {
			continue
		}
		for _, c := range s {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return nil, fmt.Errorf("invalid LocalStack service name %q", s)
			}
		}
		out = append(out, "api_states/"+s)
		out = append(out, extraDirs[s]...)
	}
	sort.Strings(out)
	return out, nil
}

// SplitServices splits a --services value: "sqs,s3 dynamodb".
func SplitServices(list []string) []string {
	var out []string
	for _, l := range list {
		out = append(out, strings.FieldsFunc(l, func(r rune) bool { return r == ',' || r == ' ' })...)
	}
	return out
}
