package seal

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecodeKeyFile: hostile key files fail with ErrCorrupt instead of
// panicking or asking for unbounded work; what decodes re-encodes to a
// key file that decodes the same, and unlocks to a key or
// ErrWrongPassphrase, nothing else.
func FuzzDecodeKeyFile(f *testing.F) {
	master := fixedKey(f)
	kf, err := NewKeyFileParams(master, "pw", testMeta, cheapParams())
	if err != nil {
		f.Fatal(err)
	}
	good, err := EncodeKeyFile(kf)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"version": 1, "kdf": {"algorithm": "argon2id", "time": 4294967295, "memory_kib": 4294967295, "threads": 255}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte("not json"))
	f.Fuzz(func(t *testing.T, data []byte) {
		kf, err := DecodeKeyFile(data)
		if err != nil {
			return
		}
		again, err := EncodeKeyFile(kf)
		if err != nil {
			t.Fatalf("decoded a key file that does not encode: %v", err)
		}
		back, err := DecodeKeyFile(again)
		if err != nil {
			t.Fatalf("re-encoded key file does not decode: %v", err)
		}
		if third, err := EncodeKeyFile(back); err != nil || !bytes.Equal(third, again) {
			t.Fatalf("key file does not round-trip: %v", err)
		}
		// Only cheap settings are unlocked here: the bounds are tested on
		// their own, and the fuzzer must not spend its time in argon2id.
		if kf.KDF.Time*kf.KDF.MemoryKiB <= 1024 {
			if k, err := kf.Unlock("pw"); err != nil && !errors.Is(err, ErrWrongPassphrase) || err == nil && !k.Same(master) {
				t.Fatalf("unlock: %v", err)
			}
		}
	})
}

// FuzzOpen: arbitrary bytes under any kind and name fail to open with an
// *AuthError (only the seeded sealed object opens); and whatever is
// sealed opens again under its own kind and name and under no other.
func FuzzOpen(f *testing.F) {
	k := fixedKey(f)
	valid := k.Seal(nil, []byte("seed"), "ref", "refs/main")
	f.Add(valid, "ref", "refs/main")
	f.Add(valid, "ref", "refs/other")
	f.Add([]byte{}, "block", "")
	f.Add(bytes.Repeat([]byte{0}, Overhead), "index", "index/00")
	f.Fuzz(func(t *testing.T, data []byte, kind, name string) {
		got, err := k.Open(nil, data, kind, name)
		if err == nil {
			// The seed is sealed anew (another nonce) in each fuzzing
			// worker, so it is recognised by what it opens to.
			if kind != "ref" || name != "refs/main" || string(got) != "seed" {
				t.Fatalf("opened forged bytes to %q", got)
			}
		} else {
			var ae *AuthError
			if got != nil || !errors.As(err, &ae) || ae.Kind != kind || ae.Name != name {
				t.Fatalf("open failed with %v", err)
			}
		}

		sealed := k.Seal(nil, data, kind, name)
		if len(sealed) != len(data)+Overhead {
			t.Fatalf("sealed %d bytes into %d", len(data), len(sealed))
		}
		if back, err := k.Open(nil, sealed, kind, name); err != nil || !bytes.Equal(back, data) {
			t.Fatalf("round trip: %v", err)
		}
		if _, err := k.Open(nil, sealed, kind+"x", name); err == nil {
			t.Fatal("opened under another kind")
		}
		if _, err := k.Open(nil, sealed, kind, name+"x"); err == nil {
			t.Fatal("opened under another name")
		}
	})
}
