package statcache

import (
	"fmt"
	"slices"
	"testing"

	"github.com/statepack/statepack/archive/format"
)

// TestRecordPartial: a partial restore leaves the cache no snapshot (so
// nothing trusts it for one), records the snapshot before as the base,
// replaces an earlier restore through the same filter, forgets the
// oldest beyond MaxPartialRestores (and the base with them), and round
// trips through the encoding; a cache without one is still version 2.
func TestRecordPartial(t *testing.T) {
	id := func(s string) format.ID { return format.Hash([]byte(s)) }
	saved := &StatCache{Snapshot: id("base"), State: "main", Files: map[string]*StatEntry{}}
	if magic := string(EncodeStatCache(saved)[:4]); magic != statCacheMagic {
		t.Errorf("a cache without a partial restore is written as %s", magic)
	}
	sqs := PartialRestore{Snapshot: id("old"), State: "main", Include: []string{"api_states/sqs"}}
	c := &StatCache{Snapshot: id("stale"), Files: map[string]*StatEntry{}}
	c.RecordPartial(saved, sqs)
	if !c.Snapshot.IsZero() || c.State != "" || c.Base != id("base") || c.BaseState != "main" || len(c.Partial) != 1 {
		t.Fatalf("after one partial restore: %+v", c)
	}
	ddb := PartialRestore{Snapshot: id("other"), State: "pr-1", Include: []string{"dynamodb/**"}, Exclude: []string{"dynamodb/tmp"}}
	next := &StatCache{Files: map[string]*StatEntry{}}
	next.RecordPartial(c, ddb)
	again := &StatCache{Files: map[string]*StatEntry{}}
	sqs2 := sqs
	sqs2.Snapshot = id("newer")
	again.RecordPartial(next, sqs2)
	if again.Base != id("base") || len(again.Partial) != 2 || again.Partial[0].State != "pr-1" || again.Partial[1].Snapshot != id("newer") {
		t.Fatalf("the same filter again: %+v", again.Partial)
	}
	got, err := DecodeStatCache(EncodeStatCache(again))
	if err != nil || got.Base != again.Base || got.BaseState != "main" || len(got.Partial) != 2 || !got.Snapshot.IsZero() ||
		!slices.Equal(got.Partial[0].Exclude, []string{"dynamodb/tmp"}) || !slices.Equal(got.Partial[1].Include, []string{"api_states/sqs"}) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	many := again
	for i := 0; i < MaxPartialRestores; i++ {
		n := &StatCache{Files: map[string]*StatEntry{}}
		n.RecordPartial(many, PartialRestore{Snapshot: id("x"), Include: []string{fmt.Sprintf("p%d", i)}})
		many = n
	}
	if len(many.Partial) != MaxPartialRestores || !many.Base.IsZero() || many.Partial[0].Include[0] != "p0" {
		t.Errorf("beyond %d partial restores: base %v, %d kept, first %v", MaxPartialRestores, many.Base, len(many.Partial), many.Partial[0])
	}
	fresh := &StatCache{Files: map[string]*StatEntry{}}
	fresh.RecordPartial(nil, sqs)
	if !fresh.Base.IsZero() || len(fresh.Partial) != 1 {
		t.Errorf("into a DATA_DIR with no cache: %+v", fresh)
	}

	// A record beside a snapshot would let a reader believe both: refused.
	bad := &StatCache{Snapshot: id("s"), Partial: []PartialRestore{sqs}, Files: map[string]*StatEntry{}}
	if _, err := DecodeStatCache(EncodeStatCache(bad)); err == nil {
		t.Error("a cache with a snapshot and a partial restore decodes")
	}
	enc := EncodeStatCache(again)
	for n := len(enc) - 1; n > len(enc)-40; n-- {
		if _, err := DecodeStatCache(enc[:n]); err == nil {
			t.Fatalf("cut to %d of %d bytes, it still decodes", n, len(enc))
		}
	}
}
