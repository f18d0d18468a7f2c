// Package archive is the statepack repository on a Backend: opening or
// creating one (OpenOrCreate, the one rule for where a repository may be
// created), its config, refs moved by compare-and-swap, locks, the
// in-memory index, verified reads of objects and blocks, block lists,
// the one PackWriter that builds and stores every pack, and the one copy
// engine (Copy) that push and pull share. The byte layouts are package
// format's; the remote-index lookup cache is package lookup's, behind
// the Repository's FindBlocks.
//
// What is done with a repository sits above it, one job per package:
// saver (save), restorer (restore, diff, status), maintain (verify,
// forget, prune, repair) and transfer (push, pull). Below it are format,
// lookup, scan, statcache and datadir, and the Backend contract in
// remote/backend.
//
// It must not import the packages above it, nor remote or any concrete
// backend: every byte goes through a backend.Backend, and what only some
// backends can do (a durable flush, reading objects as local files) is
// asked for with backend.As, as a capability. It knows nothing of S3.
//
// # Write order
//
// packs → index → snapshot → ref (invariant 1). The directory backend
// writes every object to a temporary name and renames it; before a ref
// moves, everything it can point at is made durable (backend.Durable: the
// objects this process wrote, and one syncfs(2) when it relied on
// objects of others). Prune and repair run under the exclusive lock and
// make new packs and the new index durable before they delete anything.
package archive
