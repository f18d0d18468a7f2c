package datagen

import (
	"io"
	"path/filepath"
	"testing"
)

func BenchmarkGenerate(b *testing.B) {
	const size = 16 << 20
	b.SetBytes(size)
	for i := 0; b.Loop(); i++ {
		dir := filepath.Join(b.TempDir(), "data")
		if _, err := Generate(dir, Options{Seed: int64(i), Size: size}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSources measures content generation alone, without the file
// system.
func BenchmarkSources(b *testing.B) {
	sources := []struct {
		name string
		src  func(*rng) source
	}{
		{"store", func(g *rng) source { return &stateSource{g: g, svc: services[0], region: regions[0]} }},
		{"dynamodb", func(g *rng) source { return &dynamoSource{g: g, pages: 2048} }},
		{"kinesis", func(g *rng) source { return &kinesisSource{g: g, shards: 2} }},
		{"log", func(g *rng) source { return &logSource{g: g, app: apps[0]} }},
		{"csv", func(g *rng) source { return &csvSource{g: g} }},
		{"events", func(g *rng) source { return &eventSource{g: g} }},
		{"binary", binaryFile("PK\x03\x04")},
	}
	for _, s := range sources {
		b.Run(s.name, func(b *testing.B) {
			const size = 8 << 20
			b.SetBytes(size)
			buf := make([]byte, 0, pieceSize+64<<10)
			for b.Loop() {
				var err error
				if buf, err = writeContent(io.Discard, s.src(newRNG(1, 2)), size, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
