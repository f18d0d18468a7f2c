package main

import (
	"path/filepath"
)

// The restic column: the same operations done with restic on the same
// data, when restic is on PATH. Every function here does nothing without
// it. Repositories use restic's defaults (format 2, compression auto).

// resticRepo is the run's local restic repository.
func (r *trial) resticRepo() string { return filepath.Join(r.root, "restic") }

// resticBackup measures a restic backup of DATA_DIR into the run's local
// repository, which the first call creates.
func (b *bench) resticBackup(r *trial, series string) error {
	if b.restic == "" {
		return nil
	}
	if series == "restic-backup" {
		if _, err := b.output(b.restic, "-q", "-r", r.resticRepo(), "init"); err != nil {
			return err
		}
	}
	_, err := b.measure(series, b.restic, "-q", "-r", r.resticRepo(), "backup", "--host", "bench", b.data)
	return err
}

// resticRestore measures a restic restore into an empty directory.
func (b *bench) resticRestore(r *trial) error {
	return b.resticRestoreFrom(r, "restic-restore", r.resticRepo())
}

// resticRestoreFrom measures restoring the latest snapshot of repo into
// an empty directory without restic's local cache, then removes it.
func (b *bench) resticRestoreFrom(r *trial, series, repo string) error {
	if b.restic == "" {
		return nil
	}
	target := filepath.Join(r.root, "restic-restore")
	if _, err := b.measure(series, b.restic, "-q", "--no-cache", "-r", repo, "restore", "latest", "--target", target); err != nil {
		return err
	}
	return b.discard(target)
}

// resticS3Repo is the run's restic repository on MinIO.
func (b *bench) resticS3Repo(bucket string) string {
	return "s3:" + b.s3.Endpoint + "/" + bucket + "/restic"
}

// resticS3Backup measures a first restic backup of DATA_DIR to MinIO.
func (b *bench) resticS3Backup(r *trial, bucket string) error {
	if b.restic == "" {
		return nil
	}
	repo := b.resticS3Repo(bucket)
	if _, err := b.output(b.restic, "-q", "-r", repo, "init"); err != nil {
		return err
	}
	_, err := b.measure("restic-s3-backup", b.restic, "-q", "-r", repo, "backup", "--host", "bench", b.data)
	return err
}

// resticS3Restore measures a restic restore from MinIO.
func (b *bench) resticS3Restore(r *trial, bucket string) error {
	if b.restic == "" {
		return nil
	}
	return b.resticRestoreFrom(r, "restic-s3-restore", b.resticS3Repo(bucket))
}
