// Package progress carries progress reports from the core (archive,
// remote) to whoever shows them. The core never prints: it calls a Sink,
// and the CLI decides between live bars on a terminal, a periodic line in a
// CI log, JSON, or nothing.
package progress

// Sink receives progress events. Implementations must be safe for
// concurrent use: pipelines report from many goroutines.
type Sink interface {
	// Phase starts a named phase ("scan", "save", "restore", "push") with
	// its totals; a zero total means unknown.
	Phase(name string, files, bytes int64)
	// Add reports files and bytes done within the current phase.
	Add(files, bytes int64)
	// Warn reports something the user should know that does not stop the
	// work, such as a skipped socket.
	Warn(msg string)
}

// Discard is a Sink that drops everything.
var Discard Sink = discard{}

type discard struct{}

func (discard) Phase(string, int64, int64) {}
func (discard) Add(int64, int64)           {}
func (discard) Warn(string)                {}

// Or returns s, or Discard when s is nil, so the core can always call it.
func Or(s Sink) Sink {
	if s == nil {
		return Discard
	}
	return s
}
