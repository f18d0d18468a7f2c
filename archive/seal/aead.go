package seal

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/statepack/statepack/archive/format"
)

// The cipher is AES-256-GCM (crypto/aes, crypto/cipher), chosen by
// measurement on the machine statepack is developed and benchmarked on
// (an Intel Xeon with AES-NI and AVX2, Go 1.26): sealing 64 KiB and
// 4 MiB runs at 5.0-6.2 GB/s per core with GCM against 2.1-2.5 GB/s with
// XChaCha20-Poly1305 (BenchmarkCipher; docs/performance.md). Sealing must
// not slow a save, push or pull by more than a few percent, and the
// laptops, CI runners and cloud VMs LocalStack runs on have AES
// instructions (without them Go's GCM is slower, not wrong).
//
// Nonces are 96 random bits per object. NIST SP 800-38D (8.3) allows
// random nonces for up to 2^32 sealings under one key, which keeps the
// chance of any nonce repeating below 2^-32. A repository seals one
// object per new block (64 KiB on average, dedup drops the rest) plus a
// few per push; 2^32 blocks is 256 TiB of distinct data, thousands of
// times what a LocalStack state store holds over its life. At 2^27
// objects (8 TiB) the chance of a repeat is about 2^-43. Random nonces
// keep sealing stateless: no counter to store, share between team
// members or lose in a crash.
const (
	// NonceSize is the length of the random nonce that starts every
	// sealed object.
	NonceSize = 12
	// TagSize is the length of the GCM tag that ends every sealed
	// object.
	TagSize = 16
	// Overhead is how much longer a sealed object is than its plaintext,
	// whatever the plaintext's length: the pack layout adds it to every
	// sealed block.
	Overhead = NonceSize + TagSize
)

// ErrAuth is the error of every object that fails to open: errors.Is(err,
// ErrAuth) and errors.Is(err, format.ErrCorrupt) both hold, so existing
// callers treat it as damage, and those that care tell it apart.
var ErrAuth = errors.New("does not authenticate")

// AuthError names a sealed object that failed to open: damaged,
// truncated, forged, renamed, moved to another kind, or sealed under
// another repository's key. It carries nothing secret: the kind and name
// are the caller's (object names are public in the listing), and the
// reason says only what was wrong with the envelope's shape.
type AuthError struct {
	Kind, Name string
	// Size is the sealed object's length, which the listing shows anyway.
	Size int
	// Short is set when the object is too short to hold an envelope.
	Short bool
}

func (e *AuthError) Error() string {
	if e.Short {
		return fmt.Sprintf("%s %s: sealed object of %d bytes is shorter than its %d-byte envelope: %v",
			e.Kind, e.Name, e.Size, Overhead, ErrAuth)
	}
	return fmt.Sprintf("%s %s: sealed object %v with this repository's key (damaged, forged, renamed or from another repository)",
		e.Kind, e.Name, ErrAuth)
}

// Is makes errors.Is hold for both ErrAuth and format.ErrCorrupt.
func (e *AuthError) Is(target error) bool {
	return target == ErrAuth || target == format.ErrCorrupt
}

// associatedData binds an object to its kind and name. The kind is
// length-prefixed, so no two (kind, name) pairs encode alike ("ab","c"
// and "a","bc" differ).
func associatedData(buf []byte, kind, name string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(kind)))
	buf = append(buf, kind...)
	return append(buf, name...)
}

// Seal appends to dst the sealed form of plaintext, nonce | ciphertext |
// tag, exactly len(plaintext)+Overhead bytes. kind and name are the
// object's kind ("block", "index", "ref", ...) and name as the repository
// stores it: Open succeeds only with the same two, so an object renamed,
// swapped for another or moved to another kind fails to open. plaintext
// must not overlap dst's spare capacity (GCM refuses to seal in place
// when the output is shifted by the nonce).
func (k *Key) Seal(dst, plaintext []byte, kind, name string) []byte {
	return sealWith(k.aead, dst, plaintext, kind, name)
}

func sealWith(aead cipher.AEAD, dst, plaintext []byte, kind, name string) []byte {
	var adBuf [128]byte
	ad := associatedData(adBuf[:0], kind, name)
	n := len(dst)
	if cap(dst)-n < len(plaintext)+Overhead {
		grown := make([]byte, n, n+len(plaintext)+Overhead)
		copy(grown, dst)
		dst = grown
	}
	nonce := dst[n : n+NonceSize]
	// crypto/rand.Read never fails (Go 1.24 and later crash the program
	// instead of returning an error), so Seal has no error to return.
	_, _ = rand.Read(nonce)
	out := aead.Seal(dst[n+NonceSize:n+NonceSize], nonce, plaintext, ad)
	return dst[:n+NonceSize+len(out)]
}

// Open appends to dst the plaintext of sealed, an object Seal made with
// the same kind and name, and returns it. Any failure is an *AuthError
// (ErrAuth, format.ErrCorrupt) naming kind and name; the plaintext of an
// object that fails is never returned. dst and sealed must not overlap.
func (k *Key) Open(dst, sealed []byte, kind, name string) ([]byte, error) {
	return openWith(k.aead, dst, sealed, kind, name)
}

func openWith(aead cipher.AEAD, dst, sealed []byte, kind, name string) ([]byte, error) {
	if len(sealed) < Overhead {
		return nil, &AuthError{Kind: kind, Name: name, Size: len(sealed), Short: true}
	}
	var adBuf [128]byte
	ad := associatedData(adBuf[:0], kind, name)
	out, err := aead.Open(dst, sealed[:NonceSize], sealed[NonceSize:], ad)
	if err != nil {
		return nil, &AuthError{Kind: kind, Name: name, Size: len(sealed)}
	}
	return out, nil
}
