package remote

import (
	"context"
	"errors"
	"fmt"

	"github.com/statepack/statepack/remote/backend"
	"github.com/statepack/statepack/remote/dirbackend"
	"github.com/statepack/statepack/remote/s3"
)

// Open parses a remote URL (see ParseURL) and returns its backend, wrapped
// with WithRetry and DefaultRetryPolicy. cfg is used for S3 remotes only.
//
// Without create, the remote must exist: a missing directory is an error
// matching backend.ErrNotFound, a missing bucket one matching
// s3.ErrNoBucket. With create (statepack init --remote), a missing
// directory is created with its parents and a missing bucket is created.
func Open(ctx context.Context, raw string, cfg s3.Config, create bool) (backend.Backend, error) {
	u, err := ParseURL(raw)
	if err != nil {
		return nil, err
	}
	var b backend.Backend
	switch u.Kind {
	case KindDir:
		b, err = dirbackend.New(u.Path, create)
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

func openS3(ctx context.Context, u URL, cfg s3.Config, create bool) (backend.Backend, error) {
	b, err := s3.New(u.Bucket, u.Prefix, cfg)
	if err != nil {
		return nil, err
	}
	// The first request is retried like every later one: one throttled
	// or dropped answer must not fail the whole command.
	rb := newRetry(b, DefaultRetryPolicy())
	err = rb.do(ctx, MethodStat, "", rb.transient, func() error { return b.CheckBucket(ctx) })
	if create && errors.Is(err, s3.ErrNoBucket) {
		err = b.CreateBucket(ctx)
	}
	if err != nil {
		return nil, err
	}
	return b, nil
}
