package seal

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/statepack/statepack/archive/format"
)

func TestSealRoundTrip(t *testing.T) {
	k := randomKey(t)
	for _, tc := range []struct {
		name      string
		plaintext []byte
		kind, obj string
	}{
		{"empty", nil, "lock", "locks/x"},
		{"one byte", []byte{0}, "ref", "refs/main"},
		{"block", bytes.Repeat([]byte("abcdefgh"), 8192), "block", strings.Repeat("a", 64)},
		{"empty kind and name", []byte("x"), "", ""},
		{"long name", []byte("x"), "manifest", "snapshots/" + strings.Repeat("f", 500)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := []byte("prefix")
			sealed := k.Seal(bytes.Clone(prefix), tc.plaintext, tc.kind, tc.obj)
			if !bytes.HasPrefix(sealed, prefix) {
				t.Fatal("Seal did not append to dst")
			}
			sealed = sealed[len(prefix):]
			if len(sealed) != len(tc.plaintext)+Overhead {
				t.Fatalf("sealed %d bytes into %d, want overhead %d", len(tc.plaintext), len(sealed), Overhead)
			}
			if len(tc.plaintext) > 8 && bytes.Contains(sealed, tc.plaintext[:8]) {
				t.Error("the plaintext shows in the sealed bytes")
			}
			got, err := k.Open(bytes.Clone(prefix), sealed, tc.kind, tc.obj)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, append(bytes.Clone(prefix), tc.plaintext...)) {
				t.Fatal("Open did not return the plaintext appended to dst")
			}
		})
	}
}

// TestSealFreshNonces: sealing the same object twice gives unrelated
// bytes, so a bucket reader cannot tell that two objects hold the same
// content (a ref rewritten to the same snapshot, say).
func TestSealFreshNonces(t *testing.T) {
	k := randomKey(t)
	a := k.Seal(nil, []byte("same"), "ref", "refs/main")
	b := k.Seal(nil, []byte("same"), "ref", "refs/main")
	if bytes.Equal(a[:NonceSize], b[:NonceSize]) || bytes.Equal(a, b) {
		t.Error("two sealings of one object share their nonce")
	}
}

// TestOpenRefusesTampering is the list of what a bucket writer without
// the key might try on one sealed object; each must fail with an
// *AuthError naming the object, and return no plaintext.
func TestOpenRefusesTampering(t *testing.T) {
	k := randomKey(t)
	plaintext := []byte("snapshot 1234: the ref's content")
	sealed := k.Seal(nil, plaintext, "ref", "refs/main")
	other := k.Seal(nil, []byte("another object"), "ref", "refs/main")

	type tamper struct {
		name      string
		sealed    []byte
		kind, obj string
		key       *Key
		wantShort bool
	}
	cases := []tamper{
		{name: "wrong kind", sealed: sealed, kind: "lock", obj: "refs/main"},
		{name: "wrong name", sealed: sealed, kind: "ref", obj: "refs/other"},
		{name: "kind and name shifted", sealed: sealed, kind: "re", obj: "frefs/main"},
		{name: "moved under a prefix", sealed: sealed, kind: "ref", obj: "refs/main/x"},
		{name: "another key", sealed: sealed, kind: "ref", obj: "refs/main", key: randomKey(t)},
		{name: "nonce of another object", sealed: append(bytes.Clone(other[:NonceSize]), sealed[NonceSize:]...), kind: "ref", obj: "refs/main"},
		{name: "tag of another object", sealed: append(bytes.Clone(sealed[:len(sealed)-TagSize]), other[len(other)-TagSize:]...), kind: "ref", obj: "refs/main"},
		{name: "byte appended", sealed: append(bytes.Clone(sealed), 0), kind: "ref", obj: "refs/main"},
		{name: "empty", sealed: nil, kind: "ref", obj: "refs/main", wantShort: true},
		{name: "only a nonce", sealed: sealed[:NonceSize], kind: "ref", obj: "refs/main", wantShort: true},
		{name: "plaintext stored unsealed", sealed: plaintext, kind: "ref", obj: "refs/main"},
	}
	for i := range len(sealed) * 8 {
		flipped := bytes.Clone(sealed)
		flipped[i/8] ^= 1 << (i % 8)
		cases = append(cases, tamper{name: "bit " + strconv.Itoa(i) + " flipped", sealed: flipped, kind: "ref", obj: "refs/main"})
	}
	for n := range len(sealed) {
		cases = append(cases, tamper{name: "truncated to " + strconv.Itoa(n), sealed: sealed[:n], kind: "ref", obj: "refs/main", wantShort: n < Overhead})
	}
	for _, tc := range cases {
		key := tc.key
		if key == nil {
			key = k
		}
		got, err := key.Open(nil, tc.sealed, tc.kind, tc.obj)
		if err == nil {
			t.Errorf("%s: opened to %q", tc.name, got)
			continue
		}
		if got != nil {
			t.Errorf("%s: returned plaintext with the error", tc.name)
		}
		var ae *AuthError
		if !errors.As(err, &ae) || !errors.Is(err, ErrAuth) || !errors.Is(err, format.ErrCorrupt) {
			t.Errorf("%s: error %v is not an *AuthError matching ErrAuth and format.ErrCorrupt", tc.name, err)
			continue
		}
		if ae.Kind != tc.kind || ae.Name != tc.obj || ae.Short != tc.wantShort {
			t.Errorf("%s: error names %q %q short=%v", tc.name, ae.Kind, ae.Name, ae.Short)
		}
		if !strings.Contains(err.Error(), tc.obj) {
			t.Errorf("%s: message %q does not name the object", tc.name, err)
		}
	}
}

// TestAuthErrorNamesNothingSecret: the message shows the object's kind and
// name and nothing of its content or the key.
func TestAuthErrorNamesNothingSecret(t *testing.T) {
	k := fixedKey(t)
	plaintext := []byte("SECRET-VALUE-from-secrets-manager")
	sealed := k.Seal(nil, plaintext, "manifest", "snapshots/abc")
	sealed[len(sealed)-1] ^= 1
	_, err := k.Open(nil, sealed, "manifest", "snapshots/abc")
	if err == nil {
		t.Fatal("a damaged object opened")
	}
	msg := err.Error()
	for _, secret := range []string{
		string(plaintext), "SECRET",
		hex.EncodeToString(k.master[:]), hex.EncodeToString(k.master[:4]),
		hex.EncodeToString(k.idKey[:4]),
		hex.EncodeToString(sealed[:NonceSize]),
	} {
		if strings.Contains(msg, secret) {
			t.Errorf("message %q contains %q", msg, secret)
		}
	}
	t.Log(msg)
}
