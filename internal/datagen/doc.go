// Package datagen generates deterministic, LocalStack-like data directories
// for statepack's tests, `make demo` and `make bench`.
//
// LocalStack with persistence enabled keeps its state under DATA_DIR in a
// layout that mixes four very different kinds of files, and datagen
// reproduces that layout:
//
//	api_states/<service>/<account>/<region>/store.state   pickled service stores (~15%)
//	dynamodb/<account>_<region>.db                         DynamoDB Local's SQLite files (~40%)
//	kinesis/<stream>.json                                  Kinesis records as JSON lines (~15%)
//	s3/<bucket>/<key...>                                   S3 objects as plain files (~30%)
//
// The shares are of Options.Size, which may be anything from a few MiB to
// many GiB; file counts and sizes scale with it.
//
// The content is synthetic but shaped like the real thing, because what
// statepack must do well depends on it. Stores are pickle-like streams of
// records (opcodes, repeated keys, UUIDs, timestamps, random payloads) and
// compress moderately. DynamoDB files are sequences of 4 KiB SQLite-like
// pages: a header page, then B-tree leaf pages of item records with free
// space left in each page. Kinesis records are repetitive JSON and compress
// very well. S3 objects are a mix of text (logs, CSV, JSON) and
// incompressible binaries (images, archives), with spaces and non-ASCII
// characters in some keys, a few empty objects, an empty bucket, a relative
// symlink, and files with modes 0600, 0644, 0444 and 0755.
//
// Mutate applies one "test stage" to such a tree, changing files the way the
// real services do between two saves: SQLite rewrites a few pages in place
// and grows by whole pages, a pickled store is rewritten with new records
// inserted near its start (so unchanged bytes move to new offsets, which
// only content-defined chunking can follow), Kinesis appends records, and S3
// gains and loses whole objects. MutateStats reports how many 4 KiB pages
// really changed, so a benchmark can relate what statepack stored to what
// changed.
//
// Everything is a function of the seed (and of the step, for Mutate): the
// same Options produce byte-identical trees with the same names, modes and
// modification times on every machine: sizes and bytes come from integer
// arithmetic on PCG output (the one floating-point operation, a division
// for pickled timestamps, is exactly rounded on every platform), and every
// file draws from its own PCG stream, so files are written in parallel
// without losing determinism.
package datagen
