package main

import (
	"context"
	"strings"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/archive/format"
	"github.com/statepack/statepack/archive/scan"
)

// stateName checks a STATE argument.
func stateName(s string) (string, error) {
	if err := archive.ValidStateName(s); err != nil {
		return "", &usageError{err}
	}
	return s, nil
}

// snapshotName checks the syntax of a SNAPSHOT argument: STATE, STATE~N or
// an id prefix of at least 8 hex digits.
func snapshotName(spec string) (string, error) {
	state, back, err := archive.ParseSpec(spec)
	if err != nil {
		return "", &usageError{err}
	}
	if archive.ValidStateName(state) != nil && (back != 0 || !isHexPrefix(spec)) {
		return "", usagef("invalid snapshot name %q: want STATE, STATE~N or an id prefix of 8 or more hex digits", spec)
	}
	return spec, nil
}

func isHexPrefix(s string) bool {
	if len(s) < 8 || len(s) > 64 {
		return false
	}
	return strings.Trim(s, "0123456789abcdef") == ""
}

// resolve turns a checked snapshot name into an id.
func resolve(ctx context.Context, r *archive.Repository, spec string) (format.ID, error) {
	spec, err := snapshotName(spec)
	if err != nil {
		return format.ID{}, err
	}
	return r.Resolve(ctx, spec)
}

// filterOf builds and checks a path filter from glob flags.
func filterOf(include, exclude []string) (scan.Filter, error) {
	f := scan.Filter{Include: include, Exclude: exclude}
	if err := f.Validate(); err != nil {
		return f, &usageError{err}
	}
	return f, nil
}

// labelsOf parses repeated --label key=value flags.
func labelsOf(kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	labels := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, usagef("invalid label %q: want key=value", kv)
		}
		labels[k] = v
	}
	return labels, nil
}
