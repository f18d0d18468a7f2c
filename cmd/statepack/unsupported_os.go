//go:build !linux

// statepack supports linux only (amd64 and arm64): saving, restoring and
// the directory remote rely on its file system calls (syncfs,
// sync_file_range, renameat2, reflinks, hole punching, O_PATH). A darwin
// port needs their equivalents first. For any other GOOS the build stops
// here with a message that says so, instead of a page of "undefined:
// unix.…" from the packages below:
//
//	cmd/statepack/unsupported_os.go:…: pattern statepack supports linux only (build with GOOS=linux): no matching files found
//
// The embed pattern names no file, so `go build` fails while loading this
// package, before compiling anything. A compile error here would never be
// printed (the dependencies fail to compile first), and an import that
// cannot resolve would break `go mod tidy`, which reads the files of every
// GOOS.

package main

import _ "embed"

//go:embed "statepack supports linux only (build with GOOS=linux)"
var unsupportedOS string
