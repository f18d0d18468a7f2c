package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/dustin/go-humanize"
	"github.com/urfave/cli/v2"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/chunker"
	"github.com/statepack/statepack/internal/output"
	"github.com/statepack/statepack/remote"
	"github.com/statepack/statepack/remote/backend"
	"github.com/statepack/statepack/remote/dirbackend"
)

// initOutput is `init --json`.
//
//	location        where the repository is: the store's path, or the remote
//	remote          true when it is the remote
//	created         false when a repository was already there
//	repository_id   the repository's random id
//	format_version  the repository format
//	chunk_min, chunk_avg, chunk_max  chunker parameters, in bytes
//	pack_size       target size of a pack, in bytes
type initOutput struct {
	Location      string `json:"location"`
	Remote        bool   `json:"remote"`
	Created       bool   `json:"created"`
	RepositoryID  string `json:"repository_id"`
	FormatVersion int    `json:"format_version"`
	ChunkMin      int    `json:"chunk_min"`
	ChunkAvg      int    `json:"chunk_avg"`
	ChunkMax      int    `json:"chunk_max"`
	PackSize      int    `json:"pack_size"`
}

func (s *session) initCommand() *cli.Command {
	def := chunker.DefaultParams()
	return &cli.Command{
		Name:      "init",
		Usage:     "create the local store (or, with --remote, the remote repository) with chosen parameters",
		ArgsUsage: " ",
		Description: "The local store is created on first use with default parameters; init does it\n" +
			"explicitly, with chunker and pack parameters of your choice. With --remote it creates\n" +
			"the bucket (or directory) and the repository there. Running it again is harmless.\n\n" +
			"Example:\n\n   statepack init --remote=s3://team-states/localstack\n   statepack init --chunk-avg 128KiB",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "chunk-min", Value: humanize.IBytes(uint64(def.Min)), Usage: "smallest block `SIZE`"},
			&cli.StringFlag{Name: "chunk-avg", Value: humanize.IBytes(uint64(def.Avg)), Usage: "average block `SIZE` (a power of two)"},
			&cli.StringFlag{Name: "chunk-max", Value: humanize.IBytes(uint64(def.Max)), Usage: "largest block `SIZE`"},
			&cli.StringFlag{Name: "pack-size", Value: humanize.IBytes(format.DefaultPackSize), Usage: "target pack `SIZE`, 1 MiB to 64 MiB"},
			onRemoteFlag("create"),
		},
		Action: s.action(0, 0, s.runInit),
	}
}

func (s *session) runInit(c *cli.Context) error {
	cfg, explicit, err := configFromFlags(c)
	if err != nil {
		return err
	}
	var be backend.Backend
	if c.Bool("remote") {
		if _, err := s.remoteURL(); err != nil {
			return err
		}
		s.onRemote = true
		be, err = remote.Open(c.Context, s.set.Remote, remote.S3ConfigFromEnv(), true)
	} else {
		be, err = dirbackend.New(s.set.Store, true)
	}
	if err != nil {
		return err
	}
	r, created, err := initRepository(c.Context, be, cfg)
	if err != nil {
		return err
	}
	have := r.Config()
	if !created && explicit && (have.Chunker != cfg.Chunker || have.PackSize != cfg.PackSize) {
		return withHint(fmt.Errorf("%s already holds a statepack repository with other parameters (%s), and they cannot change",
			r.Location(), configSummary(have)), s.otherParamsHint())
	}
	out := initOutput{Location: r.Location(), Remote: c.Bool("remote"), Created: created, RepositoryID: have.ID,
		FormatVersion: have.Version, ChunkMin: have.Chunker.Min, ChunkAvg: have.Chunker.Avg, ChunkMax: have.Chunker.Max, PackSize: have.PackSize}
	return s.emit(out, func(w io.Writer) {
		switch {
		case created:
			fmt.Fprintf(w, "created a statepack repository in %s (%s)\n", out.Location, configSummary(have))
		case out.Remote:
			fmt.Fprintf(w, "%s already holds a statepack repository (%s); nothing to do: `statepack push STATE` sends a state there\n",
				out.Location, configSummary(have))
		default:
			fmt.Fprintf(w, "%s already holds a statepack repository (%s); nothing to do: `statepack save STATE` saves DATA_DIR into it\n",
				out.Location, configSummary(have))
		}
	})
}

// configSummary is a repository's parameters in human units:
// "format 1; blocks 16 KiB/64 KiB/256 KiB; packs 16 MiB".
func configSummary(cfg format.Config) string {
	return fmt.Sprintf("format %d; blocks %s/%s/%s; packs %s", cfg.Version, output.Bytes(int64(cfg.Chunker.Min)),
		output.Bytes(int64(cfg.Chunker.Avg)), output.Bytes(int64(cfg.Chunker.Max)), output.Bytes(int64(cfg.PackSize)))
}

// otherParamsHint is the next step when init is given parameters that an
// existing repository does not have.
func (s *session) otherParamsHint() string {
	if s.onRemote {
		return "leave out the parameters to keep using it, or give init --remote an empty location for a repository with new ones"
	}
	return "leave out the parameters to keep using it, or point --store (STATEPACK_STORE) at an empty directory for a store with new ones"
}

// configFromFlags builds the config init writes; explicit reports whether
// any parameter was given.
func configFromFlags(c *cli.Context) (format.Config, bool, error) {
	var sizes [4]int
	explicit := false
	for i, name := range []string{"chunk-min", "chunk-avg", "chunk-max", "pack-size"} {
		n, err := humanize.ParseBytes(c.String(name))
		if err != nil || n > 1<<40 {
			return format.Config{}, false, usagef("--%s %q: want a size such as 64KiB", name, c.String(name))
		}
		sizes[i] = int(n)
		explicit = explicit || c.IsSet(name)
	}
	if sizes[3] < 1<<20 || sizes[3] > format.MaxPackTarget {
		return format.Config{}, false, usagef("--pack-size %s: want 1 MiB to %s (packs are built in memory)",
			c.String("pack-size"), humanize.IBytes(format.MaxPackTarget))
	}
	cfg, err := format.NewConfig(chunker.Params{Min: sizes[0], Avg: sizes[1], Max: sizes[2]}, sizes[3])
	if err != nil {
		return cfg, false, &usageError{err}
	}
	return cfg, explicit, nil
}

// initRepository opens the repository on be, or creates it with cfg when
// be holds nothing yet. created reports which.
func initRepository(ctx context.Context, be backend.Backend, cfg format.Config) (*archive.Repository, bool, error) {
	r, created, err := archive.OpenOrCreate(ctx, be, cfg)
	if errors.Is(err, format.ErrNotRepository) {
		return nil, false, withHint(fmt.Errorf("%s is not empty and holds no statepack repository (%w)", be.Location(), format.ErrNotRepository),
			"choose an empty location")
	}
	return r, created, err
}
