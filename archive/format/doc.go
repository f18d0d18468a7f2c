// Package format holds the repository's byte encodings: ids and object
// names, the config object, packs (builder, trailer, entries), index
// objects, manifests, list blocks, the decoding and verifying of stored
// blocks, and the shape of restore's temporary file names. The layouts
// themselves are described in package archive's documentation.
//
// Everything here is a pure function of bytes: no file, no backend, no
// clock. Every reader of the repository, local or remote, trusted or not,
// decodes through this one package, so a format rule (a bound checked
// before allocation, a path refused, an id verified) is written once, and
// its decoders are fuzzed here. Decoders treat their input as hostile
// (invariant 5).
//
// It imports no other statepack package but chunker (whose parameters
// the config records): not archive or any of its other packages, not
// remote or remote/backend, not internal/files. Everything else that
// reads or writes the format imports it.
package format
