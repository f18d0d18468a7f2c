package remote

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/statepack/statepack/remote/s3"
)

// Kinds of remote a URL names.
const (
	KindS3  = "s3"  // an S3 bucket, optionally under a key prefix
	KindDir = "dir" // a directory on a local or mounted file system
)

// URL is a parsed remote location. For KindS3, Bucket and Prefix are set
// (Prefix is clean: no leading, trailing or doubled slashes, no dot
// segments, possibly empty); for KindDir, Path is an absolute, clean path.
type URL struct {
	Kind   string
	Bucket string
	Prefix string
	Path   string
}

// supportedForms is appended to every parse error so the user sees what
// would have worked.
const supportedForms = "use s3://bucket[/prefix], file:///absolute/path or a directory path"

// ParseURL parses a remote as given to --remote or STATEPACK_REMOTE:
// "s3://bucket", "s3://bucket/some/prefix", "file:///abs/path", or a
// directory path, absolute or relative to the working directory ("~/" is
// the home directory). Errors are one line and name the input.
//
// A URL that holds credentials ("s3://KEY:SECRET@bucket") is refused, and
// no error repeats them: the message names the URL as RedactURL shows it.
// Leading or trailing white space and control characters are refused too:
// " s3://b/p" pasted with a space would otherwise name a directory " s3:"
// under the working directory.
func ParseURL(s string) (URL, error) {
	u, err := parseURL(s)
	if err != nil {
		return URL{}, fmt.Errorf("invalid remote %q: %w", RedactURL(s), err)
	}
	return u, nil
}

func parseURL(s string) (URL, error) {
	if strings.TrimSpace(s) == "" {
		return URL{}, errors.New("empty; " + supportedForms)
	}
	if err := CheckSetting(s); err != nil {
		return URL{}, err
	}
	scheme, rest, ok := splitScheme(s)
	if ok && hasUserinfo(strings.TrimLeft(s[len(scheme)+1:], "/")) { // "s3:K:S@b" too
		return URL{}, errors.New("credentials do not belong in the URL; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, " +
			"and use s3://bucket[/prefix]")
	}
	if !ok {
		return parseDir(s)
	}
	if rest == "" && !strings.Contains(s, "://") {
		return URL{}, fmt.Errorf("malformed %s URL; %s", scheme, supportedForms)
	}
	switch strings.ToLower(scheme) {
	case "s3":
		return parseS3(rest)
	case "file":
		return parseFile(s)
	case "http", "https":
		return URL{}, endpointURLError(scheme, rest)
	}
	return URL{}, fmt.Errorf("unsupported scheme %q; %s", scheme, supportedForms)
}

// endpointURLError explains that an S3-compatible server's address is the
// endpoint, set apart from the remote: "http://minio:9000/states/ci"
// means s3://states/ci with AWS_ENDPOINT_URL=http://minio:9000, as the AWS
// tools take it.
func endpointURLError(scheme, rest string) error {
	host, path, _ := strings.Cut(rest, "/")
	path = strings.Trim(path, "/")
	if host == "" || path == "" {
		return fmt.Errorf("%s:// names a server, not a remote; an S3-compatible server's address goes in AWS_ENDPOINT_URL and the remote is s3://bucket[/prefix]", scheme)
	}
	return fmt.Errorf("%s:// names a server, not a remote: for a bucket on an S3-compatible server use --remote s3://%s with AWS_ENDPOINT_URL=%s://%s",
		scheme, path, scheme, host)
}

// splitScheme finds "scheme://" at the start of s. It also catches the
// known schemes written with too few slashes ("s3:bucket", "file:/x"),
// which would otherwise be taken for relative directory names.
func splitScheme(s string) (scheme, rest string, ok bool) {
	if i := strings.Index(s, "://"); i > 0 && validScheme(s[:i]) {
		return s[:i], s[i+3:], true
	}
	if i := strings.IndexByte(s, ':'); i > 0 {
		switch strings.ToLower(s[:i]) {
		case "s3", "file":
			return s[:i], "", true
		}
	}
	return "", "", false
}

// validScheme reports whether s has the syntax of a URL scheme (RFC 3986).
func validScheme(s string) bool {
	for i, c := range s {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

func parseS3(rest string) (URL, error) {
	bucket, prefix, _ := strings.Cut(rest, "/")
	if bucket == "" {
		return URL{}, errors.New("no bucket; use s3://bucket[/prefix]")
	}
	if err := s3.CheckBucketName(bucket); err != nil {
		return URL{}, err
	}
	clean, err := s3.CleanPrefix(prefix)
	if err != nil {
		return URL{}, err
	}
	return URL{Kind: KindS3, Bucket: bucket, Prefix: clean}, nil
}

func parseFile(s string) (URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return URL{}, errors.New("malformed file URL; use file:///absolute/path")
	}
	if u.Opaque != "" || !strings.HasPrefix(strings.ToLower(s), "file://") {
		return URL{}, errors.New("malformed file URL; use file:///absolute/path")
	}
	if u.Host != "" && u.Host != "localhost" {
		return URL{}, fmt.Errorf("file URL names host %q; only local paths are supported, use file:///absolute/path", u.Host)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return URL{}, errors.New("file URL must not have a user, query or fragment")
	}
	if !strings.HasPrefix(u.Path, "/") {
		return URL{}, errors.New("file URL has no absolute path; use file:///absolute/path")
	}
	return parseDir(u.Path)
}

func parseDir(p string) (URL, error) {
	if strings.ContainsRune(p, 0) {
		return URL{}, errors.New("path contains a NUL byte")
	}
	if p == "~" || strings.HasPrefix(p, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return URL{}, fmt.Errorf("expand ~: %w", err)
		}
		p = filepath.Join(home, p[1:])
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return URL{}, err
	}
	if err := CheckSetting(abs); err != nil { // "file:///x%20" or "/x /"
		return URL{}, fmt.Errorf("path %w", err)
	}
	return URL{Kind: KindDir, Path: abs}, nil
}

// CheckSetting refuses a location setting (a remote, a store, a data
// directory) that starts or ends with white space or holds a control
// character: such a value is a mistake in quoting, and taken as a path it
// would name a surprising directory. The error does not repeat the value.
func CheckSetting(s string) error {
	if strings.ContainsRune(s, 0) {
		return errors.New("contains a NUL byte")
	}
	if t := strings.TrimSpace(s); t != s {
		return errors.New("starts or ends with white space; remove it (check the quoting)")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 {
			return errors.New("contains a control character")
		}
	}
	return nil
}

// hasUserinfo reports whether rest, what follows "scheme://", starts with
// "user[:password]@".
func hasUserinfo(rest string) bool { return userinfoEnd(rest) >= 0 }

// userinfoEnd is the index of the "@" that ends the userinfo at the start
// of token (what follows "scheme://"), or -1. A secret key may hold "/"
// (AWS secret keys do) and "@", so when the part before the first slash
// holds a ":" the userinfo runs to the last "@" of the token: showing too
// little of a mistyped URL is better than showing part of a secret.
func userinfoEnd(token string) int {
	authority, _, _ := strings.Cut(token, "/")
	switch {
	case strings.Contains(authority, "@"):
		return strings.LastIndexByte(authority, '@')
	case strings.Contains(authority, ":"):
		return strings.LastIndexByte(token, '@')
	}
	return -1
}

// RedactURL returns raw with the userinfo of a URL ("s3://KEY:SECRET@b/p",
// "https://user:pw@host") replaced by "****", so the URL can be shown.
// Anything else, a directory path among them, is returned unchanged. It
// finds URLs anywhere in a text, so it also serves whole messages.
func RedactURL(raw string) string {
	locs := schemeRE.FindAllStringIndex(raw, -1)
	if locs == nil {
		return raw
	}
	var b strings.Builder
	last := 0
	for _, loc := range locs {
		if loc[0] < last {
			continue // inside a part already masked
		}
		token := raw[loc[1]:]
		if i := strings.IndexAny(token, " \t\n\"'`"); i >= 0 {
			token = token[:i]
		}
		end := userinfoEnd(token)
		if end < 0 {
			continue
		}
		b.WriteString(raw[last:loc[1]])
		b.WriteString("****")
		last = loc[1] + end
	}
	b.WriteString(raw[last:])
	return b.String()
}

// schemeRE finds where a URL's userinfo would start: after "scheme://",
// or after the bare "s3:" or "file:" of a URL written with too few
// slashes.
var schemeRE = regexp.MustCompile(`(?i)\b(?:[a-z][a-z0-9+.-]*://|s3:/?/?|file:/?/?)`)

// Redact masks every credential in text: the userinfo of URLs, and each
// secret value statepack knows of, whichever source it came from (the
// environment, a shared credentials file, an IAM role or web identity;
// see s3.Redact). Every message and debug line statepack prints about a
// remote passes through it.
func Redact(text string) string {
	return s3.Redact(RedactURL(text))
}

// String formats the URL so that ParseURL returns it unchanged:
// "s3://bucket/prefix" or the directory's absolute path.
func (u URL) String() string {
	switch u.Kind {
	case KindS3:
		if u.Prefix == "" {
			return "s3://" + u.Bucket
		}
		return "s3://" + u.Bucket + "/" + u.Prefix
	case KindDir:
		return u.Path
	}
	return ""
}
