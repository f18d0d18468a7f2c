package backendtest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/statepack/statepack/remote/backend"
)

// getVersioned reads name and its tag or fails the test.
func getVersioned(t *testing.T, b backend.Backend, name string) ([]byte, string) {
	t.Helper()
	data, tag, err := b.GetVersioned(ctx(t), name)
	if err != nil {
		t.Fatalf("GetVersioned(%s): %v", name, err)
	}
	if tag == "" {
		t.Fatalf("GetVersioned(%s): empty tag", name)
	}
	return data, tag
}

// assertContent checks name's content through GetVersioned.
func assertContent(t *testing.T, b backend.Backend, name, want string) {
	t.Helper()
	if data, _ := getVersioned(t, b, name); string(data) != want {
		t.Errorf("%s = %q, want %q", name, data, want)
	}
}

// testPutIf walks the compare-and-swap through create, update, and the
// ways a condition fails; a failed PutIf changes nothing.
func testPutIf(t *testing.T, b backend.Backend) {
	const ref = "refs/main"
	tag1, err := b.PutIf(ctx(t), ref, []byte("v1"), "")
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	data, tag := getVersioned(t, b, ref)
	if string(data) != "v1" || tag != tag1 {
		t.Fatalf("GetVersioned = %q, %q; want v1, %q (the tag PutIf returned)", data, tag, tag1)
	}

	if _, err := b.PutIf(ctx(t), ref, []byte("again"), ""); !errors.Is(err, backend.ErrConflict) {
		t.Errorf("second create: %v, want ErrConflict", err)
	}
	assertContent(t, b, ref, "v1")

	tag2, err := b.PutIf(ctx(t), ref, []byte("v2"), tag1)
	if err != nil {
		t.Fatalf("update with the current tag: %v", err)
	}
	if tag2 == tag1 {
		t.Errorf("new content kept the tag %q", tag1)
	}
	if data, tag := getVersioned(t, b, ref); string(data) != "v2" || tag != tag2 {
		t.Errorf("after update GetVersioned = %q, %q; want v2, %q", data, tag, tag2)
	}

	if _, err := b.PutIf(ctx(t), ref, []byte("stale"), tag1); !errors.Is(err, backend.ErrConflict) {
		t.Errorf("update with a stale tag: %v, want ErrConflict", err)
	}
	assertContent(t, b, ref, "v2")

	if _, err := b.PutIf(ctx(t), ref, []byte("bogus"), "not-a-tag"); !errors.Is(err, backend.ErrConflict) {
		t.Errorf("update with a made-up tag: %v, want ErrConflict", err)
	}
	assertContent(t, b, ref, "v2")

	// A tag cannot bring back an object deleted since it was read.
	if err := b.Delete(ctx(t), ref); err != nil {
		t.Fatal(err)
	}
	if _, err := b.PutIf(ctx(t), ref, []byte("revived"), tag2); !errors.Is(err, backend.ErrConflict) {
		t.Errorf("update of a deleted object: %v, want ErrConflict", err)
	}
	if _, err := b.PutIf(ctx(t), "refs/never", []byte("x"), tag2); !errors.Is(err, backend.ErrConflict) {
		t.Errorf("update of a missing object: %v, want ErrConflict", err)
	}
	assertOnly(t, b)
}

// race runs n PutIf calls on name from ifMatch at once and returns the
// index of the single winner, failing the test unless every other call
// reports ErrConflict.
func race(t *testing.T, b backend.Backend, name, ifMatch string, n int) int {
	t.Helper()
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			_, errs[i] = b.PutIf(ctx(t), name, []byte(fmt.Sprintf("writer %d", i)), ifMatch)
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("writers %d and %d both won", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, backend.ErrConflict):
			t.Errorf("writer %d: %v, want nil or ErrConflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no writer won")
	}
	assertContent(t, b, name, fmt.Sprintf("writer %d", winner))
	return winner
}

// testPutIfRace: writers racing from the same tag, exactly one wins.
func testPutIfRace(t *testing.T, b backend.Backend) {
	tag, err := b.PutIf(ctx(t), "refs/ci-main", []byte("base"), "")
	if err != nil {
		t.Fatal(err)
	}
	race(t, b, "refs/ci-main", tag, 8)
}

// testPutIfCreateRace: writers racing to create, exactly one wins.
func testPutIfCreateRace(t *testing.T, b backend.Backend) {
	race(t, b, "locks/exclusive", "", 8)
}
