package restorer

// LimitScatterFiles sets how many temporary files s keeps open.
func LimitScatterFiles(s *ScatterRestore, n int) { s.fds.max = n }

// ScatterOpenFiles is how many temporary files s has open.
func ScatterOpenFiles(s *ScatterRestore) int {
	s.fds.mu.Lock()
	defer s.fds.mu.Unlock()
	return len(s.fds.open)
}

// RestoreMarkerPath is where a restore of root records itself until done.
func RestoreMarkerPath(cacheDir, root string) string { return restoreMarkerPath(cacheDir, root) }
