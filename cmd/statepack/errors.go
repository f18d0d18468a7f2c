package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/datadir"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/restorer"
	"github.com/statepack/statepack/archive/transfer"
	"github.com/statepack/statepack/internal/output"
	"github.com/statepack/statepack/remote"
	"github.com/statepack/statepack/remote/backend"
	"github.com/statepack/statepack/remote/s3"
)

// usageError is a mistake in how statepack was called: exit status 2.
type usageError struct{ err error }

// Error implements error.
func (e *usageError) Error() string { return e.err.Error() }

// Unwrap returns the underlying error.
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// hinted attaches the next step a user can take to an error.
type hinted struct {
	err  error
	hint string
}

// Error implements error; the hint is added when the error is reported.
func (e *hinted) Error() string { return e.err.Error() }

// Unwrap returns the underlying error.
func (e *hinted) Unwrap() error { return e.err }

func withHint(err error, hint string) error {
	if err == nil {
		return nil
	}
	return &hinted{err: err, hint: hint}
}

// failure is how an error is reported: its exit status, its JSON code,
// the reason and the next step.
type failure struct {
	exit int
	code string
	why  string
	hint string
}

// report prints err as one line (or a JSON document with --json) on
// stderr and returns the exit status. With --debug the wrapped chain
// follows, for bug reports. Errors name paths, hosts and messages from a
// repository, so every line is scrubbed of secrets and passed through
// output.Safe here, once, whatever error it is.
func (s *session) report(err error) int {
	f := s.classify(err)
	what := s.what
	if what == "" {
		what = s.cmdName
	}
	msg := f.why
	if what != "" {
		msg = what + ": " + msg
	}
	if f.hint != "" && !strings.Contains(f.why, f.hint) && !strings.Contains(f.why, "`statepack ") {
		msg += "; " + f.hint
	}
	msg = output.Safe(scrubSecrets(msg))
	debug := s.set.Debug || s.cmdline["debug"]
	var chain []string
	if debug {
		chain = errorChain(err)
	}
	if s.set.JSON || s.cmdline["json"] { // a flag error can come before the settings
		_ = output.WriteError(s.stderr, output.ErrorBody{Code: f.code, Message: msg, Debug: chain})
		return f.exit
	}
	fmt.Fprintln(s.stderr, "statepack: "+msg)
	if debug {
		fmt.Fprintln(s.stderr, "statepack: debug: error chain:")
		for _, l := range chain {
			fmt.Fprintln(s.stderr, "  "+l)
		}
	}
	return f.exit
}

// errorChain renders every layer of a wrapped error with its type, for
// bug reports.
func errorChain(err error) []string {
	var out []string
	var walk func(e error, depth int)
	walk = func(e error, depth int) {
		for e != nil {
			out = append(out, fmt.Sprintf("%s%T: %s", strings.Repeat("  ", depth), e, output.Safe(scrubSecrets(e.Error()))))
			switch u := e.(type) {
			case interface{ Unwrap() []error }:
				for _, inner := range u.Unwrap() {
					walk(inner, depth+1)
				}
				return
			case interface{ Unwrap() error }:
				e = u.Unwrap()
			default:
				return
			}
		}
	}
	walk(err, 0)
	return out
}

// classify decides exit status, code and next step for err.
func (s *session) classify(err error) failure {
	var (
		ue     *usageError
		nf     *archive.NotFoundError
		locked *archive.LockedError
		h      *hinted
		rf     *restorer.RestoreError
		nl     *notLoadedError
	)
	if errors.As(err, &nl) {
		// What the restore did comes first, then why LocalStack did not
		// load it (in the words its own error would have).
		f := s.classify(nl.err)
		f.exit, f.code = exitNotLoaded, output.CodeNotLoaded
		f.why, f.hint = nl.done()+"; LocalStack was not reloaded: "+f.why+"; "+notLoadedHint, ""
		return f
	}
	if errors.As(err, &rf) {
		// The next step for what stopped the restore comes first, then
		// where DATA_DIR's previous content went: both, in one line.
		f := s.classify(rf.Err)
		if f.hint != "" {
			f.why += "; " + f.hint
		}
		f.why, f.hint = f.why+"; "+rf.Note(), ""
		return f
	}
	f := failure{exit: exitFailure, code: output.CodeFailed, why: err.Error()}
	switch {
	case errors.As(err, &ue):
		f.exit, f.code, f.hint = exitUsage, output.CodeUsage, "`statepack --help` shows the usage"
		if s.cmdName != "" {
			f.hint = fmt.Sprintf("`statepack %s --help` shows the usage", s.cmdName)
		}
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) && s.set.Timeout > 0:
		f.code, f.why, f.hint = output.CodeCanceled, "interrupted", "nothing half-written is kept; run it again"
		if errors.Is(err, context.DeadlineExceeded) {
			f.why = fmt.Sprintf("gave up after --timeout %s", s.set.Timeout)
		}
		if s.cmdName == "restore" || s.cmdName == "pull" {
			f.hint = "DATA_DIR may be partly restored; run the same command again to finish"
		}
	case errors.As(err, &nf):
		f.exit, f.code = exitNotFound, output.CodeNotFound
		f.hint = "`statepack list` shows the states"
		if nf.Where != s.set.Store {
			f.hint = "`statepack list --remote` shows the states there"
		}
		switch {
		case nf.Suggestion != "":
			f.hint = fmt.Sprintf("did you mean '%s'? %s", nf.Suggestion, f.hint)
		case nf.History != "":
			f.hint = fmt.Sprintf("`statepack log %s%s` lists its versions", nf.History, s.remoteFlag())
		}
	case errors.Is(err, archive.ErrAmbiguous):
		f.exit, f.code = exitUsage, output.CodeUsage
		f.hint = "`statepack log STATE` shows full ids"
	case errors.As(err, &locked):
		f.code, f.why, f.hint = output.CodeLocked, describeLock(locked), s.unlockHint()
	case errors.Is(err, datadir.ErrDataDirLocked):
		// The exit status of a locked repository; the lock goes with its
		// holder, so there is nothing to unlock.
		f.code, f.hint = output.CodeLocked, "wait for it to finish (--lock-wait waits for it)"
	default:
		s.classifyStorage(err, &f)
	}
	if errors.As(err, &h) && h.hint != "" {
		f.hint = h.hint // the next step named where the error arose wins
	}
	return f
}

// classifyStorage maps the errors of stores and remotes.
func (s *session) classifyStorage(err error, f *failure) {
	switch {
	case errors.Is(err, backend.ErrConflict) || errors.Is(err, transfer.ErrNotFastForward):
		f.code = output.CodeConflict
		switch s.cmdName {
		case "push":
			f.hint = "pull first, or push --force"
		case "pull":
			f.hint = "push it first, or pull --force"
		default:
			f.hint = "run it again"
		}
	case errors.Is(err, datadir.ErrNoDataDir):
		f.code = output.CodeNoDataDir
	case errors.Is(err, format.ErrNewerFormat):
		f.code, f.hint = output.CodeNewerFormat, "upgrade statepack"
	case errors.Is(err, format.ErrNotRepository):
		f.code = output.CodeNotRepository
		f.hint = "run `statepack init --remote` to create one there"
	case errors.Is(err, format.ErrCorrupt):
		f.code, f.hint = output.CodeCorrupt, "`statepack verify"+s.remoteFlag()+" --read-data` shows what is damaged"
	case errors.Is(err, s3.ErrNoBucket):
		f.code, f.hint = output.CodeNoBucket, "create the bucket, or run `statepack init --remote`"
	case errors.Is(err, backend.ErrAccessDenied):
		f.code, f.hint = output.CodeAccessDenied, "check the file permissions"
		if s.onRemote {
			f.hint = "check the credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE) and the bucket policy"
		}
	case s.onRemote && plainHTTPEndpoint(err):
		f.hint = "the endpoint answers plain HTTP, not HTTPS: write its scheme, e.g. AWS_ENDPOINT_URL=http://HOST:PORT"
	case s.onRemote && isNetError(err):
		f.hint = "check that the endpoint is reachable (AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL) and the network is up"
	case errors.Is(err, backend.ErrNoSpace):
		f.code, f.hint = output.CodeNoSpace, "free some space, or drop old versions with `statepack forget` and `statepack prune`"
		if s.cmdName == "restore" || s.cmdName == "pull" && !s.onRemote {
			// The full filesystem may be DATA_DIR's, where forget and
			// prune do not help; the restore stopped partway.
			f.hint = "free some space there, then run the same command again to finish the restore"
		}
	}
}

// plainHTTPEndpoint reports whether err is a TLS handshake answered in
// plain HTTP: an endpoint written without its scheme is taken as HTTPS.
func plainHTTPEndpoint(err error) bool {
	var rh tls.RecordHeaderError
	return errors.As(err, &rh) && rh.Conn != nil || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}

// isNetError reports whether err comes from the network (connection
// refused, DNS, timeouts).
func isNetError(err error) bool {
	var oe *net.OpError
	var de *net.DNSError
	var ue *url.Error
	return errors.As(err, &oe) || errors.As(err, &de) || errors.As(err, &ue)
}

func (s *session) remoteFlag() string {
	if s.onRemote {
		return " --remote"
	}
	return ""
}

func (s *session) unlockHint() string {
	return "wait for it to finish, or run `statepack unlock" + s.remoteFlag() + "` if that process is gone"
}

// describeLock says who holds a lock, in words.
func describeLock(e *archive.LockedError) string {
	l := e.Holder
	kind := "shared"
	if l.Exclusive {
		kind = "exclusive"
	}
	return fmt.Sprintf("%s is locked by `%s` (%s lock, PID %d on %s, taken %s)",
		e.Location, l.Command, kind, l.PID, l.Host, output.Age(l.Time, time.Now()))
}

// scrubSecrets removes credentials from a message, whatever put them
// there: URL userinfo, and secret values from the environment, a profile
// or an IAM role (remote.Redact).
func scrubSecrets(msg string) string { return remote.Redact(msg) }

// secretVars are the environment variables whose values are never shown.
var secretVars = []string{"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}
