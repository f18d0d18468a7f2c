package archive

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/remote/backend"
)

func loadConfig(ctx context.Context, be backend.Backend) (format.Config, error) {
	rc, err := be.Get(ctx, "config")
	if errors.Is(err, backend.ErrNotFound) {
		return format.Config{}, fmt.Errorf("%s: %w", be.Location(), format.ErrNotRepository)
	}
	if err != nil {
		return format.Config{}, fmt.Errorf("read config of %s: %w", be.Location(), err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxConfigSize+1))
	if err != nil {
		return format.Config{}, fmt.Errorf("read config of %s: %w", be.Location(), err)
	}
	// Neither message quotes the content: the decoder's errors can (an
	// object's bytes never appear in an error).
	if len(data) > maxConfigSize {
		return format.Config{}, fmt.Errorf("%s: config of more than %d KiB is not a statepack config: %w", be.Location(), maxConfigSize>>10, format.ErrNotRepository)
	}
	c, err := format.DecodeConfig(data)
	if err != nil {
		return format.Config{}, fmt.Errorf("%s: %w", be.Location(), err)
	}
	return c, nil
}

func writeConfig(ctx context.Context, be backend.Backend, c format.Config) error {
	data, err := format.EncodeConfig(c)
	if err != nil {
		return err
	}
	if _, err := be.PutIf(ctx, "config", data, ""); err != nil {
		if errors.Is(err, backend.ErrConflict) {
			return fmt.Errorf("%s already holds a repository: %w", be.Location(), backend.ErrConflict)
		}
		return fmt.Errorf("write config to %s: %w", be.Location(), err)
	}
	return nil
}

const maxConfigSize = 64 << 10
