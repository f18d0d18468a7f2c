package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"os"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"golang.org/x/sync/errgroup"
)

// rawS3Command is the hidden first argument that makes the suite's own
// binary the raw S3 baseline, run as a child so that its CPU time and
// memory are measured like statepack's.
const rawS3Command = "raw-s3"

// rawS3Main puts or gets --count objects of --size bytes under --prefix
// of --bucket, --jobs at a time, with minio-go (the client statepack
// uses) and the AWS_* environment the suite sets. It returns the exit
// status.
func rawS3Main(args []string) int {
	fs := flag.NewFlagSet(rawS3Command, flag.ContinueOnError)
	op := fs.String("op", "put", "put or get")
	bucket := fs.String("bucket", "", "bucket")
	prefix := fs.String("prefix", "raw/", "key prefix")
	count := fs.Int("count", 1, "objects")
	size := fs.Int("size", 16<<20, "bytes per object")
	jobs := fs.Int("jobs", 4, "requests at once")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := rawS3(context.Background(), *op, *bucket, *prefix, *count, *size, *jobs); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", rawS3Command, err)
		return 1
	}
	return 0
}

// rawS3 does the requests of rawS3Main.
func rawS3(ctx context.Context, op, bucket, prefix string, count, size, jobs int) error {
	client, err := envClient()
	if err != nil {
		return err
	}
	payload := make([]byte, size)
	_, _ = rand.NewChaCha8([32]byte{'s', 'p'}).Read(payload) // incompressible, like packs
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for i := range count {
		key := fmt.Sprintf("%sobject-%05d", prefix, i)
		g.Go(func() error {
			if op == "put" {
				_, err := client.PutObject(gctx, bucket, key, bytes.NewReader(payload), int64(size),
					minio.PutObjectOptions{ContentType: "application/octet-stream", DisableMultipart: true})
				return err
			}
			obj, err := client.GetObject(gctx, bucket, key, minio.GetObjectOptions{})
			if err != nil {
				return err
			}
			defer obj.Close()
			_, err = io.CopyBuffer(io.Discard, struct{ io.Reader }{obj}, make([]byte, 1<<20))
			return err
		})
	}
	return g.Wait()
}

// envClient connects to AWS_ENDPOINT_URL with the AWS_* credentials.
func envClient() (*minio.Client, error) {
	u, err := url.Parse(os.Getenv("AWS_ENDPOINT_URL"))
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("AWS_ENDPOINT_URL %q is not an endpoint URL", os.Getenv("AWS_ENDPOINT_URL"))
	}
	return minio.New(u.Host, &minio.Options{
		Creds:  credentials.NewStaticV4(os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), ""),
		Secure: u.Scheme == "https",
		Region: os.Getenv("AWS_REGION"),
	})
}
