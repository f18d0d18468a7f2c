package datagen

import (
	"cmp"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"time"
)

// A plan is the whole tree to generate, decided before any byte is written:
// every name, size, mode, time and content seed.
type plan struct {
	files []fileSpec
	links []linkSpec
	dirs  []dirSpec // every directory below the root, parents first
}

// fileSpec is one regular file of the plan.
type fileSpec struct {
	path  string // slash-separated, relative to the root
	size  int64
	mode  fs.FileMode
	mtime time.Time
	seed  uint64
	src   func(*rng) source // produces the content; nil for empty files
}

// linkSpec is one symbolic link of the plan.
type linkSpec struct {
	path, target string
	mtime        time.Time
}

// dirSpec is one directory of the plan.
type dirSpec struct {
	path  string
	mtime time.Time
}

// Shares of Options.Size, in percent; S3 objects take what remains (30%).
const (
	dynamoShare  = 40
	stateShare   = 15
	kinesisShare = 15
)

// contentStart is the clock of generated records: a week before baseTime.
var contentStart = baseTime.Add(-7 * 24 * time.Hour).UnixMilli()

// planner builds a plan from one random stream, in a fixed order.
type planner struct {
	g     *rng
	p     plan
	bytes int64
	empty []string // empty directories
}

// newPlan decides the tree of size bytes that seed selects.
func newPlan(size int64, seed int64) *plan {
	pl := &planner{g: newRNG(uint64(seed), streamPlan)}
	pl.addDynamo(size * dynamoShare / 100)
	pl.addStates(size * stateShare / 100)
	pl.addKinesis(size * kinesisShare / 100)
	pl.addS3(size - pl.bytes)
	return pl.finish()
}

// add plans a file with a random modification time on baseTime's day.
func (pl *planner) add(name string, size int64, mode fs.FileMode, src func(*rng) source) {
	pl.p.files = append(pl.p.files, fileSpec{
		path:  name,
		size:  size,
		mode:  mode,
		mtime: baseTime.Add(time.Duration(pl.g.Int64N(int64(24 * time.Hour)))),
		seed:  pl.g.Uint64(),
		src:   src,
	})
	pl.bytes += size
}

// addDynamo plans one database per region, most of the pages in the first.
func (pl *planner) addDynamo(budget int64) {
	pages := budget / PageSize
	first := max(pages*int64(pl.g.between(60, 80))/100, 2)
	for i, n := range []int64{first, max(pages-first, 2)} {
		name := fmt.Sprintf("dynamodb/%s_%s.db", account, regions[i])
		pl.add(name, n*PageSize, 0o644, func(g *rng) source {
			return &dynamoSource{g: g, pages: n, ms: contentStart}
		})
	}
}

// addStates plans a store for every service and region: a few large ones
// and many small ones.
func (pl *planner) addStates(budget int64) {
	sizes := split(pl.g, budget, len(services)*len(regions), 9, 512)
	for i, size := range sizes {
		svc, region := services[i/len(regions)], regions[i%len(regions)]
		mode := fs.FileMode(0o644)
		if svc.private {
			mode = 0o600
		}
		name := fmt.Sprintf("api_states/%s/%s/%s/store.state", svc.name, account, region)
		pl.add(name, size, mode, func(g *rng) source {
			return &stateSource{g: g, svc: svc, region: region, ms: contentStart}
		})
	}
}

var streams = []string{"orders-stream", "clickstream", "audit-log", "payment-events"}

// addKinesis plans one records file per stream.
func (pl *planner) addKinesis(budget int64) {
	for i, size := range split(pl.g, budget, len(streams), 3, 256) {
		shards := pl.g.between(1, 4)
		pl.add("kinesis/"+streams[i]+".json", size, 0o644, func(g *rng) source {
			return &kinesisSource{g: g, ms: contentStart, shards: shards}
		})
	}
}

// finish sorts the files, derives the directories and gives them times.
func (pl *planner) finish() *plan {
	p := &pl.p
	slices.SortFunc(p.files, func(a, b fileSpec) int { return cmp.Compare(a.path, b.path) })
	seen := map[string]bool{}
	var dirs []string
	addParents := func(name string) {
		for d := path.Dir(name); d != "." && !seen[d]; d = path.Dir(d) {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	for _, f := range p.files {
		addParents(f.path)
	}
	for _, l := range p.links {
		addParents(l.path)
	}
	for _, d := range pl.empty {
		addParents(d + "/.")
	}
	slices.Sort(dirs)
	for _, d := range dirs {
		at := baseTime.Add(24*time.Hour + time.Duration(pl.g.Int64N(int64(time.Hour))))
		p.dirs = append(p.dirs, dirSpec{d, at})
	}
	return p
}

// stats counts what the plan creates.
func (p *plan) stats() Stats {
	s := Stats{Files: len(p.files), Dirs: len(p.dirs), Symlinks: len(p.links)}
	for _, f := range p.files {
		s.Bytes += f.size
	}
	return s
}

// split divides total into n sizes of at least least bytes, with random
// weights spanning a factor of 2^(spread+1): a few large sizes and many
// small ones. The sizes sum to total, or to n*least when total is smaller.
func split(g *rng, total int64, n, spread int, least int64) []int64 {
	weights := make([]int64, n)
	var sum int64
	for i := range weights {
		weights[i] = (256 + g.Int64N(256)) << g.IntN(spread+1)
		sum += weights[i]
	}
	free := max(total-int64(n)*least, 0)
	sizes := make([]int64, n)
	var used int64
	largest := 0
	for i, w := range weights {
		sizes[i] = least + free*w/sum
		used += sizes[i]
		if w > weights[largest] {
			largest = i
		}
	}
	if used < total {
		sizes[largest] += total - used
	}
	return sizes
}
