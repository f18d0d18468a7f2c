package attack

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/internal/miniotest"
	"github.com/statepack/statepack/internal/treetest"
	"github.com/statepack/statepack/remote"
	"github.com/statepack/statepack/remote/backend"
	"github.com/statepack/statepack/remote/dirbackend"
	"github.com/statepack/statepack/remote/s3"
)

// Part 3 of issue 4: a remote is written by others (DESIGN.md invariant
// 5). Each test below writes crafted objects straight into a directory
// remote and into a MinIO bucket, with object names that match their
// content wherever the attack needs the id check to pass, next to a
// legitimate state pushed by the real binary. A victim machine then runs
// `statepack pull evil --restore`. Its DATA_DIR holds a symlink "escape"
// to a directory outside it; a sentinel directory lies beside it. Every
// refused attack must exit non-zero with one line naming the object,
// leave DATA_DIR, the sentinel and the symlink's target exactly as they
// were, create no local state, and keep the process's peak RSS under
// maxRSS.

// maxRSS bounds the peak resident memory of a pull of a crafted remote.
const maxRSS = 100 << 20

// hostile is one crafted remote and the victim that pulls from it.
type hostile struct {
	t        *testing.T
	kind     string // "dir" or "s3"
	url      string // the remote, as STATEPACK_REMOTE
	be       backend.Backend
	secret   string
	base     *format.Manifest
	baseID   format.ID
	payload  []format.BlockRef // blocks of the base state's file "payload"
	victim   *env
	outside  string // a directory outside DATA_DIR, target of DATA_DIR/escape
	sentinel string // a directory beside DATA_DIR
	before   map[string]treetest.Tree
}

// forEachRemote runs an attack against a directory remote and a MinIO
// bucket, both in parallel with the other attacks.
func forEachRemote(t *testing.T, attack func(*testing.T, *hostile)) {
	t.Parallel()
	for _, kind := range []string{"dir", "s3"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			attack(t, newHostile(t, kind))
		})
	}
}

func newHostile(t *testing.T, kind string) *hostile {
	t.Helper()
	ctx := context.Background()
	h := &hostile{t: t, kind: kind}
	src, victim := newEnv(t), newEnv(t)
	g := rng(7, 0)
	treetest.Write(t, src.data, map[string]treetest.Spec{
		"payload":        {Content: string(randomBytes(g, 100<<10))},
		"config/app.ini": {Content: "[app]\nname=base\n"},
	})
	switch kind {
	case "dir":
		h.url = filepath.Join(src.root, "remote")
		if err := os.MkdirAll(h.url, 0o755); err != nil {
			t.Fatal(err)
		}
		be, err := dirbackend.New(h.url, false)
		if err != nil {
			t.Fatal(err)
		}
		h.be = be
	case "s3":
		srv := miniotest.Get(t)
		h.url = "s3://" + newBucket(t, srv) + "/team/" + strings.ReplaceAll(t.Name(), "/", "-")
		src.useS3(srv, srv.Endpoint)
		victim.useS3(srv, srv.Endpoint)
		h.secret = srv.SecretKey
		u, err := remote.ParseURL(h.url)
		if err != nil {
			t.Fatal(err)
		}
		cfg := s3.Config{Endpoint: srv.Endpoint, AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey, Region: s3Region(srv)}
		if h.be, err = s3.Open(ctx, u.Bucket, u.Prefix, cfg); err != nil {
			t.Fatal(err)
		}
	}
	src.vars["STATEPACK_REMOTE"], victim.vars["STATEPACK_REMOTE"] = h.url, h.url
	src.must("save", "base")
	id, err := format.ParseID(src.jsonField("snapshot", "push", "base"))
	if err != nil {
		t.Fatal(err)
	}
	h.baseID = id
	if h.base, err = format.DecodeManifest(h.get("snapshots/" + id.String())); err != nil {
		t.Fatal(err)
	}
	for _, e := range h.base.Entries {
		if e.Path == "payload" {
			h.payload = e.Blocks
		}
	}

	h.victim = victim
	h.outside = filepath.Join(victim.root, "outside")
	h.sentinel = filepath.Join(victim.root, "sentinel")
	treetest.Write(t, h.outside, map[string]treetest.Spec{"target.txt": {Content: "outside DATA_DIR"}})
	treetest.Write(t, h.sentinel, map[string]treetest.Spec{"keep": {Content: "sentinel"}})
	treetest.Write(t, victim.data, map[string]treetest.Spec{
		"notes.txt":    {Content: "the victim's own data"},
		"db/table.db":  {Content: strings.Repeat("row\n", 1000)},
		"escape":       {Link: h.outside},
		"config/a.ini": {Content: "a=1\n"},
	})
	victim.must("save", "mine")
	h.before = h.fingerprint()
	return h
}

// fingerprint is everything the victim's pull must not change: DATA_DIR,
// the directories beside it, and the names in its parent.
func (h *hostile) fingerprint() map[string]treetest.Tree {
	out := map[string]treetest.Tree{}
	for name, dir := range map[string]string{"data": h.victim.data, "outside": h.outside, "sentinel": h.sentinel} {
		out[name] = treetest.MustRead(h.t, dir)
	}
	names := treetest.Tree{}
	entries, err := os.ReadDir(h.victim.root)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, e := range entries {
		names[e.Name()] = treetest.Node{Type: e.Type().String()}
	}
	out["root"] = names
	return out
}

func (h *hostile) get(name string) []byte {
	h.t.Helper()
	rc, err := h.be.Get(context.Background(), name)
	if err != nil {
		h.t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		h.t.Fatal(err)
	}
	return data
}

// put writes an object as an attacker with write access would.
func (h *hostile) put(name string, data []byte) {
	h.t.Helper()
	if err := h.be.Put(context.Background(), name, bytes.NewReader(data), int64(len(data))); err != nil {
		h.t.Fatalf("plant %s: %v", name, err)
	}
}

func (h *hostile) list(prefix string) []string {
	h.t.Helper()
	var names []string
	err := h.be.List(context.Background(), prefix, func(oi backend.ObjectInfo) error {
		names = append(names, oi.Name)
		return nil
	})
	if err != nil || len(names) == 0 {
		h.t.Fatalf("list %s: %v %v", prefix, names, err)
	}
	return names
}

// publish stores manifest bytes under their own id and points state at it.
func (h *hostile) publish(state string, data []byte) format.ID {
	h.t.Helper()
	id := format.Hash(data)
	h.put("snapshots/"+id.String(), data)
	h.put("refs/"+state, []byte(id.String()+"\n"))
	return id
}

// pack stores a pack of the given stored blocks (raw length, encoding)
// and returns its id, bytes and entries.
func (h *hostile) pack(blocks ...packBlock) (format.ID, []byte, []format.PackEntry) {
	h.t.Helper()
	b := format.NewPackBuilder(1 << 20)
	for _, bl := range blocks {
		b.Add(bl.id, bl.stored, bl.raw, bl.enc)
	}
	id, data, entries := b.Finish()
	data = bytes.Clone(data)
	entries = append([]format.PackEntry(nil), entries...)
	h.put(format.PackName(id), data)
	return id, data, entries
}

type packBlock struct {
	id     format.ID
	stored []byte
	raw    int
	enc    uint8
}

// index stores an index object under its own id.
func (h *hostile) index(packs ...format.IndexPack) format.ID {
	h.t.Helper()
	data := format.EncodeIndex(packs)
	id := format.Hash(data)
	h.put("index/"+id.String(), data)
	return id
}

var crafted = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func manifest(entries ...format.Entry) *format.Manifest {
	return &format.Manifest{Version: format.FormatVersion, State: "evil", Message: "crafted by an attacker",
		Created: crafted, Host: "attacker", User: "mallory", Tool: "by hand", Entries: entries}
}

func fileEntry(p string, blocks []format.BlockRef) format.Entry {
	var size int64
	for _, b := range blocks {
		size += int64(b.Size)
	}
	return format.Entry{Path: p, Type: format.TypeFile, Mode: 0o644, MTime: crafted.UnixNano(), Size: size, Blocks: blocks}
}

func dirEntry(p string) format.Entry {
	return format.Entry{Path: p, Type: format.TypeDir, Mode: 0o755, MTime: crafted.UnixNano()}
}

func linkEntry(p, target string) format.Entry {
	return format.Entry{Path: p, Type: format.TypeSymlink, Mode: 0o777, MTime: crafted.UnixNano(), Target: target}
}

// pull runs `statepack pull state --restore` on the victim.
func (h *hostile) pull(state string) result {
	return h.victim.run("pull", state, "--restore")
}

// refused runs the pull and checks that it was refused cleanly: a
// non-zero exit, one line naming each of want, nothing changed on the
// victim's disk, no local state created, bounded memory.
func (h *hostile) refused(state string, want ...string) result {
	h.t.Helper()
	r := h.pull(state)
	if r.code <= 0 {
		h.t.Fatalf("crafted remote was not refused:\n%s", r)
	}
	if msg := clearMessage(r, h.secret, want...); msg != "" {
		h.t.Errorf("%s\n%s", msg, r)
	}
	if len(r.stderr) > 2000 {
		h.t.Errorf("a %d-byte message: the remote controls its length:\n%.300s...", len(r.stderr), r.stderr)
	}
	h.unchanged()
	if _, err := os.Stat(filepath.Join(h.victim.store, "refs", state)); err == nil {
		h.t.Errorf("a refused pull created the local state %q", state)
	}
	if r.maxRSS > maxRSS {
		h.t.Errorf("peak RSS %d MiB, want under %d MiB", r.maxRSS>>20, maxRSS>>20)
	}
	h.t.Logf("refused in %v, peak RSS %d MiB: %s", r.took.Round(time.Millisecond), r.maxRSS>>20, strings.TrimSpace(r.stderr))
	return r
}

// unchanged checks that nothing the victim had moved.
func (h *hostile) unchanged() {
	h.t.Helper()
	after := h.fingerprint()
	for name, want := range h.before {
		if d := sameTree(want, after[name]); d != "" {
			h.t.Errorf("%s changed:\n%s", name, d)
		}
	}
}

// outsideUntouched checks only what lies outside DATA_DIR, for attacks
// whose pull is legal and changes DATA_DIR.
func (h *hostile) outsideUntouched() {
	h.t.Helper()
	after := h.fingerprint()
	for _, name := range []string{"outside", "sentinel", "root"} {
		if d := sameTree(h.before[name], after[name]); d != "" {
			h.t.Errorf("%s changed:\n%s", name, d)
		}
	}
}

// TestHostileDotDotPath stops a manifest path that climbs out of
// DATA_DIR with "..", directly or after a harmless first segment.
func TestHostileDotDotPath(t *testing.T) {
	forEachRemote(t, func(t *testing.T, h *hostile) {
		for _, p := range []string{"../sentinel/pwned", "a/../../sentinel/pwned", ".."} {
			id := h.publish("evil", format.EncodeManifest(manifest(fileEntry(p, h.payload))))
			h.refused("evil", "snapshot "+id.Short())
		}
	})
}

// TestHostileAbsolutePath stops a manifest path that names an absolute
// location, and paths that are not in clean form ("a//b", "./a", "a/."),
// which a careless join could resolve elsewhere.
func TestHostileAbsolutePath(t *testing.T) {
	forEachRemote(t, func(t *testing.T, h *hostile) {
		for _, p := range []string{h.outside + "/pwned", "/pwned", "a//b", "./a", "a/.", "a/"} {
			id := h.publish("evil", format.EncodeManifest(manifest(fileEntry(p, h.payload))))
			h.refused("evil", "snapshot "+id.Short())
		}
	})
}

// TestHostilePathUnderSymlink stops writing through a symlink the same
// snapshot creates: "escape" -> a directory outside, then "escape/pwned"
// (desync's planted-symlink attack, inside one manifest).
func TestHostilePathUnderSymlink(t *testing.T) {
	forEachRemote(t, func(t *testing.T, h *hostile) {
		for _, target := range []string{h.outside, "../outside", "."} {
			id := h.publish("evil", format.EncodeManifest(manifest(
				linkEntry("escape", target),
				fileEntry("escape/pwned", h.payload),
			)))
			h.refused("evil", "snapshot "+id.Short(), "escape/pwned")
		}
	})
}

// TestHostileDuplicatePath stops a manifest that names one path twice
// (two files, or a directory and a file), which would let the second
// entry replace what the first one vouched for.
func TestHostileDuplicatePath(t *testing.T) {
	forEachRemote(t, func(t *testing.T, h *hostile) {
		for _, entries := range [][]format.Entry{
			{fileEntry("f", h.payload), fileEntry("f", h.payload[:1])},
			{dirEntry("d"), fileEntry("d", h.payload)},
			{fileEntry("b", h.payload), fileEntry("a", h.payload)}, // out of order
		} {
			id := h.publish("evil", format.EncodeManifest(manifest(entries...)))
			h.refused("evil", "snapshot "+id.Short())
		}
	})
}

// TestHostileFileWhereDirWas stops a manifest that puts a path beneath a
// file ("a" is a file, then "a/b"), or beneath a parent it never lists.
func TestHostileFileWhereDirWas(t *testing.T) {
	forEachRemote(t, func(t *testing.T, h *hostile) {
		for _, entries := range [][]format.Entry{
			{fileEntry("a", h.payload), fileEntry("a/b", h.payload)},
			{fileEntry("db/table.db/x", h.payload)}, // a file of DATA_DIR, parent not in the manifest
		} {
			id := h.publish("evil", format.EncodeManifest(manifest(entries...)))
			h.refused("evil", "snapshot "+id.Short())
		}
	})
}

// TestHostileNULName stops names and symlink targets with a NUL byte,
// which the kernel would cut short at the NUL ("a\x00b" writes "a").
func TestHostileNULName(t *testing.T) {
	forEachRemote(t, func(t *testing.T, h *hostile) {
		for _, e := range []format.Entry{fileEntry("notes.txt\x00evil", h.payload), linkEntry("l", "x\x00/etc")} {
			id := h.publish("evil", format.EncodeManifest(manifest(e)))
			h.refused("evil", "snapshot "+id.Short())
		}
	})
}

// TestHostileInvalidUTF8Name stops names that are not valid UTF-8, which
// could not be shown, compared or saved again faithfully.
func TestHostileInvalidUTF8Name(t *testing.T) {
	forEachRemote(t, func(t *testing.T, h *hostile) {
		id := h.publish("evil", format.EncodeManifest(manifest(fileEntry("bad\xff\xfename", h.payload))))
		h.refused("evil", "snapshot "+id.Short(), "UTF-8")
	})
}

// TestHostileHugeCounts stops a manifest that claims 2^40 entries, or a
// file of 2^40 blocks, before anything is allocated for them: the peak
// RSS of the pull stays under maxRSS.
func TestHostileHugeCounts(t *testing.T) {
	forEachRemote(t, func(t *testing.T, h *hostile) {
		empty := format.EncodeManifest(manifest())
		entries := append(binary.AppendUvarint(bytes.Clone(empty[:len(empty)-1]), 1<<40), make([]byte, 1<<20)...)
		id := h.publish("evil", entries)
		h.refused("evil", "snapshot "+id.Short(), "over limit")

		one := format.EncodeManifest(manifest(fileEntry("f", nil)))
		blocks := append(binary.AppendUvarint(bytes.Clone(one[:len(one)-1]), 1<<40), make([]byte, 1<<20)...)
		id = h.publish("evil", blocks)
		h.refused("evil", "snapshot "+id.Short())
	})
}

// TestHostileHugeFileSize stops a file that claims a size beyond any
// limit, or a size its blocks do not add up to (which would make restore
// write a file of the claimed size).
func TestHostileHugeFileSize(t *testing.T) {
	forEachRemote(t, func(t *testing.T, h *hostile) {
		for _, size := range []int64{1 << 60, 1 << 40} {
			e := fileEntry("big", h.payload)
			e.Size = size
			id := h.publish("evil", format.EncodeManifest(manifest(e)))
			h.refused("evil", "snapshot "+id.Short())
		}
	})
}

// TestHostileIndexOutsidePack stops an index whose entry points past the
// end of its pack, or straddles it: the read is refused (the server or
// the directory backend reports the range), never padded or wrapped.
// An index that claims 2^32 packs is refused before allocation.
func TestHostileIndexOutsidePack(t *testing.T) {
	forEachRemote(t, func(t *testing.T, h *hostile) {
		content := []byte(strings.Repeat("a block only the index attack uses\n", 100))
		block := format.Hash(content)
		packID, data, entries := h.pack(packBlock{block, content, len(content), format.EncodingRaw})
		for _, off := range []uint32{uint32(len(data)) + 4096, uint32(len(data)) - 10} {
			entries[0].Offset = off
			h.index(format.IndexPack{Pack: packID, Entries: entries})
			h.publish("evil", format.EncodeManifest(manifest(fileEntry("x", []format.BlockRef{{ID: block, Size: uint32(len(content))}}))))
			h.refused("evil", packID.String())
			// Leave only the legitimate index for the next case.
			for _, name := range h.list("index/") {
				if data := h.get(name); bytes.Contains(data, packID[:]) {
					if err := h.be.Delete(context.Background(), name); err != nil {
						t.Fatal(err)
					}
				}
			}
		}

		huge := binary.LittleEndian.AppendUint32([]byte("SPI1"), 1<<32-1)
		id := format.Hash(huge)
		h.put("index/"+id.String(), huge)
		h.publish("evil", format.EncodeManifest(manifest(fileEntry("y", h.payload[:1]))))
		// The victim lacks the payload's blocks, so the pull reads every
		// index object of the remote, the crafted one included.
		h.refused("evil", "index "+id.Short())
	})
}

// zstdBomb is a zstd frame without a content size whose RLE blocks
// expand to n × 128 KiB of b: 32 KiB that decompress to 1 GiB for n =
// 8192. windowExp sets the frame's window (2^(10+windowExp) bytes).
func zstdBomb(n int, b byte, windowExp byte) []byte {
	out := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, windowExp << 3}
	for i := 0; i < n; i++ {
		last := 0
		if i == n-1 {
			last = 1
		}
		hdr := (128<<10)<<3 | 1<<1 | last // RLE block of 128 KiB
		out = append(out, byte(hdr), byte(hdr>>8), byte(hdr>>16), b)
	}
	return out
}

// TestHostileZstdBomb stops a block whose zstd frame decompresses far
// past its recorded raw length (32 KiB expanding to 1 GiB, recorded as
// 64 KiB), and one whose frame asks for a 2 GiB window: decompression is
// bounded by the recorded length and the decoder's memory cap, so the
// pull fails naming the pack with its peak RSS under maxRSS.
func TestHostileZstdBomb(t *testing.T) {
	forEachRemote(t, func(t *testing.T, h *hostile) {
		const raw = 64 << 10
		for i, frame := range [][]byte{zstdBomb(8192, 'A', 7), zstdBomb(8, 'B', 21)} {
			content := bytes.Repeat([]byte{"AB"[i]}, raw)
			block := format.Hash(content)
			packID, _, entries := h.pack(packBlock{block, frame, raw, format.EncodingZstd})
			h.index(format.IndexPack{Pack: packID, Entries: entries})
			h.publish("evil", format.EncodeManifest(manifest(fileEntry("bomb", []format.BlockRef{{ID: block, Size: raw}}))))
			h.refused("evil", "pack "+packID.String(), "decompress")
		}
	})
}

// TestHostileSnapshotIDMismatch stops a manifest stored under the id of
// another: its bytes are hashed and compared with its name before they
// are decoded, whatever they say.
func TestHostileSnapshotIDMismatch(t *testing.T) {
	forEachRemote(t, func(t *testing.T, h *hostile) {
		forged := *h.base
		forged.Entries = append([]format.Entry{linkEntry("a-link", h.outside)}, forged.Entries...)
		forged.Message = "forged"
		name := "snapshots/" + h.baseID.String()
		h.put(name, format.EncodeManifest(&forged))
		h.put("refs/evil", []byte(h.baseID.String()+"\n"))
		h.refused("evil", name, "does not match its id")
	})
}

// TestHostileIndexIDMismatch stops an index object whose bytes were
// changed under its name (here: a block moved to another offset), before
// any location it gives is used.
func TestHostileIndexIDMismatch(t *testing.T) {
	forEachRemote(t, func(t *testing.T, h *hostile) {
		name := h.list("index/")[0]
		data := h.get(name)
		data[len(data)-10] ^= 0x40
		h.put(name, data)
		h.put("refs/evil", []byte(h.baseID.String()+"\n"))
		h.refused("evil", name, "does not match its id")
	})
}

// TestHostilePackContentMismatch stops a pack whose block bytes were
// changed under its name: every block is decompressed and hashed before
// it is stored, so the pull fails naming the pack and writes nothing.
func TestHostilePackContentMismatch(t *testing.T) {
	forEachRemote(t, func(t *testing.T, h *hostile) {
		name := h.list("packs/")[0]
		data := h.get(name)
		data[100] ^= 0x01
		h.put(name, data)
		h.put("refs/evil", []byte(h.baseID.String()+"\n"))
		h.refused("evil", filepath.Base(name))
	})
}

// TestHostilePackTrailerMismatch: a pack whose trailer (not its blocks)
// was changed under its name. A pull either reads only the ranges it
// needs, verifies each block and restores exact data, or checks the
// whole pack against its id and refuses it, naming it; `verify --remote
// --read-data` names it either way.
func TestHostilePackTrailerMismatch(t *testing.T) {
	forEachRemote(t, func(t *testing.T, h *hostile) {
		name := h.list("packs/")[0]
		data := h.get(name)
		data[len(data)-9] ^= 0x01 // last trailer entry's encoding byte
		h.put(name, data)
		h.put("refs/evil", []byte(h.baseID.String()+"\n"))
		if r := h.pull("evil"); r.code != 0 {
			h.refused("evil", filepath.Base(name))
		} else {
			h.outsideUntouched()
			got := treetest.MustRead(t, filepath.Join(h.victim.data))
			if n, ok := got["payload"]; !ok || n.Size != 100<<10 {
				t.Errorf("payload not restored: %+v", n)
			}
		}
		v := h.victim.run("verify", "--remote", "--read-data")
		if v.code == 0 || !strings.Contains(v.stdout+v.stderr, filepath.Base(name)[:8]) {
			t.Errorf("verify --remote --read-data does not name the damaged pack %s:\n%s", name, v)
		}
	})
}

// TestHostilePackLyingTrailer stops a pack that is consistent with its
// own id (the attacker hashed it) and with the index, but whose trailer
// claims a block its bytes are not: the block is decoded and checked
// against its id before anything is stored, so the pull fails naming the
// pack, and the local store keeps nothing of it.
func TestHostilePackLyingTrailer(t *testing.T) {
	forEachRemote(t, func(t *testing.T, h *hostile) {
		content := []byte(strings.Repeat("the block the manifest wants\n", 200))
		block := format.Hash(content)
		garbage := bytes.Repeat([]byte("not that block\n"), len(content)/15+1)[:len(content)]
		packID, _, entries := h.pack(packBlock{block, garbage, len(content), format.EncodingRaw})
		h.index(format.IndexPack{Pack: packID, Entries: entries})
		h.publish("evil", format.EncodeManifest(manifest(fileEntry("wanted", []format.BlockRef{{ID: block, Size: uint32(len(content))}}))))
		h.refused("evil", packID.String())
		if v := h.victim.run("verify", "--read-data"); v.code != 0 {
			t.Errorf("the victim's store took in unverified data:\n%s", v)
		}
	})
}

// TestHostileRefGarbage stops refs that are not a snapshot id, that
// point at no snapshot, or at an object that is not a manifest (stored
// under its own hash, so only decoding can refuse it).
func TestHostileRefGarbage(t *testing.T) {
	forEachRemote(t, func(t *testing.T, h *hostile) {
		h.put("refs/evil", []byte("this is not a snapshot id\n"))
		h.refused("evil", "state 'evil'")

		missing := format.Hash([]byte("no such snapshot"))
		h.put("refs/evil", []byte(missing.String()+"\n"))
		h.refused("evil", missing.String())

		h.put("refs/evil", bytes.Repeat([]byte("0123456789abcdef"), 1<<16))
		h.refused("evil", "state 'evil'")

		garbage := randomBytes(rng(9, 9), 4096)
		id := h.publish("evil", garbage)
		h.refused("evil", "snapshot "+id.Short())

		// A ref far larger than any ref: 1 GiB (sparse) in a directory,
		// 5 MiB on S3. It is refused by its size, not read into memory.
		switch h.kind {
		case "dir":
			p := filepath.Join(h.url, "refs", "evil")
			if err := os.Truncate(p, 1<<30); err != nil {
				t.Fatal(err)
			}
		case "s3":
			h.put("refs/evil", make([]byte, 5<<20))
		}
		h.refused("evil", "refs/evil", "too large")
	})
}

// TestHostileConfig stops a remote whose config claims absurd
// parameters (a 1 TiB pack size, a chunker maximum of 4 GiB) before any
// other object is read.
func TestHostileConfig(t *testing.T) {
	forEachRemote(t, func(t *testing.T, h *hostile) {
		for _, cfg := range []string{
			`{"version":1,"id":"x","chunker":{"min":16384,"avg":65536,"max":262144},"pack_size":1099511627776,"zstd_level":1}`,
			`{"version":1,"id":"x","chunker":{"min":16384,"avg":65536,"max":4294967296},"pack_size":16777216,"zstd_level":1}`,
		} {
			h.put("config", []byte(cfg))
			h.refused("base", "config")
		}
	})
}

// TestHostilePlantedSymlinkInDataDir: DATA_DIR already holds a symlink
// "escape" to a directory outside (planted by anyone); a legal snapshot
// has a directory "escape" with a file in it. Restore replaces the
// symlink with a real directory and writes inside DATA_DIR only.
func TestHostilePlantedSymlinkInDataDir(t *testing.T) {
	forEachRemote(t, func(t *testing.T, h *hostile) {
		h.publish("evil", format.EncodeManifest(manifest(
			dirEntry("escape"),
			fileEntry("escape/target.txt", h.payload),
			fileEntry("notes.txt", h.payload),
		)))
		if r := h.pull("evil"); r.code != 0 {
			t.Fatalf("legal snapshot refused:\n%s", r)
		}
		h.outsideUntouched()
		st, err := os.Lstat(filepath.Join(h.victim.data, "escape"))
		if err != nil || !st.IsDir() {
			t.Errorf("DATA_DIR/escape is not a real directory after restore: %v %v", st, err)
		}
		if got, err := os.ReadFile(filepath.Join(h.victim.data, "escape", "target.txt")); err != nil || len(got) != 100<<10 {
			t.Errorf("escape/target.txt: %d bytes, %v", len(got), err)
		}
	})
}

// TestHostileSymlinkThenDirectory: version 1 of a state makes "escape2"
// a symlink to a directory outside DATA_DIR (legal: a symlink is data);
// version 2 makes it a directory with a file. Restoring version 2 over
// version 1 replaces the link and never writes through it.
func TestHostileSymlinkThenDirectory(t *testing.T) {
	forEachRemote(t, func(t *testing.T, h *hostile) {
		v1 := h.publish("evil", format.EncodeManifest(manifest(linkEntry("escape2", h.outside), fileEntry("notes.txt", h.payload))))
		if r := h.pull("evil"); r.code != 0 {
			t.Fatalf("version 1:\n%s", r)
		}
		if target, err := os.Readlink(filepath.Join(h.victim.data, "escape2")); err != nil || target != h.outside {
			t.Fatalf("version 1 restored escape2 as %q, %v", target, err)
		}
		m := manifest(dirEntry("escape2"), fileEntry("escape2/target.txt", h.payload), fileEntry("notes.txt", h.payload))
		m.Parent = v1
		h.publish("evil", format.EncodeManifest(m))
		if r := h.pull("evil"); r.code != 0 {
			t.Fatalf("version 2:\n%s", r)
		}
		h.outsideUntouched()
		if st, err := os.Lstat(filepath.Join(h.victim.data, "escape2")); err != nil || !st.IsDir() {
			t.Errorf("escape2 after version 2: %v %v", st, err)
		}
	})
}

// TestHostileLock stops a planted exclusive lock from flooding the
// message that names it (a 1 MiB command and host), and shows that
// locks follow their rules whoever wrote them: a push is refused while
// the lock is fresh, unlock leaves it (its host is not this one), and
// `unlock --all` removes it.
func TestHostileLock(t *testing.T) {
	forEachRemote(t, func(t *testing.T, h *hostile) {
		lock := fmt.Sprintf(`{"exclusive":true,"host":%q,"pid":1,"command":%q,"time":%q}`,
			strings.Repeat("h", 1<<19), strings.Repeat("c", 1<<20), time.Now().UTC().Format(time.RFC3339Nano))
		h.put("locks/feedfacefeedface", []byte(lock))
		r := h.victim.run("push", "mine")
		if r.code == 0 || !strings.Contains(r.stderr, "is locked by") {
			t.Fatalf("push with a foreign exclusive lock:\n%.2000s", r)
		}
		if len(r.stderr) > 2000 {
			t.Errorf("a %d-byte message: the remote's lock controls its length:\n%.300s...", len(r.stderr), r.stderr)
		}
		if removed, remaining := unlockJSON(t, h.victim, "--remote"); len(removed) != 0 || remaining != 1 {
			t.Errorf("unlock removed a fresh foreign lock: %v, %d remain", removed, remaining)
		}
		h.victim.must("unlock", "--remote", "--all")
		h.victim.must("push", "mine")
		h.outsideUntouched()
	})
}
