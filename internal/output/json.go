package output

import (
	"encoding/json"
	"fmt"
	"io"
	"unicode/utf16"
	"unicode/utf8"
)

// WriteJSON writes v as one indented JSON document followed by a newline.
//
// encoding/json escapes C0 controls and U+2028/U+2029 but writes DEL, C1
// controls and bidi overrides raw; WriteJSON escapes those too (as
// \u007f, \u009b, \u202e: the same string to any JSON reader), so the
// document is safe on a terminal. Invalid UTF-8 in a string becomes
// U+FFFD, as encoding/json does: paths are valid UTF-8 (a manifest with
// another path is refused), free text such as a message may lose a bad
// byte.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(jsonEscaper{w})
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// jsonEscaper passes encoding/json's output to w with the characters Safe
// escapes that encoding/json left raw written as \uXXXX. They can only
// stand inside strings: the document's own syntax is ASCII, and its
// newlines are kept. The Encoder writes each document in one call, so no
// character is split between two writes.
type jsonEscaper struct{ w io.Writer }

// Write implements io.Writer.
func (j jsonEscaper) Write(doc []byte) (int, error) {
	i := firstUnsafeJSON(doc)
	if i < 0 {
		return j.w.Write(doc) // the common case: nothing to escape, no copy
	}
	out := make([]byte, 0, len(doc)+32)
	out = append(out, doc[:i]...)
	for rest := doc[i:]; len(rest) > 0; {
		r, n := utf8.DecodeRune(rest)
		if !unsafeRune(r, true) {
			out = append(out, rest[:n]...)
		} else if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
			out = fmt.Appendf(out, `\u%04x\u%04x`, r1, r2)
		} else {
			out = fmt.Appendf(out, `\u%04x`, r)
		}
		rest = rest[n:]
	}
	if _, err := j.w.Write(out); err != nil {
		return 0, err
	}
	return len(doc), nil
}

// firstUnsafeJSON is the offset of the first character of doc that
// jsonEscaper escapes, or -1.
func firstUnsafeJSON(doc []byte) int {
	for i := 0; i < len(doc); {
		if c := doc[i]; c < utf8.RuneSelf {
			if c == 0x7f {
				return i
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(doc[i:])
		if unsafeRune(r, true) {
			return i
		}
		i += n
	}
	return -1
}

// ErrorDoc is the document --json prints on standard error when a command
// fails:
//
//	{"error": {"code": "not_found", "message": "..."}}
//
// code is one of the Code constants; message is the same one line a human
// sees without --json (without the "statepack: " prefix); debug, only with
// --debug, lists the wrapped errors for bug reports.
type ErrorDoc struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody is the inside of ErrorDoc: code and message.
type ErrorBody struct {
	Code    string   `json:"code"`
	Message string   `json:"message"`
	Debug   []string `json:"debug,omitempty"`
}

// Machine-readable error codes of ErrorDoc.
const (
	CodeNotFound      = "not_found"      // the named state or snapshot does not exist (exit 3)
	CodeUsage         = "usage"          // bad flags or arguments (exit 2)
	CodeConflict      = "conflict"       // a ref moved concurrently, or not a fast-forward
	CodeLocked        = "locked"         // another process holds a conflicting lock
	CodeCorrupt       = "corrupt"        // an object does not match its id, or verify found problems
	CodeNoDataDir     = "no_data_dir"    // DATA_DIR is not set: persistence is disabled
	CodeNotRepository = "not_repository" // the store or remote holds no statepack repository
	CodeNewerFormat   = "newer_format"   // the repository needs a newer statepack
	CodeAccessDenied  = "access_denied"  // permissions or credentials refuse the operation
	CodeNoBucket      = "no_bucket"      // the remote's S3 bucket does not exist
	CodeNoSpace       = "no_space"       // the storage is full
	CodeCanceled      = "canceled"       // interrupted by a signal or --timeout
	CodeNotLoaded     = "not_loaded"     // DATA_DIR was restored, but LocalStack did not load it (exit 4)
	CodeFailed        = "failed"         // anything else
)

// WriteError writes the error document on w.
func WriteError(w io.Writer, body ErrorBody) error {
	return WriteJSON(w, ErrorDoc{Error: body})
}
