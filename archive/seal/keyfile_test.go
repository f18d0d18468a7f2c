package seal

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/statepack/statepack/archive/format"
)

var update = flag.Bool("update", false, "rewrite testdata/keyfile-v1.json (a key file format change)")

// cheapParams make a derivation take microseconds: every test that
// unlocks would otherwise pay a fifth of a second and 64 MiB.
func cheapParams() KDFParams {
	return KDFParams{Algorithm: KDFArgon2id, Time: 1, MemoryKiB: 64, Threads: 1}
}

var testMeta = Meta{Created: time.Date(2026, 12, 10, 9, 30, 0, 0, time.UTC), Host: "ci-runner", User: "alice"}

func newTestKeyFile(t testing.TB, master *Key, passphrase string) *KeyFile {
	t.Helper()
	kf, err := NewKeyFileParams(master, passphrase, testMeta, cheapParams())
	if err != nil {
		t.Fatal(err)
	}
	return kf
}

func TestKeyFileRoundTrip(t *testing.T) {
	master := randomKey(t)
	kf := newTestKeyFile(t, master, "correct horse")
	data, err := EncodeKeyFile(kf)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeKeyFile(data)
	if err != nil {
		t.Fatal(err)
	}
	if back.Meta() != testMeta {
		t.Errorf("meta %+v, want %+v", back.Meta(), testMeta)
	}
	k, err := back.Unlock("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !k.Same(master) {
		t.Fatal("unlocked a different master key")
	}
	if k.ID([]byte("x")) != master.ID([]byte("x")) {
		t.Fatal("unlocked key derives other ids")
	}
	if bytes.Contains(data, []byte("correct horse")) {
		t.Error("the key file holds the passphrase")
	}
	if len(data) > MaxKeyFileSize/4 {
		t.Errorf("a key file of %d bytes leaves little room under MaxKeyFileSize", len(data))
	}
}

// TestKeyFileDefaults runs the real argon2id settings once: they must
// unlock within a second here (CI runners are no faster).
func TestKeyFileDefaults(t *testing.T) {
	master := randomKey(t)
	kf, err := NewKeyFile(master, "pw", testMeta)
	if err != nil {
		t.Fatal(err)
	}
	if kf.KDF.Time != 3 || kf.KDF.MemoryKiB != 64<<10 || kf.KDF.Threads != 4 || len(kf.KDF.Salt) != saltSize {
		t.Errorf("default parameters %+v", kf.KDF)
	}
	start := time.Now()
	k, err := kf.Unlock("pw")
	took := time.Since(start)
	if err != nil || !k.Same(master) {
		t.Fatalf("unlock: %v", err)
	}
	t.Logf("unlock with default parameters: %v", took)
	if took > 2*time.Second {
		t.Errorf("unlock took %v", took)
	}
}

// TestTeamKeyFiles: several key files wrap one master key, each with its
// own passphrase and salt; changing a passphrase is a new key file, and
// the others are untouched.
func TestTeamKeyFiles(t *testing.T) {
	master := randomKey(t)
	alice := newTestKeyFile(t, master, "alice's")
	bob := newTestKeyFile(t, master, "bob's")
	if bytes.Equal(alice.KDF.Salt, bob.KDF.Salt) {
		t.Error("two key files share a salt")
	}
	for name, tc := range map[string]struct {
		kf   *KeyFile
		pass string
	}{"alice": {alice, "alice's"}, "bob": {bob, "bob's"}} {
		k, err := tc.kf.Unlock(tc.pass)
		if err != nil || !k.Same(master) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := alice.Unlock("bob's"); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("bob's passphrase on alice's key file: %v", err)
	}
	// passwd: unlock with the old passphrase, wrap the same key anew.
	k, err := alice.Unlock("alice's")
	if err != nil {
		t.Fatal(err)
	}
	renewed := newTestKeyFile(t, k, "alice's new")
	if k2, err := renewed.Unlock("alice's new"); err != nil || !k2.Same(master) {
		t.Errorf("new passphrase: %v", err)
	}
	if _, err := renewed.Unlock("alice's"); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("old passphrase on the new key file: %v", err)
	}
}

func TestWrongPassphraseIsNotDamage(t *testing.T) {
	kf := newTestKeyFile(t, randomKey(t), "right")
	for _, pass := range []string{"xyzzy", "", "right ", "Right", "righ"} {
		k, err := kf.Unlock(pass)
		if k != nil || !errors.Is(err, ErrWrongPassphrase) || errors.Is(err, format.ErrCorrupt) {
			t.Errorf("passphrase %q: %v", pass, err)
		}
		if pass != "" && strings.Contains(err.Error(), pass) {
			t.Errorf("error %q shows the passphrase", err)
		}
	}
}

// TestDamagedKeyFileIsNotWrongPassphrase flips each bit of the sealed
// master key and of the salt: the checksum says "damaged", so the user
// is not told to retype a passphrase that is right.
func TestDamagedKeyFileIsNotWrongPassphrase(t *testing.T) {
	kf := newTestKeyFile(t, randomKey(t), "right")
	fields := map[string][]byte{"master key": kf.MasterKey, "salt": kf.KDF.Salt, "check": kf.Check}
	for name, field := range fields {
		for i := range len(field) * 8 {
			field[i/8] ^= 1 << (i % 8)
			_, err := kf.Unlock("right")
			field[i/8] ^= 1 << (i % 8)
			if !errors.Is(err, format.ErrCorrupt) || errors.Is(err, ErrWrongPassphrase) {
				t.Fatalf("%s bit %d flipped: %v", name, i, err)
			}
		}
	}
	for name, edit := range map[string]func(*KeyFile){
		"host": func(kf *KeyFile) { kf.Host = "mallory" },
		"user": func(kf *KeyFile) { kf.User = "mallory" },
		"time": func(kf *KeyFile) { kf.Created = kf.Created.Add(time.Nanosecond) },
		"kdf":  func(kf *KeyFile) { kf.KDF.Time++ },
	} {
		c := *kf
		edit(&c)
		if _, err := c.Unlock("right"); !errors.Is(err, format.ErrCorrupt) {
			t.Errorf("%s changed: %v", name, err)
		}
	}
	if _, err := kf.Unlock("right"); err != nil {
		t.Fatalf("the restored key file: %v", err)
	}
}

// TestDecodeKeyFileBitFlips flips every bit of a stored key file: each
// flip is refused as damage, or decodes to the same key file (JSON field
// names match case-insensitively, base64's last character has spare bits).
func TestDecodeKeyFileBitFlips(t *testing.T) {
	master := randomKey(t)
	data, err := EncodeKeyFile(newTestKeyFile(t, master, "pw"))
	if err != nil {
		t.Fatal(err)
	}
	harmless := 0
	for i := range len(data) * 8 {
		flipped := bytes.Clone(data)
		flipped[i/8] ^= 1 << (i % 8)
		kf, err := DecodeKeyFile(flipped)
		if err != nil {
			if !errors.Is(err, format.ErrCorrupt) {
				t.Fatalf("bit %d: error %v does not match ErrCorrupt", i, err)
			}
			continue
		}
		again, err := EncodeKeyFile(kf)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("bit %d: accepted a changed key file:\n%s", i, flipped)
		}
		harmless++
	}
	t.Logf("%d of %d flips decode to the same key file", harmless, len(data)*8)
}

// TestDecodeKeyFileHostile: forged key files that ask for absurd work,
// or are malformed, are refused before any derivation. The checksum is
// recomputed for each, as a forger would, so only the bounds catch them.
func TestDecodeKeyFileHostile(t *testing.T) {
	good := newTestKeyFile(t, randomKey(t), "pw")
	for _, tc := range []struct {
		name string
		edit func(*KeyFile)
	}{
		{"a year of passes", func(kf *KeyFile) { kf.KDF.Time = 1 << 31 }},
		{"no passes", func(kf *KeyFile) { kf.KDF.Time = 0 }},
		{"one pass too many", func(kf *KeyFile) { kf.KDF.Time = MaxKDFTime + 1 }},
		{"4 TiB of memory", func(kf *KeyFile) { kf.KDF.MemoryKiB = 1<<32 - 1 }},
		{"memory just over", func(kf *KeyFile) { kf.KDF.MemoryKiB = MaxKDFMemoryKiB + 1 }},
		{"memory under argon2's minimum", func(kf *KeyFile) { kf.KDF.Threads = 4; kf.KDF.MemoryKiB = 31 }},
		{"no threads", func(kf *KeyFile) { kf.KDF.Threads = 0 }},
		{"256 threads", func(kf *KeyFile) { kf.KDF.Threads = 256 }},
		{"scrypt", func(kf *KeyFile) { kf.KDF.Algorithm = "scrypt" }},
		{"no salt", func(kf *KeyFile) { kf.KDF.Salt = nil }},
		{"short salt", func(kf *KeyFile) { kf.KDF.Salt = kf.KDF.Salt[:MinSaltSize-1] }},
		{"long salt", func(kf *KeyFile) { kf.KDF.Salt = make([]byte, MaxSaltSize+1) }},
		{"short master key", func(kf *KeyFile) { kf.MasterKey = kf.MasterKey[:len(kf.MasterKey)-1] }},
		{"long master key", func(kf *KeyFile) { kf.MasterKey = append(kf.MasterKey, 0) }},
		{"version 2", func(kf *KeyFile) { kf.Version = 2 }},
		{"version 0", func(kf *KeyFile) { kf.Version = 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kf := *good
			kf.KDF.Salt = bytes.Clone(good.KDF.Salt)
			kf.MasterKey = bytes.Clone(good.MasterKey)
			tc.edit(&kf)
			kf.Check = kf.checksum()
			data, err := json.Marshal(&kf)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if _, err := DecodeKeyFile(data); !errors.Is(err, format.ErrCorrupt) {
				t.Errorf("decoded: %v", err)
			}
			if _, err := kf.Unlock("pw"); !errors.Is(err, format.ErrCorrupt) {
				t.Errorf("unlocked: %v", err)
			}
			if _, err := EncodeKeyFile(&kf); err == nil {
				t.Error("encoded an invalid key file")
			}
			if took := time.Since(start); took > 100*time.Millisecond {
				t.Errorf("refusing took %v", took)
			}
		})
	}

	data, err := EncodeKeyFile(good)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"not json", []byte("key")},
		{"null", []byte("null")},
		{"array", []byte("[]")},
		{"trailing object", append(bytes.Clone(data), []byte(`{}`)...)},
		{"trailing garbage", append(bytes.Clone(data), 'x')},
		{"unknown field", bytes.Replace(data, []byte(`"host"`), []byte(`"hostname"`), 1)},
		{"negative time", bytes.Replace(data, []byte(`"time": 1`), []byte(`"time": -1`), 1)},
		{"huge time", bytes.Replace(data, []byte(`"time": 1`), []byte(`"time": 1e30`), 1)},
		{"over the size limit", append(bytes.Clone(data), bytes.Repeat([]byte(" "), MaxKeyFileSize)...)},
		{"host over the size limit", bytes.Replace(data, []byte(`"ci-runner"`), []byte(`"`+strings.Repeat("h", MaxKeyFileSize)+`"`), 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if kf, err := DecodeKeyFile(tc.data); !errors.Is(err, format.ErrCorrupt) {
				t.Errorf("decoded %+v, %v", kf, err)
			}
		})
	}
}

func TestNewKeyFileRefusesEmptyPassphrase(t *testing.T) {
	if _, err := NewKeyFileParams(randomKey(t), "", testMeta, cheapParams()); err == nil {
		t.Error("made a key file with an empty passphrase")
	}
}

// TestKeyFileGolden unlocks a key file made once and kept in testdata:
// key files written by this version must open in every later one.
func TestKeyFileGolden(t *testing.T) {
	path := filepath.Join("testdata", "keyfile-v1.json")
	if *update {
		kf, err := NewKeyFileParams(fixedKey(t), "golden passphrase", testMeta, cheapParams())
		if err != nil {
			t.Fatal(err)
		}
		data, err := EncodeKeyFile(kf)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	kf, err := DecodeKeyFile(data)
	if err != nil {
		t.Fatal(err)
	}
	k, err := kf.Unlock("golden passphrase")
	if err != nil {
		t.Fatal(err)
	}
	if !k.Same(fixedKey(t)) {
		t.Fatal("the golden key file unlocks another master key")
	}
}
