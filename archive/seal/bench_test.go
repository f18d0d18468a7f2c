package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/statepack/statepack/archive/format"
	"golang.org/x/crypto/chacha20poly1305"
)

var benchSizes = []int{64 << 10, 4 << 20}

// BenchmarkCipher is the measurement the cipher was chosen by: the two
// AEADs the issue allows, sealing with a fresh random nonce each time,
// as Seal does. Rerun it on a new machine before doubting the choice.
func BenchmarkCipher(b *testing.B) {
	key := make([]byte, 32)
	block, err := aes.NewCipher(key)
	if err != nil {
		b.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		b.Fatal(err)
	}
	xchacha, err := chacha20poly1305.NewX(key)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		aead cipher.AEAD
	}{{"aes-256-gcm", gcm}, {"xchacha20-poly1305", xchacha}} {
		for _, size := range benchSizes {
			b.Run(fmt.Sprintf("%s/%dKiB", c.name, size>>10), func(b *testing.B) {
				plaintext := make([]byte, size)
				nonce := make([]byte, c.aead.NonceSize())
				dst := make([]byte, 0, size+c.aead.Overhead())
				b.SetBytes(int64(size))
				for b.Loop() {
					_, _ = rand.Read(nonce)
					dst = c.aead.Seal(dst[:0], nonce, plaintext, nil)
				}
			})
		}
	}
}

func BenchmarkSeal(b *testing.B) {
	k := fixedKey(b)
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			plaintext := make([]byte, size)
			dst := make([]byte, 0, size+Overhead)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				dst = k.Seal(dst[:0], plaintext, "block", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
			}
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	k := fixedKey(b)
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			sealed := k.Seal(nil, make([]byte, size), "block", "name")
			dst := make([]byte, 0, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if dst, err = k.Open(dst[:0], sealed, "block", "name"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkID compares the keyed id with the plain one it replaces.
func BenchmarkID(b *testing.B) {
	k := fixedKey(b)
	for _, size := range benchSizes {
		data := make([]byte, size)
		b.Run(fmt.Sprintf("keyed/%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				_ = k.ID(data)
			}
		})
		b.Run(fmt.Sprintf("plain/%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				_ = format.Hash(data)
			}
		})
	}
}

// BenchmarkUnlock is what every command of an encrypted repository pays
// once, with the default argon2id settings.
func BenchmarkUnlock(b *testing.B) {
	kf, err := NewKeyFile(fixedKey(b), "pw", testMeta)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := kf.Unlock("pw"); err != nil {
			b.Fatal(err)
		}
	}
}
