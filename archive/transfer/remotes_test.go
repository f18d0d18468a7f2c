package transfer_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/transfer"
	"github.com/statepack/statepack/internal/miniotest"
	"github.com/statepack/statepack/internal/treetest"
	"github.com/statepack/statepack/remote"
	"github.com/statepack/statepack/remote/backend"
)

// forEachRemote runs a sync test against a directory remote and against a
// real S3 server (MinIO), so the directory backend stays a faithful
// stand-in and nothing users run against S3 is tested only on a fake.
func forEachRemote(t *testing.T, test func(*testing.T, func(*testing.T) *archive.Repository)) {
	t.Run("dir", func(t *testing.T) { test(t, dirRemote) })
	t.Run("s3", func(t *testing.T) { test(t, s3Remote) })
}

// s3Remote opens a fresh bucket on MinIO the way the CLI does: through
// OpenRemote with the AWS environment variables and a lookup cache of
// its index (the dir remote has none: both ways of FindBlocks are run).
func s3Remote(t *testing.T) *archive.Repository {
	t.Helper()
	srv := miniotest.Get(t)
	bucket := srv.NewBucket(t.Context(), t)
	setS3Env(t, srv)
	r, err := remote.OpenRemote(context.Background(), "s3://"+bucket+"/team/states", true, remote.WithIndexCache(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func setS3Env(t *testing.T, srv *miniotest.Server) {
	t.Helper()
	t.Setenv("AWS_ENDPOINT_URL", srv.Endpoint)
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	t.Setenv("AWS_REGION", srv.Region)
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_SESSION_TOKEN", "")
}

// TestPullRefusesDamagedRemote: a damaged pack or manifest on the remote is
// named, and the local store is left as it was.
func TestPullRefusesDamagedRemote(t *testing.T) {
	forEachRemote(t, func(t *testing.T, newRemote func(*testing.T) *archive.Repository) {
		for _, prefix := range []string{"packs/", "snapshots/"} {
			t.Run(strings.TrimSuffix(prefix, "/"), func(t *testing.T) {
				ctx := context.Background()
				a, b, rem := newStore(t), newStore(t), newRemote(t)
				treetest.Write(t, a.data, map[string]treetest.Spec{"f": {Content: bigContent(5, 256<<10)}})
				a.savePush(t, rem, "s")
				name := damageFirst(t, rem, prefix)
				_, err := transfer.Pull(ctx, b.repo, rem, transfer.PullOptions{State: "s"})
				if err == nil || !strings.Contains(err.Error(), filepath.Base(name)[:8]) {
					t.Fatalf("pull of damaged %s: want an error naming it, got %v", name, err)
				}
				if states, _ := b.repo.States(ctx); len(states) != 0 {
					t.Fatalf("damaged pull created local states %v", states)
				}
			})
		}
	})
}

// damageFirst replaces the first object under prefix with a copy that has
// one byte flipped, through the backend, and returns its name.
func damageFirst(t *testing.T, r *archive.Repository, prefix string) string {
	t.Helper()
	ctx := context.Background()
	var name string
	_ = r.Backend().List(ctx, prefix, func(oi backend.ObjectInfo) error {
		if name == "" {
			name = oi.Name
		}
		return nil
	})
	rc, err := r.Backend().Get(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 0, 1<<20)
	buf := make([]byte, 32<<10)
	for {
		n, err := rc.Read(buf)
		data = append(data, buf[:n]...)
		if err != nil {
			break
		}
	}
	rc.Close()
	data[len(data)/3] ^= 0x20
	if err := r.Backend().Put(ctx, name, strings.NewReader(string(data)), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	return name
}

// TestRemoteOfNewerFormat: a remote written by a newer statepack is refused
// with a message that says to upgrade.
func TestRemoteOfNewerFormat(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "remote")
	_ = os.MkdirAll(dir, 0o755)
	_ = os.WriteFile(filepath.Join(dir, "config"), []byte(`{"version": 2, "id": "x"}`), 0o644)
	_, err := remote.OpenRemote(context.Background(), dir, false)
	if err == nil || !strings.Contains(err.Error(), "upgrade statepack") {
		t.Fatalf("want an upgrade message, got %v", err)
	}
}
