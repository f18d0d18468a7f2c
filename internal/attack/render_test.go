package attack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/minio/minio-go/v7"

	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/internal/miniotest"
)

// Issue 15, item 6: strings a remote controls (a snapshot's message,
// labels, host, user, tool, paths, symlink targets, a lock's holder) must
// not reach the user's terminal raw. An OSC 52 sequence writes the
// clipboard, CSI 2J clears the screen, U+202E reverses what follows, an
// 8-bit CSI (U+009B, or the lone byte 0x9b) works on some terminals too.

const (
	osc52   = "\x1b]52;c;SGVsbG8=\x07"
	clear2J = "\x1b[2J"
	rlo     = "\u202e"
	csi8    = "\u009b"
)

// hostileText holds every sequence; hostileTextEscaped is how a terminal
// must show it.
var (
	hostileText        = "x" + osc52 + clear2J + rlo + csi8 + "y"
	hostileTextEscaped = `x\x1b]52;c;SGVsbG8=\x07\x1b[2J\u202e\u009by`
)

// rawControl returns the first character of out that could drive a
// terminal, described, or "" when there is none. Newlines and tabs are
// layout.
func rawControl(out string) string {
	for i, r := range out {
		switch {
		case r == utf8.RuneError:
			if _, n := utf8.DecodeRuneInString(out[i:]); n == 1 {
				return fmt.Sprintf("invalid UTF-8 byte %#x at %d", out[i], i)
			}
		case r == '\n' || r == '\t':
		case r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 || unicode.Is(unicode.Cf, r):
			return fmt.Sprintf("raw %U at %d in %q", r, i, out[max(0, i-40):min(len(out), i+40)])
		}
	}
	return ""
}

// renderSafely runs args on e and checks that nothing in its output,
// stdout and stderr, could drive a terminal, and that each of want is
// there (escaped). It returns the run.
func renderSafely(t *testing.T, e *env, wantCode int, args []string, want ...string) result {
	t.Helper()
	r := e.run(args...)
	if r.code != wantCode {
		t.Fatalf("want exit %d:\n%s", wantCode, r)
	}
	if bad := rawControl(r.stdout + r.stderr); bad != "" {
		t.Errorf("statepack %s: %s", strings.Join(args, " "), bad)
	}
	for _, w := range want {
		if !strings.Contains(r.stdout+r.stderr, w) {
			t.Errorf("statepack %s does not show %q:\n%s", strings.Join(args, " "), w, r)
		}
	}
	return r
}

// TestHostileTerminalEscapes publishes a snapshot whose every free text
// field, a path and a symlink target hold escape sequences, and runs the
// commands that show them: list, log, show --files, pull, diff (two
// snapshots and DATA_DIR), restore and status, each as a human would
// and with --json.
func TestHostileTerminalEscapes(t *testing.T) {
	forEachRemote(t, func(t *testing.T, h *hostile) {
		m := manifest(
			dirEntry("dir"+hostileText),
			fileEntry("dir"+hostileText+"/file", h.payload),
			linkEntry("link", "target"+hostileText),
			fileEntry("z\n- forged line", h.payload), // a newline would forge a line of diff
		)
		m.Message = "message " + hostileText + "\x9b" // a lone 8-bit CSI: invalid UTF-8
		m.Host, m.User, m.Tool = "host"+hostileText, "user"+hostileText, "tool"+hostileText
		m.Labels = map[string]string{"key" + hostileText: "value" + hostileText}
		id := h.publish("evil", format.EncodeManifest(m))
		v := h.victim

		renderSafely(t, v, 0, []string{"list", "--remote"}, "host"+hostileTextEscaped)
		renderSafely(t, v, 0, []string{"log", "evil", "--remote"}, "message "+hostileTextEscaped+`\x9b`,
			"key"+hostileTextEscaped+"=value"+hostileTextEscaped)
		renderSafely(t, v, 0, []string{"show", "evil", "--remote", "--files"}, "dir"+hostileTextEscaped+"/file",
			"target"+hostileTextEscaped, "user"+hostileTextEscaped, "tool"+hostileTextEscaped)
		renderSafely(t, v, 0, []string{"pull", "evil"})
		renderSafely(t, v, 0, []string{"list"}, "host"+hostileTextEscaped)
		r := renderSafely(t, v, 0, []string{"diff", "mine", "evil"}, "+ dir"+hostileTextEscaped+"/file", "+ link", `+ z\n- forged line`)
		if strings.Contains(r.stdout, "\n- forged line") {
			t.Errorf("a path forged a line of diff:\n%s", r)
		}
		renderSafely(t, v, 0, []string{"restore", "evil"})
		if err := os.WriteFile(filepath.Join(v.data, "dir"+hostileText, "file"), []byte("changed"), 0o644); err != nil {
			t.Fatal(err)
		}
		renderSafely(t, v, 0, []string{"diff", "evil"}, "M dir"+hostileTextEscaped+"/file")
		renderSafely(t, v, 0, []string{"status"})

		// --json is for programs: it must be valid JSON holding the exact
		// strings, and still safe on a terminal.
		for _, args := range [][]string{{"show", id.String(), "--files"}, {"log", "evil"}, {"list"}, {"diff", "evil"}} {
			r := renderSafely(t, v, 0, append([]string{"--json"}, args...))
			var doc any
			if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
				t.Errorf("%v --json: %v\n%s", args, err, r.stdout)
			}
			if !strings.Contains(fmt.Sprint(doc), "dir"+hostileText) && args[0] != "log" && args[0] != "list" {
				t.Errorf("%v --json does not hold the exact path", args)
			}
		}
	})
}

// TestHostileTerminalEscapesInErrors: the lines statepack prints when it
// refuses something name what a remote wrote (a lock's host and command);
// they are escaped too, in the one line and in --debug's error chain.
func TestHostileTerminalEscapesInErrors(t *testing.T) {
	forEachRemote(t, func(t *testing.T, h *hostile) {
		lock, err := json.Marshal(map[string]any{"exclusive": true, "host": "host" + hostileText, "pid": 1,
			"command": "cmd" + hostileText, "time": time.Now().UTC()})
		if err != nil {
			t.Fatal(err)
		}
		h.put("locks/feedfacefeedface", lock)
		v := h.victim
		renderSafely(t, v, 1, []string{"push", "mine"}, "host"+hostileTextEscaped, "cmd"+hostileTextEscaped)
		renderSafely(t, v, 1, []string{"--debug", "push", "mine"}, "host"+hostileTextEscaped)
		renderSafely(t, v, 1, []string{"--json", "push", "mine"})
		renderSafely(t, v, 0, []string{"unlock", "--remote", "--all"}, "host"+hostileTextEscaped)
	})
}

// Issue 15, item 7: a credential must never be shown, whichever source
// it came from (a URL's userinfo, the environment, a shared credentials
// file) and whatever prints (an error, --debug's chain, env, status,
// --json), nor written into a file of the store, DATA_DIR or the remote.

// secretsShown returns which of secrets r's output holds.
func secretsShown(r result, secrets ...string) []string {
	var shown []string
	for _, s := range secrets {
		if strings.Contains(r.stdout+r.stderr, s) {
			shown = append(shown, s)
		}
	}
	return shown
}

// filesHolding returns the files under dirs whose content or name holds
// one of secrets; skip is a file allowed to (the credentials file).
func filesHolding(t *testing.T, skip string, dirs []string, secrets ...string) []string {
	t.Helper()
	var found []string
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() || p == skip {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for _, s := range secrets {
				if strings.Contains(string(data), s) || strings.Contains(p, s) {
					found = append(found, p)
				}
			}
			return nil
		})
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	return found
}

// bucketHolding returns the objects of bucket whose content holds one of
// secrets.
func bucketHolding(t *testing.T, srv *miniotest.Server, bucket string, secrets ...string) []string {
	t.Helper()
	ctx := context.Background()
	var found []string
	for oi := range srv.Client().ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
		if oi.Err != nil {
			t.Fatal(oi.Err)
		}
		obj, err := srv.Client().GetObject(ctx, bucket, oi.Key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(obj)
		obj.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if strings.Contains(string(data), s) || strings.Contains(oi.Key, s) {
				found = append(found, oi.Key)
			}
		}
	}
	return found
}

// TestCredentialsInURLRefused: s3://KEY:SECRET@bucket is refused with a
// usage error that says where credentials belong, and no command shows
// the secret: not the error, not --debug, not env or status, not --json.
func TestCredentialsInURLRefused(t *testing.T) {
	t.Parallel()
	const secret = "UrlSecretKey0123456789"
	e := newEnv(t)
	for _, url := range []string{
		"s3://AKIAURLKEY:" + secret + "@bucket/prefix",
		"s3://AKIAURLKEY:UrlSecret/Key0123456789@bucket/prefix", // a secret with a slash
		"s3:AKIAURLKEY:" + secret + "@bucket",
	} {
		for _, args := range [][]string{
			{"--debug", "list", "--remote", url},
			{"--debug", "--json", "pull", "x", "--remote", url},
			{"--debug", "push", url}, // the URL given as the state
		} {
			r := e.run(args...)
			if r.code != 2 {
				t.Errorf("want a usage error:\n%s", r)
			}
			if shown := secretsShown(r, secret, "Key0123456789"); len(shown) > 0 {
				t.Errorf("shows %q:\n%s", shown, r)
			}
		}
		if r := e.run("--remote", url, "push", "x"); !strings.Contains(r.stderr, "AWS_ACCESS_KEY_ID") {
			t.Errorf("no hint where credentials belong:\n%s", r)
		}
		for _, args := range [][]string{{"--remote", url, "env"}, {"--remote", url, "--json", "env"}, {"--remote", url, "status"}, {"--remote", url, "--json", "status"}} {
			r := e.must(args...)
			if shown := secretsShown(r, secret, "Key0123456789"); len(shown) > 0 || !strings.Contains(r.stdout, "****@bucket") {
				t.Errorf("shows %q, or not the redacted URL:\n%s", shown, r)
			}
		}
	}
}

// TestCredentialsNeverShown runs a whole round (save, push, pull, list,
// log, verify, env, status, a failing pull) with --debug against MinIO,
// the credentials once from the environment and once from a profile in
// ~/.aws/credentials, and finds the secret key in no output and no file
// written: store, DATA_DIR, home, the bucket.
func TestCredentialsNeverShown(t *testing.T) {
	t.Parallel()
	srv := miniotest.Get(t)
	for _, source := range []string{"env", "profile"} {
		t.Run(source, func(t *testing.T) {
			t.Parallel()
			bucket := newBucket(t, srv)
			e := newEnv(t)
			e.vars["AWS_ENDPOINT_URL"] = srv.Endpoint
			e.vars["AWS_REGION"] = s3Region(srv)
			e.vars["STATEPACK_REMOTE"] = "s3://" + bucket + "/team"
			creds := filepath.Join(e.vars["HOME"], ".aws", "credentials")
			switch source {
			case "env":
				e.useS3(srv, srv.Endpoint)
			case "profile":
				ini := fmt.Sprintf("[ci]\naws_access_key_id = %s\naws_secret_access_key = %s\n", srv.AccessKey, srv.SecretKey)
				if err := os.MkdirAll(filepath.Dir(creds), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(creds, []byte(ini), 0o600); err != nil {
					t.Fatal(err)
				}
				e.vars["AWS_PROFILE"] = "ci"
			}
			generate(t, e.data, 3, 256<<10)
			var runs []result
			for _, args := range [][]string{
				{"--debug", "save", "s"}, {"--debug", "push", "s"}, {"--debug", "pull", "s", "--force"},
				{"--debug", "list", "--remote"}, {"--debug", "log", "s", "--remote"}, {"--debug", "verify", "--remote"},
				{"--debug", "env"}, {"--debug", "--json", "env"}, {"--debug", "status"}, {"--debug", "--json", "status"},
			} {
				runs = append(runs, e.must(args...))
			}
			for _, args := range [][]string{{"--debug", "pull", "absent"}, {"--debug", "--json", "pull", "absent"}} {
				if r := e.run(args...); r.code != 3 {
					t.Errorf("want exit 3:\n%s", r)
				} else {
					runs = append(runs, r)
				}
			}
			for _, r := range runs {
				if shown := secretsShown(r, srv.SecretKey); len(shown) > 0 {
					t.Errorf("the secret key is shown:\n%s", r)
				}
			}
			if f := filesHolding(t, creds, []string{e.store, e.data, e.vars["HOME"]}, srv.SecretKey); len(f) > 0 {
				t.Errorf("files hold the secret key: %v", f)
			}
			if o := bucketHolding(t, srv, bucket, srv.SecretKey); len(o) > 0 {
				t.Errorf("objects hold the secret key: %v", o)
			}
		})
	}
}

// echoingEndpoint is an S3 endpoint that says every bucket exists and
// answers every other request with an error that repeats the request's
// session token, as a misconfigured proxy or a hostile endpoint may.
func echoingEndpoint(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			return
		}
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>`+
			`<Message>token %s is not allowed</Message><RequestId>1</RequestId></Error>`, r.Header.Get("X-Amz-Security-Token"))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestSessionTokenEchoed: an endpoint that repeats the session token in
// its error message; the token is masked whether it came from the
// environment or from a profile, in the message and in --debug's chain.
func TestSessionTokenEchoed(t *testing.T) {
	t.Parallel()
	const token = "SessionTokenFromSomewhere0123456789"
	endpoint := echoingEndpoint(t)
	for _, source := range []string{"env", "profile"} {
		t.Run(source, func(t *testing.T) {
			e := newEnv(t)
			e.vars["AWS_ENDPOINT_URL"] = endpoint
			e.vars["AWS_REGION"] = "us-east-1"
			e.vars["STATEPACK_REMOTE"] = "s3://bucket/team"
			switch source {
			case "env":
				e.vars["AWS_ACCESS_KEY_ID"], e.vars["AWS_SECRET_ACCESS_KEY"], e.vars["AWS_SESSION_TOKEN"] = "AKIDENV", "EnvSecretKey0123456789", token
			case "profile":
				creds := filepath.Join(e.vars["HOME"], ".aws", "credentials")
				ini := "[ci]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = ProfileSecretKey0123456789\naws_session_token = " + token + "\n"
				if err := os.MkdirAll(filepath.Dir(creds), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(creds, []byte(ini), 0o600); err != nil {
					t.Fatal(err)
				}
				e.vars["AWS_PROFILE"] = "ci"
			}
			for _, args := range [][]string{{"--debug", "list", "--remote"}, {"--debug", "--json", "log", "s", "--remote"}} {
				r := e.run(args...)
				if r.code != 1 || !strings.Contains(r.stderr, "is not allowed") {
					t.Fatalf("want the endpoint's refusal:\n%s", r)
				}
				if shown := secretsShown(r, token); len(shown) > 0 {
					t.Errorf("the session token is shown:\n%s", r)
				}
			}
		})
	}
}

// Issue 15, item 8: one bad ref made `list` fail for every state. Now
// the others are listed, the bad ones named (a "damaged:" line each, and
// "damaged" in --json), and list exits 1 with code corrupt, as verify
// does when it finds problems. Likewise log lists the versions before a
// damaged one.
func TestListNamesDamagedStates(t *testing.T) {
	forEachRemote(t, func(t *testing.T, h *hostile) {
		h.put("refs/garbage", []byte("this is not a snapshot id\n"))
		h.put("refs/dangling", []byte(format.Hash([]byte("no such snapshot")).String()+"\n"))
		// A state whose older version is damaged: log lists the newer.
		bad := format.Hash([]byte("the id the damaged version claims"))
		h.put("snapshots/"+bad.String(), []byte("damaged"))
		m := manifest(fileEntry("f", h.payload))
		m.Parent = bad
		h.publish("partial", format.EncodeManifest(m))
		r := h.victim.run("log", "partial", "--remote")
		if r.code != 1 || !strings.Contains(r.stdout, "crafted by an attacker") || !strings.Contains(r.stderr, "partial~1 and older could not be read") {
			t.Errorf("log of a state with a damaged older version:\n%s", r)
		}

		local := filepath.Join(h.victim.store, "refs", "broken")
		if err := os.WriteFile(local, []byte("garbage\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			args          []string
			good, damaged []string
		}{
			{[]string{"list", "--remote"}, []string{"base", "partial"}, []string{"dangling", "garbage", "partial"}},
			{[]string{"list"}, []string{"mine"}, []string{"broken"}},
		} {
			r := h.victim.run(tc.args...)
			if r.code != 1 {
				t.Errorf("want exit 1:\n%s", r)
			}
			for _, name := range tc.good {
				if !strings.Contains(r.stdout, "\n"+name+" ") {
					t.Errorf("%s is not listed:\n%s", name, r)
				}
			}
			for _, name := range tc.damaged {
				if !strings.Contains(r.stdout, "damaged: state "+name+" ") || !strings.Contains(r.stderr, name) {
					t.Errorf("%s is not named damaged:\n%s", name, r)
				}
			}
			if msg := clearMessage(r, h.secret, "could not be read"); msg != "" {
				t.Errorf("%s\n%s", msg, r)
			}

			r = h.victim.run(append([]string{"--json"}, tc.args...)...)
			var doc struct {
				States  []struct{ State string }
				Damaged []struct{ State, Error string }
			}
			if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || r.code != 1 || !strings.Contains(r.stderr, `"corrupt"`) {
				t.Fatalf("want a document and exit 1 with code corrupt: %v\n%s", err, r)
			}
			var good, damaged []string
			for _, s := range doc.States {
				good = append(good, s.State)
			}
			for _, d := range doc.Damaged {
				damaged = append(damaged, d.State)
				if d.Error == "" {
					t.Errorf("damaged %s without the error", d.State)
				}
			}
			if fmt.Sprint(good) != fmt.Sprint(tc.good) || fmt.Sprint(damaged) != fmt.Sprint(tc.damaged) {
				t.Errorf("--json: states %v, damaged %v; want %v and %v", good, damaged, tc.good, tc.damaged)
			}
		}
	})
}

// Issue 15, item 8: `pull --force` and `push --force` did not say which
// head they dropped. Now the line names it (and --json's "replaced"), with
// how to get it back before a prune deletes it; a forced move that is a
// fast-forward replaces nothing and says nothing.
func TestForceNamesReplacedHead(t *testing.T) {
	t.Parallel()
	remoteDir := t.TempDir() // an empty directory: the first push creates the remote there
	a, b := newEnv(t), newEnv(t)
	for _, e := range []*env{a, b} {
		e.vars["STATEPACK_REMOTE"] = remoteDir
	}
	write := func(e *env, content string) {
		if err := os.WriteFile(filepath.Join(e.data, "f"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(a, "one")
	a.must("save", "s")
	a.must("push", "s")
	b.must("pull", "s", "--restore")
	write(b, "b's work")
	mine := b.jsonField("snapshot", "save", "s")
	write(a, "two")
	a.must("save", "s")
	a.must("push", "s")

	// A forced pull drops b's head, and says so.
	r := b.must("pull", "s", "--force")
	if !strings.Contains(r.stdout, "replaced s's local head, "+mine[:8]) || !strings.Contains(r.stdout, "statepack restore "+mine[:8]) ||
		!strings.Contains(r.stdout, "prune") {
		t.Errorf("pull --force does not name the head it replaced:\n%s", r)
	}
	b.must("restore", mine[:8])
	if got, err := os.ReadFile(filepath.Join(b.data, "f")); err != nil || string(got) != "b's work" {
		t.Errorf("the replaced head does not restore: %q, %v", got, err)
	}

	// A forced push drops a's newer head on the remote, and says so.
	write(a, "three")
	a.must("save", "s")
	theirs := a.jsonField("snapshot", "push", "s")
	b.must("save", "s", "-m", "b again")
	if got := b.jsonField("replaced", "push", "s", "--force"); got != theirs {
		t.Errorf("push --force --json: replaced %q, want %q", got, theirs)
	}

	// A forced fast-forward replaces nothing, either way.
	c := newEnv(t)
	c.vars["STATEPACK_REMOTE"] = remoteDir
	c.must("pull", "s")
	b.must("save", "s", "-m", "b once more")
	if r := b.must("push", "s", "--force"); strings.Contains(r.stdout, "replaced") {
		t.Errorf("a fast-forward push --force claims to replace something:\n%s", r)
	}
	if got := c.jsonField("replaced", "pull", "s", "--force"); got != "" {
		t.Errorf("a fast-forward pull --force: replaced %q", got)
	}
}
