package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/minio/minio-go/v7"

	"github.com/statepack/statepack/internal/benchutil"
	"github.com/statepack/statepack/internal/miniotest"
)

// rawObjectSize is the size of the objects of the raw PUT and GET
// baselines: statepack's pack size.
const rawObjectSize = 16 << 20

// rawJobs is how many raw requests run at once: push's and pull's default.
const rawJobs = 4

// startS3 starts the MinIO the remote rows use (miniotest finds the
// binary: STATEPACK_MINIO, .tools/bin/minio, or minio on PATH).
func (b *bench) startS3() error {
	srv, err := miniotest.Start(b.ctx)
	if err != nil {
		return fmt.Errorf("start MinIO (set STATEPACK_MINIO, or run `make bench`): %w", err)
	}
	b.s3, b.endpoint = srv, srv.Endpoint
	if b.proxy, err = benchutil.StartCountingProxy(srv.Endpoint); err != nil {
		return err
	}
	b.logf("MinIO at %s, counting proxy at %s", srv.Endpoint, b.proxy.URL)
	if !b.need["link"] {
		return nil
	}
	if b.link, err = benchutil.StartLink(strings.TrimPrefix(srv.Endpoint, "http://"), int64(b.cfg.LinkMbit)*1e6/8); err != nil {
		return err
	}
	b.logf("MinIO over a %s link at %s", linkRate(b.cfg.LinkMbit), b.link.URL)
	return nil
}

// counted runs fn with the children's S3 endpoint behind the counting
// proxy and records the requests MinIO received as the series' count.
// Only no-op commands go through it: the proxy would slow transfers.
func (b *bench) counted(series string, fn func() error) error {
	b.endpoint = b.proxy.URL
	defer func() { b.endpoint = b.s3.Endpoint }()
	b.proxy.Take()
	if err := fn(); err != nil {
		return err
	}
	b.facts.Requests[series] = append(b.facts.Requests[series], b.proxy.Take())
	return nil
}

// bucketName is the run's bucket: each run starts from an empty one.
func bucketName(r *trial) string { return fmt.Sprintf("statepack-bench-run%d", r.n) }

// newRemote creates bucket and returns the statepack remote in it.
func (b *bench) newRemote(bucket string) (string, error) {
	if err := b.s3.Client().MakeBucket(b.ctx, bucket, minio.MakeBucketOptions{}); err != nil {
		return "", fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	return "s3://" + bucket + "/statepack", nil
}

// dropRemote removes the run's bucket with everything in it.
func (b *bench) dropRemote(r *trial) error {
	if r.remote == "" {
		return nil
	}
	return b.s3.Client().RemoveBucketWithOptions(b.ctx, bucketName(r), minio.RemoveBucketOptions{ForceDelete: true})
}

// coldPush measures a push into an empty remote repository (created by
// init --remote beforehand, as a user does), then a raw PUT of as
// many bytes in 16 MiB objects (and restic's backup to the same MinIO).
func (b *bench) coldPush(r *trial) error {
	bucket := bucketName(r)
	var err error
	if r.remote, err = b.newRemote(bucket); err != nil {
		return err
	}
	sent, err := b.pushCold(r.store, bucket, r.remote, "")
	if err != nil {
		return err
	}
	b.facts.PushBytes = append(b.facts.PushBytes, sent)
	return b.resticS3Backup(r, bucket)
}

// pushCold measures a push of store into the empty remote in bucket
// (after init --remote, as a user does; series push+suffix), then a raw
// PUT of as many bytes in 16 MiB objects (raw-put+suffix), and returns the
// bytes pushed.
func (b *bench) pushCold(store, bucket, remote, suffix string) (int64, error) {
	if _, err := b.spSetup(store, "", remote, "init", "--remote"); err != nil {
		return 0, err
	}
	out, err := b.sp("push"+suffix, store, "", remote, "push", state)
	if err != nil {
		return 0, err
	}
	sent, err := intField(out, "bytes")
	if err != nil {
		return 0, err
	}
	_, err = b.rawS3("raw-put"+suffix, "put", bucket, sent)
	return sent, err
}

// rawS3 measures the raw baseline: count objects of 16 MiB that hold
// bytes, put or got by a child process so its CPU and memory are its own.
func (b *bench) rawS3(series, op, bucket string, bytes int64) ([]byte, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	count := max(1, (bytes+rawObjectSize-1)/rawObjectSize)
	return b.measure(series, self, rawS3Command, "--op", op, "--bucket", bucket, "--prefix", "raw/",
		"--count", strconv.FormatInt(count, 10), "--size", strconv.Itoa(rawObjectSize), "--jobs", strconv.Itoa(rawJobs))
}

// linkRun measures a cold push into an empty remote, a cold pull
// --restore into an empty store and DATA_DIR and a cold pull alone with
// MinIO behind the link, each against raw requests for as many bytes over
// the same link: the pace of a network, where the loopback rows measure
// the CPU.
func (b *bench) linkRun(r *trial) error {
	bucket := bucketName(r) + "-link"
	remote, err := b.newRemote(bucket)
	if err != nil {
		return err
	}
	defer b.s3.Client().RemoveBucketWithOptions(b.ctx, bucket, minio.RemoveBucketOptions{ForceDelete: true})
	b.endpoint = b.link.URL
	defer func() { b.endpoint = b.s3.Endpoint }()
	sent, err := b.pushCold(r.store, bucket, remote, "-link")
	if err != nil {
		return err
	}
	store, data := filepath.Join(r.root, "link-store"), filepath.Join(r.root, "link-data")
	if _, err := b.sp("pull-link", store, data, remote, "pull", state, "--restore"); err != nil {
		return err
	}
	if err := b.discard(store); err != nil {
		return err
	}
	if _, err := b.sp("pull-only-link", store, "", remote, "pull", state); err != nil {
		return err
	}
	if _, err := b.rawS3("raw-get-link", "get", bucket, sent); err != nil {
		return err
	}
	if err := b.discard(store); err != nil {
		return err
	}
	return b.discard(data)
}

// noopPush measures a push of a state the remote already has, counting
// its requests at the server.
func (b *bench) noopPush(r *trial) error {
	return b.counted("push-noop", func() error {
		out, err := b.sp("push-noop", r.store, "", r.remote, "push", state)
		if err == nil {
			err = b.reported("push-noop", out)
		}
		return err
	})
}

// reported records the request count a push or pull reported itself, to
// compare with the count at the server.
func (b *bench) reported(series string, out map[string]any) error {
	n, err := intField(out, "requests")
	if err != nil {
		return err
	}
	b.facts.Reported[series] = append(b.facts.Reported[series], n)
	return nil
}

// pulledStore and pulledData are where the cold pull goes.
func (r *trial) pulledStore() string { return filepath.Join(r.root, "pulled-store") }
func (r *trial) pulledData() string  { return filepath.Join(r.root, "pulled") }

// coldPull measures pull --restore into an empty store and an empty
// DATA_DIR, a pull into another empty store alone, then a raw GET of the
// raw PUT's objects, a verify of the remote that reads every pack (what a
// pull must check, with nothing written), and restic's restore from the
// same MinIO.
func (b *bench) coldPull(r *trial) error {
	if _, err := b.sp("pull", r.pulledStore(), r.pulledData(), r.remote, "pull", state, "--restore"); err != nil {
		return err
	}
	only := filepath.Join(r.root, "pull-only-store")
	if _, err := b.sp("pull-only", only, "", r.remote, "pull", state); err != nil {
		return err
	}
	if err := b.discard(only); err != nil {
		return err
	}
	bucket := bucketName(r)
	if _, err := b.rawS3("raw-get", "get", bucket, b.facts.PushBytes[len(b.facts.PushBytes)-1]); err != nil {
		return err
	}
	if _, err := b.sp("verify-remote", r.store, "", r.remote, "verify", "--remote", "--read-data"); err != nil {
		return err
	}
	if err := b.discard(r.pulledData()); err != nil {
		return err
	}
	return b.resticS3Restore(r, bucket)
}

// noopPull measures a pull of a state the local store already has (the
// store the cold pull filled, or else the one the state was pushed from),
// counting its requests at the server.
func (b *bench) noopPull(r *trial) error {
	store := r.pulledStore()
	if _, err := os.Stat(store); err != nil {
		store = r.store
	}
	err := b.counted("pull-noop", func() error {
		out, err := b.sp("pull-noop", store, "", r.remote, "pull", state)
		if err == nil {
			err = b.reported("pull-noop", out)
		}
		return err
	})
	if err != nil {
		return err
	}
	return b.discard(r.pulledStore())
}
