package datagen

import (
	"fmt"
	"time"
)

// Special entries of the S3 part, which tests of exact restores look for
// (paths relative to the generated directory).
const (
	// EmptyBucket is a bucket without objects: an empty directory.
	EmptyBucket = "s3/empty-bucket"
	// Symlink is a relative symbolic link to a bucket.
	Symlink       = "s3/latest"
	symlinkTarget = "data-lake"
	// Executable is a file with mode 0755.
	Executable = "s3/lambda-artifacts/bootstrap"
	// ReadOnly is a file with mode 0444.
	ReadOnly = "s3/data-lake/reference/currencies.csv"
)

var (
	emptyDirs    = []string{EmptyBucket, "s3/data-lake/staging"}
	emptyObjects = []string{
		"s3/data-lake/raw/orders/_SUCCESS",
		"s3/data-lake/curated/orders/_SUCCESS",
		"s3/app-uploads/users/.keep",
	}
)

// s3Bytes is the average object size the number of objects is derived from.
const s3Bytes = 128 << 10

// addS3 plans the buckets: half the bytes in text objects (logs, CSV, JSON
// events), half in binary ones (images, archives, Parquet), plus the special
// entries.
func (pl *planner) addS3(budget int64) {
	exe := min(budget/40, 2<<20)
	ro := min(budget/100, 64<<10)
	pl.add(Executable, exe, 0o755, binaryFile("\x7fELF\x02\x01\x01\x00"))
	pl.add(ReadOnly, ro, 0o444, func(g *rng) source { return &csvSource{g: g, ms: contentStart} })
	for _, name := range emptyObjects {
		pl.add(name, 0, 0o644, nil)
	}
	pl.empty = append(pl.empty, emptyDirs...)
	pl.p.links = append(pl.p.links, linkSpec{Symlink, symlinkTarget, baseTime.Add(time.Hour)})

	rest := budget - exe - ro
	n := int(min(max(rest/s3Bytes, 8), 20000))
	nText := n * 6 / 10
	for i, size := range split(pl.g, rest/2, nText, 8, 64) {
		name, src := textObject(i)
		pl.add(name, size, 0o644, src)
	}
	for i, size := range split(pl.g, rest-rest/2, n-nText, 8, 64) {
		name, src := binaryObject(i)
		pl.add(name, size, 0o644, src)
	}
}

// textObject names the i-th text object and says how its content is made.
func textObject(i int) (string, func(*rng) source) {
	day := 1 + i/32%28 // about ten objects of a kind a day
	switch i % 3 {
	case 0:
		app := apps[i%len(apps)]
		return fmt.Sprintf("s3/logs-archive/app/2026/01/%02d/%s-%05d.log", day, app, i),
			func(g *rng) source { return &logSource{g: g, ms: contentStart, app: app} }
	case 1:
		return fmt.Sprintf("s3/data-lake/raw/orders/year=2026/month=01/part-%05d.csv", i),
			func(g *rng) source { return &csvSource{g: g, ms: contentStart} }
	default:
		return fmt.Sprintf("s3/data-lake/raw/events/dt=2026-01-%02d/events %05d.json", day, i),
			func(g *rng) source { return &eventSource{g: g, ms: contentStart} }
	}
}

// binaryObject names the i-th binary object, some with spaces and non-ASCII
// characters in their keys, and says how its content is made.
func binaryObject(i int) (string, func(*rng) source) {
	switch i % 4 {
	case 0:
		return fmt.Sprintf("s3/app-uploads/users/u-%04d/photo %05d.jpg", i/16, i),
			binaryFile("\xff\xd8\xff\xe0\x00\x10JFIF\x00")
	case 1:
		return fmt.Sprintf("s3/app-uploads/\u00dcn\u00efc\u00f6d\u00e9/\u65e5\u672c\u8a9e \u30d5\u30a1\u30a4\u30eb %05d.png", i),
			binaryFile("\x89PNG\r\n\x1a\n")
	case 2:
		return fmt.Sprintf("s3/lambda-artifacts/functions/handler-%05d.zip", i), binaryFile("PK\x03\x04")
	default:
		return fmt.Sprintf("s3/data-lake/curated/orders/part-%05d.parquet", i), binaryFile("PAR1")
	}
}

// binaryFile returns a constructor of binarySources with the given magic header.
func binaryFile(magic string) func(*rng) source {
	return func(g *rng) source { return &binarySource{g: g, magic: magic} }
}
