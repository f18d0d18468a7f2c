package seal

import (
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"io"
	"sync"

	"github.com/statepack/statepack/archive/format"
	"github.com/zeebo/blake3"
)

// KeySize is the length of the master key and of each subkey.
const KeySize = 32

// The BLAKE3 derive_key contexts of the two subkeys, in the format BLAKE3
// recommends ("[application] [date] [purpose]"). They are part of the
// repository format: a changed string derives other subkeys, and every
// repository sealed under the old ones becomes unreadable.
const (
	idContext   = "statepack 2026-12-10 keyed block ids v1"
	aeadContext = "statepack 2026-12-10 object sealing aes-256-gcm v1"
)

// Key is an unlocked repository's master key and the subkeys derived from
// it. It is safe for concurrent use: the save and copy pipelines seal and
// hash on every core with one Key.
type Key struct {
	master [KeySize]byte
	idKey  [KeySize]byte
	aead   cipher.AEAD
	// hashers are keyed BLAKE3 hashers ready for reuse: a Hasher is a few
	// KiB, and ID is called once per block.
	hashers sync.Pool
}

// NewKey returns a fresh random master key, for a new encrypted
// repository.
func NewKey() (*Key, error) {
	var master [KeySize]byte
	if _, err := rand.Read(master[:]); err != nil {
		return nil, fmt.Errorf("new master key: %w", err)
	}
	return newKey(master)
}

// newKey derives the subkeys of master. It is unexported: a master key
// reaches a caller only through NewKey or KeyFile.Unlock, never as bytes
// the caller could log or store in the clear.
func newKey(master [KeySize]byte) (*Key, error) {
	k := &Key{master: master}
	blake3.DeriveKey(idContext, master[:], k.idKey[:])
	var aeadKey [KeySize]byte
	blake3.DeriveKey(aeadContext, master[:], aeadKey[:])
	var err error
	if k.aead, err = newGCM(aeadKey[:]); err != nil {
		return nil, err
	}
	k.hashers.New = func() any {
		h, err := blake3.NewKeyed(k.idKey[:])
		if err != nil {
			panic(err) // the key is KeySize bytes by construction
		}
		return h
	}
	return k, nil
}

// Same reports whether k and other hold the same master key: two
// repositories can exchange sealed blocks and packs as they are only
// then. It runs in constant time.
func (k *Key) Same(other *Key) bool {
	return subtle.ConstantTimeCompare(k.master[:], other.master[:]) == 1
}

// ID is the keyed id of data: the BLAKE3 keyed hash under the id subkey,
// so that only key holders can compute (and so test for) a block's id.
func (k *Key) ID(data []byte) format.ID {
	h := k.hashers.Get().(*blake3.Hasher)
	h.Reset()
	_, _ = h.Write(data)
	id := format.HashOf(h)
	k.hashers.Put(h)
	return id
}

// NewHasher returns a keyed hasher for content that arrives in pieces (a
// pack streamed to or from a file); format.HashOf gives its id, equal to
// ID of the same bytes.
func (k *Key) NewHasher() *blake3.Hasher {
	h, err := blake3.NewKeyed(k.idKey[:])
	if err != nil {
		panic(err) // the key is KeySize bytes by construction
	}
	return h
}

// HashStream is the keyed counterpart of format.HashStream: the id of the
// bytes r yields, without holding them whole.
func (k *Key) HashStream(r io.Reader) (format.ID, error) {
	h := k.hashers.Get().(*blake3.Hasher)
	defer k.hashers.Put(h)
	h.Reset()
	if _, err := io.Copy(h, r); err != nil {
		return format.ID{}, err
	}
	return format.HashOf(h), nil
}
