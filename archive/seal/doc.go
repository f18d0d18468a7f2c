// Package seal holds the cryptography of encrypted repositories: the
// master key and the subkeys derived from it, keyed block ids, the AEAD
// envelope every stored object is sealed in, and key files (the master key
// wrapped by a passphrase). It is a set of pure functions of bytes and
// keys, like archive/format: no backend, no file, no environment. The
// passphrase itself comes from internal/passphrase, called by the CLI.
//
// It imports archive/format (for ID and ErrCorrupt) and the standard
// library, golang.org/x/crypto and github.com/zeebo/blake3. It must not
// import archive or any other archive package, nor remote or
// remote/backend: the repository calls it, never the other way round.
//
// # Keys
//
// A repository has one master key: 32 bytes from crypto/rand, never
// stored in the clear. Two subkeys are derived from it with BLAKE3's
// key derivation mode under fixed context strings (idContext,
// aeadContext), so the id key and the encryption key are independent and
// neither reveals the master key. The context strings are part of the
// format: changing one makes every existing repository unreadable.
//
// # Keyed ids
//
// In an encrypted repository a block's id is the BLAKE3 keyed hash of its
// content under the id key (Key.ID, Key.NewHasher), so dedup works for
// key holders while the bucket's listing reveals no content hash: whoever
// lacks the key cannot test whether a known file is stored. Plain
// repositories keep format.Hash.
//
// # Sealed objects
//
// Every stored object is sealed on its own with AES-256-GCM:
//
//	nonce (12 random bytes) | ciphertext | tag (16 bytes)
//
// with the object's kind and name as associated data (Key.Seal, Key.Open).
// The overhead is the constant Overhead, whatever the plaintext's length,
// so a pack's layout can place sealed blocks without decrypting. Why GCM,
// and why random nonces are safe: see the comment on Overhead's constants.
//
// # Key files
//
// A key file (KeyFile) is a small JSON document holding the master key
// sealed under a key derived from a passphrase with argon2id, with the
// argon2id parameters and salt recorded in the file. Several key files can
// wrap the same master key (one per team member); adding, removing or
// changing a passphrase writes or deletes one key file and re-encrypts
// nothing else.
//
// # Threat model
//
// Once a repository uses this package, someone who can read and write the
// bucket but holds neither a passphrase nor the master key:
//
//   - cannot read any object's content, nor test whether a known file or
//     block is stored (ids are keyed);
//   - cannot forge, alter, truncate, rename or swap an object, nor move it
//     to another kind or name, without Open failing with ErrAuth naming it;
//   - can see object names, sizes and times in the listing, and so the
//     number and rough size of blocks, packs and snapshots;
//   - can delete objects, or put back an older object that was validly
//     sealed under the same name (a rolled-back ref): the AEAD cannot see
//     that; the repository must refuse it from what it has seen before;
//   - can replace or add a key file; a key file's own checksum and the
//     AEAD make it fail to unlock, never yield a key of the attacker's
//     choosing for a passphrase the attacker does not know;
//   - can run argon2id offline against a key file to guess a weak
//     passphrase: the passphrase's strength is the repository's.
//
// Whoever holds a passphrase or the master key can read and write
// everything; removing their key file does not revoke a master key they
// have already seen.
package seal
