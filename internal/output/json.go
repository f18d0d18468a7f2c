package output

import (
	"encoding/json"
	"io"
)

// WriteJSON writes v as one indented JSON document followed by a newline.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
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
	CodeFailed        = "failed"         // anything else
)

// WriteError writes the error document on w.
func WriteError(w io.Writer, body ErrorBody) error {
	return WriteJSON(w, ErrorDoc{Error: body})
}
