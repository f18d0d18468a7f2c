package remote

import (
	"context"
	"fmt"

	"github.com/statepack/statepack/archive"
)

// Range reads are merged when the gap between two wanted blocks is below
// coalesceGap, and a pack is fetched whole when at least wholePackShare of
// it is wanted: fewer, larger requests cost less than moving a few unused
// bytes.
const (
	coalesceGap    = 256 << 10
	wholePackShare = 0.5
	maxRangeBytes  = 24 << 20
)

// readPackBlocks reads the given blocks (sorted by offset) of one pack of
// src, verifies each against its id, and hands each one's stored bytes to
// fn. Nothing unverified is passed on (invariant 2).
func readPackBlocks(ctx context.Context, src *archive.Repository, pack archive.ID, blocks []blockCopy, fn func(blockCopy, []byte) error) error {
	var raw []byte
	for _, rg := range coalesce(blocks) {
		data, err := src.ReadRange(ctx, archive.PackName(pack), rg.off, rg.end-rg.off)
		if err != nil {
			return err
		}
		for _, c := range rg.blocks {
			stored := data[int64(c.loc.Offset)-rg.off : int64(c.loc.Offset)-rg.off+int64(c.loc.Stored)]
			if raw, err = archive.DecodeBlock(c.id, c.loc, stored, raw); err != nil {
				return fmt.Errorf("%s on %s: %w", "pack "+pack.String(), src.Location(), err)
			}
			if err := fn(c, stored); err != nil {
				return err
			}
		}
	}
	return nil
}

type span struct {
	off, end int64
	blocks   []blockCopy
}

// coalesce groups blocks into spans read with one request each.
func coalesce(blocks []blockCopy) []span {
	if len(blocks) == 0 {
		return nil
	}
	first, last := blocks[0].loc, blocks[len(blocks)-1].loc
	whole := int64(last.Offset) + int64(last.Stored) - int64(first.Offset)
	var wanted int64
	for _, b := range blocks {
		wanted += int64(b.loc.Stored)
	}
	if whole <= maxRangeBytes && float64(wanted) >= wholePackShare*float64(whole) {
		return []span{{off: int64(first.Offset), end: int64(first.Offset) + whole, blocks: blocks}}
	}
	var out []span
	for _, b := range blocks {
		off, end := int64(b.loc.Offset), int64(b.loc.Offset)+int64(b.loc.Stored)
		if n := len(out); n > 0 && off-out[n-1].end <= coalesceGap && end-out[n-1].off <= maxRangeBytes && off >= out[n-1].end {
			out[n-1].end = end
			out[n-1].blocks = append(out[n-1].blocks, b)
			continue
		}
		out = append(out, span{off: off, end: end, blocks: []blockCopy{b}})
	}
	return out
}
