//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package datagen

import "time"

// lchtimes leaves a symlink's times alone where the system offers no way to
// set them without following the link.
func lchtimes(string, time.Time) error { return nil }
