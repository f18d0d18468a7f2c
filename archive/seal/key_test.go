package seal

import (
	"bytes"
	"encoding/hex"
	"io"
	"sync"
	"testing"

	"github.com/statepack/statepack/archive/format"
)

// fixedKey is a master key of bytes 0..31, for golden values.
func fixedKey(t testing.TB) *Key {
	t.Helper()
	var master [KeySize]byte
	for i := range master {
		master[i] = byte(i)
	}
	k, err := newKey(master)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func randomKey(t testing.TB) *Key {
	t.Helper()
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestSubkeysGolden pins what a master key derives: a changed context
// string, derivation or id mode would make every encrypted repository
// unreadable, and must show up here as a format change.
func TestSubkeysGolden(t *testing.T) {
	k := fixedKey(t)
	const wantID = "2658a4e2e2094706d0225e8adba69f74425575c69e31c2e9cbf8af8738e4a8ea"
	if got := k.ID([]byte("statepack")).String(); got != wantID {
		t.Errorf("ID under the fixed key = %s, want %s", got, wantID)
	}
	// A sealed object of the fixed key opens: the AEAD subkey is pinned
	// too (the nonce is random, so the ciphertext itself cannot be).
	sealed := mustHex(t, goldenSealed)
	got, err := k.Open(nil, sealed, "ref", "refs/main")
	if err != nil || string(got) != "golden" {
		t.Errorf("golden sealed object: %q, %v", got, err)
	}
}

// goldenSealed is Seal([]byte("golden"), "ref", "refs/main") under
// fixedKey, made once.
const goldenSealed = "e0ea4db244514005f6a6435bbf52fe048554f4fcef042342f9c85420e85007a6aeb8"

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestIDIsKeyed(t *testing.T) {
	a, b := randomKey(t), randomKey(t)
	data := []byte("the same content in two repositories")
	if a.ID(data) == b.ID(data) {
		t.Error("two master keys give the same id")
	}
	if a.ID(data) == format.Hash(data) {
		t.Error("keyed id equals the plain BLAKE3 id")
	}
	if a.ID(data) != a.ID(bytes.Clone(data)) {
		t.Error("one key gives two ids for one content")
	}
	if a.ID(data) == a.ID(append(bytes.Clone(data), 0)) {
		t.Error("different content, same id")
	}
	if a.Same(b) || !a.Same(a) {
		t.Error("Same is wrong")
	}
}

// TestIDStreaming checks that the streaming forms, used for packs, agree
// with ID however the bytes are cut, across BLAKE3's 1 KiB chunks.
func TestIDStreaming(t *testing.T) {
	k := randomKey(t)
	data := make([]byte, 300_000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for _, size := range []int{0, 1, 1023, 1024, 1025, 65536, len(data)} {
		want := k.ID(data[:size])
		h := k.NewHasher()
		for off := 0; off < size; off += 777 {
			_, _ = h.Write(data[off:min(off+777, size)])
		}
		if got := format.HashOf(h); got != want {
			t.Errorf("%d bytes: hasher %s, ID %s", size, got.Short(), want.Short())
		}
		got, err := k.HashStream(io.LimitReader(bytes.NewReader(data), int64(size)))
		if err != nil || got != want {
			t.Errorf("%d bytes: HashStream %s, %v; ID %s", size, got.Short(), err, want.Short())
		}
	}
}

// TestConcurrentUse shares one Key between goroutines as the save
// pipeline does: the pooled hashers must not leak state between callers.
func TestConcurrentUse(t *testing.T) {
	k := randomKey(t)
	inputs := make([][]byte, 64)
	want := make([]format.ID, len(inputs))
	for i := range inputs {
		inputs[i] = bytes.Repeat([]byte{byte(i)}, 1000+i*500)
		want[i] = k.ID(inputs[i])
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := 0; round < 20; round++ {
				for i, in := range inputs {
					if k.ID(in) != want[i] {
						t.Errorf("input %d: id changed under concurrency", i)
						return
					}
					sealed := k.Seal(nil, in, "block", want[i].String())
					if out, err := k.Open(nil, sealed, "block", want[i].String()); err != nil || !bytes.Equal(out, in) {
						t.Errorf("input %d: round trip under concurrency: %v", i, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}
