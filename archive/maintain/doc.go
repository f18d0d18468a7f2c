// Package maintain keeps a repository sound: Verify checks that every ref,
// snapshot, index object and pack is what it claims (and with ReadData
// re-hashes every block: invariant 2); Forget drops old versions of a
// state; Prune deletes what no state reaches and repacks packs of which
// little is still used; Repair rebuilds the index from the packs
// themselves and salvages the good blocks of damaged packs. Prune and
// repair run under the exclusive lock and make what they write durable
// before they delete anything (invariant 1).
//
// It sits above archive, on the same level as saver and restorer, and
// uses archive/format. It must not import archive/saver or
// archive/restorer, nor remote or any backend but the contract in
// remote/backend: local fast paths ask for capabilities (backend.Local),
// never a concrete backend type, and S3 is unknown here.
package maintain
