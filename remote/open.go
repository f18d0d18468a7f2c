package remote

import (
	"context"
	"errors"
	"fmt"

	"github.com/statepack/statepack/remote/backend"
	"github.com/statepack/statepack/remote/dirbackend"
)

// Open parses a remote URL (see ParseURL) and returns its backend, wrapped
// with WithRetry and DefaultRetryPolicy. cfg is used for S3 remotes only.
//
// Without create, the remote must exist: a missing directory is an error
// matching archive.ErrNotFound, a missing bucket one matching
// archive.ErrNoBucket. With create (statepack init --remote), a missing
// directory is created with its parents and a missing bucket is created.
func Open(ctx context.Context, raw string, cfg S3Config, create bool) (backend.Backend, error) {
	u, err := ParseURL(raw)
	if err != nil {
		return nil, err
	}
	var b backend.Backend
	switch u.Kind {
	case KindDir:
		b, err = dirbackend.NewDirBackend(u.Path, create)
	case KindS3:
		b, err = openS3(ctx, u, cfg, create)
	default:
		err = fmt.Errorf("unknown remote kind %q", u.Kind)
	}
	if err != nil {
		return nil, fmt.Errorf("open remote: %w", err)
	}
	return WithRetry(b, DefaultRetryPolicy()), nil
}

func openS3(ctx context.Context, u URL, cfg S3Config, create bool) (*S3Backend, error) {
	b, err := newS3Backend(u, cfg)
	if err != nil {
		return nil, err
	}
	// The first request is retried like every later one: one throttled
	// or dropped answer must not fail the whole command.
	rb := &retryBackend{b: b, p: DefaultRetryPolicy()}
	err = rb.do(ctx, MethodStat, "", IsTransient, func() error { return b.checkBucket(ctx) })
	if create && errors.Is(err, backend.ErrNoBucket) {
		err = b.CreateBucket(ctx)
	}
	if err != nil {
		return nil, err
	}
	return b, nil
}
