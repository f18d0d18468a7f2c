package seal

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/statepack/statepack/archive/format"
	"github.com/zeebo/blake3"
	"golang.org/x/crypto/argon2"
)

// KindKey is the AEAD kind a key file's master key is sealed under, and
// masterKeyName its name: a sealed master key cannot be passed off as any
// other object, nor another object as a master key.
const (
	KindKey       = "key"
	masterKeyName = "master key"
)

// KeyFileVersion is the version of the key file layout this package
// writes and reads.
const KeyFileVersion = 1

// KDFArgon2id is the one key derivation function key files use.
const KDFArgon2id = "argon2id"

// Bounds a key file is checked against before anything is allocated or
// derived: a forged key file must not make statepack burn minutes of CPU
// or gigabytes of memory. They allow four times the default memory and a
// little under three times the default passes, room for stronger
// settings without letting one key file cost more than a few seconds.
const (
	MaxKeyFileSize  = 4096
	MaxKDFTime      = 8
	MaxKDFMemoryKiB = 256 << 10
	MaxKDFThreads   = 16
	MinSaltSize     = 16
	MaxSaltSize     = 64
	// saltSize is the length of the salt NewKeyFile draws.
	saltSize = 32
)

// checkContext derives the key file checksum's hash (see keyFileCheck).
// Part of the key file format, like the subkey contexts.
const checkContext = "statepack 2026-12-10 key file checksum v1"

// ErrWrongPassphrase is returned by Unlock when the key file is intact but
// the passphrase does not open it. It is not format.ErrCorrupt: the CLI
// gives it a message and an exit code of its own.
var ErrWrongPassphrase = errors.New("wrong passphrase: it does not unlock this key file")

// KDFParams are the argon2id settings and salt one key file was made with,
// recorded in it so that defaults can change without old key files
// becoming unusable.
type KDFParams struct {
	Algorithm string `json:"algorithm"`
	// Time is argon2id's number of passes over the memory.
	Time uint32 `json:"time"`
	// MemoryKiB is the memory argon2id fills, in KiB.
	MemoryKiB uint32 `json:"memory_kib"`
	// Threads is argon2id's parallelism (lanes).
	Threads uint32 `json:"threads"`
	Salt    []byte `json:"salt"`
}

// DefaultKDFParams are the argon2id settings of new key files (without a
// salt; NewKeyFile draws one): 3 passes over 64 MiB with 4 lanes, RFC
// 9106's second recommended option (section 4) for when 2 GiB is too
// much. 64 MiB matches the memory kopia's scrypt default spends
// (scrypt-65536-8-1, 128*N*r bytes) and restic's calibration target (60
// MiB, 0.5 s, scrypt). One derivation takes 0.08-0.25 s on the 2-core
// Xeon statepack is benchmarked on: an unlock per command, usable on a CI
// runner, and well inside MaxKDFTime and MaxKDFMemoryKiB.
func DefaultKDFParams() KDFParams {
	return KDFParams{Algorithm: KDFArgon2id, Time: 3, MemoryKiB: 64 << 10, Threads: 4}
}

// Validate checks p against the bounds a key file may ask for.
func (p KDFParams) Validate() error {
	switch {
	case p.Algorithm != KDFArgon2id:
		return fmt.Errorf("unknown key derivation %q", format.Clip(p.Algorithm))
	case p.Time < 1 || p.Time > MaxKDFTime:
		return fmt.Errorf("argon2id time %d outside 1..%d", p.Time, MaxKDFTime)
	case p.Threads < 1 || p.Threads > MaxKDFThreads:
		return fmt.Errorf("argon2id threads %d outside 1..%d", p.Threads, MaxKDFThreads)
	case p.MemoryKiB < 8*p.Threads || p.MemoryKiB > MaxKDFMemoryKiB:
		return fmt.Errorf("argon2id memory %d KiB outside %d..%d", p.MemoryKiB, 8*p.Threads, MaxKDFMemoryKiB)
	case len(p.Salt) < MinSaltSize || len(p.Salt) > MaxSaltSize:
		return fmt.Errorf("salt of %d bytes outside %d..%d", len(p.Salt), MinSaltSize, MaxSaltSize)
	}
	return nil
}

// derive runs argon2id. p must be valid.
func (p KDFParams) derive(passphrase string) []byte {
	return argon2.IDKey([]byte(passphrase), p.Salt, p.Time, p.MemoryKiB, uint8(p.Threads), KeySize)
}

// Meta is what a key file says about who made it, for `key list`. It is
// neither secret nor authenticated: the checksum catches damage, but
// whoever can write the bucket can change it and recompute the checksum,
// and the key file still unlocks.
type Meta struct {
	Created time.Time
	Host    string
	User    string
}

// KeyFile is one passphrase's wrapping of a repository's master key.
type KeyFile struct {
	Version int       `json:"version"`
	Created time.Time `json:"created"`
	Host    string    `json:"host"`
	User    string    `json:"user"`
	KDF     KDFParams `json:"kdf"`
	// MasterKey is the master key sealed (Seal's envelope, kind KindKey)
	// under the key argon2id derives from the passphrase.
	MasterKey []byte `json:"master_key"`
	// Check is a BLAKE3 checksum of everything above, so that a key file
	// damaged in storage is told apart from a wrong passphrase (the AEAD
	// alone cannot tell the two apart). It is not a signature: anyone can
	// recompute it, and the AEAD is what keeps a forgery from unlocking.
	Check []byte `json:"check"`
}

// NewKeyFile wraps master under passphrase with DefaultKDFParams and a
// fresh salt. meta is recorded as given.
func NewKeyFile(master *Key, passphrase string, meta Meta) (*KeyFile, error) {
	return NewKeyFileParams(master, passphrase, meta, DefaultKDFParams())
}

// NewKeyFileParams is NewKeyFile with other argon2id settings: tests use
// cheap ones, since every unlock pays for them. A nil salt in params is
// replaced by a fresh random one.
func NewKeyFileParams(master *Key, passphrase string, meta Meta, params KDFParams) (*KeyFile, error) {
	if passphrase == "" {
		return nil, errors.New("new key file: an empty passphrase is not allowed")
	}
	if params.Salt == nil {
		params.Salt = make([]byte, saltSize)
		if _, err := rand.Read(params.Salt); err != nil {
			return nil, fmt.Errorf("new key file: salt: %w", err)
		}
	}
	if err := params.Validate(); err != nil {
		return nil, fmt.Errorf("new key file: %w", err)
	}
	wrap, err := newGCM(params.derive(passphrase))
	if err != nil {
		return nil, fmt.Errorf("new key file: %w", err)
	}
	kf := &KeyFile{
		Version:   KeyFileVersion,
		Created:   meta.Created,
		Host:      meta.Host,
		User:      meta.User,
		KDF:       params,
		MasterKey: sealWith(wrap, nil, master.master[:], KindKey, masterKeyName),
	}
	kf.Check = kf.checksum()
	return kf, nil
}

// Meta returns what the key file says about who made it.
func (kf *KeyFile) Meta() Meta {
	return Meta{Created: kf.Created, Host: kf.Host, User: kf.User}
}

// Unlock derives the passphrase's key and opens the master key. A key file
// that is damaged (fails Validate, including its checksum) is an error
// matching format.ErrCorrupt; an intact one that the passphrase does not
// open is ErrWrongPassphrase.
func (kf *KeyFile) Unlock(passphrase string) (*Key, error) {
	if err := kf.Validate(); err != nil {
		return nil, err
	}
	wrap, err := newGCM(kf.KDF.derive(passphrase))
	if err != nil {
		return nil, fmt.Errorf("unlock key file: %w", err)
	}
	raw, err := openWith(wrap, nil, kf.MasterKey, KindKey, masterKeyName)
	if err != nil {
		return nil, ErrWrongPassphrase
	}
	var master [KeySize]byte
	copy(master[:], raw)
	clear(raw)
	return newKey(master)
}

// Validate checks the key file's version, bounds and checksum: what must
// hold before a derivation is worth running. Its errors match
// format.ErrCorrupt.
func (kf *KeyFile) Validate() error {
	if kf.Version != KeyFileVersion {
		return fmt.Errorf("key file version %d, want %d: %w", kf.Version, KeyFileVersion, format.ErrCorrupt)
	}
	if err := kf.KDF.Validate(); err != nil {
		return fmt.Errorf("key file: %v: %w", err, format.ErrCorrupt)
	}
	if len(kf.MasterKey) != KeySize+Overhead {
		return fmt.Errorf("key file: sealed master key of %d bytes, want %d: %w", len(kf.MasterKey), KeySize+Overhead, format.ErrCorrupt)
	}
	if subtle.ConstantTimeCompare(kf.Check, kf.checksum()) != 1 {
		return fmt.Errorf("key file is damaged: its checksum does not match its content: %w", format.ErrCorrupt)
	}
	return nil
}

// checksum hashes every field but Check in a fixed binary form, each
// variable-length field length-prefixed, so that the checksum does not
// depend on how the JSON spells them (a time zone, base64 padding).
func (kf *KeyFile) checksum() []byte {
	h := blake3.NewDeriveKey(checkContext)
	var buf []byte
	putString := func(s string) {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	buf = binary.AppendUvarint(buf, uint64(kf.Version))
	buf = binary.AppendVarint(buf, kf.Created.Unix())
	buf = binary.AppendUvarint(buf, uint64(kf.Created.Nanosecond()))
	putString(kf.Host)
	putString(kf.User)
	putString(kf.KDF.Algorithm)
	buf = binary.AppendUvarint(buf, uint64(kf.KDF.Time))
	buf = binary.AppendUvarint(buf, uint64(kf.KDF.MemoryKiB))
	buf = binary.AppendUvarint(buf, uint64(kf.KDF.Threads))
	putString(string(kf.KDF.Salt))
	putString(string(kf.MasterKey))
	_, _ = h.Write(buf)
	return h.Sum(nil)
}

// EncodeKeyFile is the stored form of kf: indented JSON, small enough to
// read by eye. An invalid key file is refused rather than written.
func EncodeKeyFile(kf *KeyFile) ([]byte, error) {
	if err := kf.Validate(); err != nil {
		return nil, fmt.Errorf("encode key file: %w", err)
	}
	data, err := json.MarshalIndent(kf, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode key file: %w", err)
	}
	return append(data, '\n'), nil
}

// DecodeKeyFile parses and validates a stored key file. The input is
// hostile: its size is bounded before parsing, unknown fields and
// trailing data are refused, and the argon2id settings are checked
// against the Max bounds before Unlock could run them. Every error
// matches format.ErrCorrupt.
func DecodeKeyFile(data []byte) (*KeyFile, error) {
	if len(data) > MaxKeyFileSize {
		return nil, fmt.Errorf("key file of %d bytes over the %d-byte limit: %w", len(data), MaxKeyFileSize, format.ErrCorrupt)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var kf KeyFile
	if err := dec.Decode(&kf); err != nil {
		return nil, fmt.Errorf("key file: %s: %w", format.Clip(err.Error()), format.ErrCorrupt)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("key file has trailing data: %w", format.ErrCorrupt)
	}
	if err := kf.Validate(); err != nil {
		return nil, err
	}
	return &kf, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("gcm: %w", err)
	}
	return aead, nil
}
