package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLocationsWithWhiteSpace: a store, DATA_DIR or remote with a leading
// or trailing space (a quoting slip: DATA_DIR=" /data") is a usage error
// naming the setting, and nothing is created under the working directory
// (before, " /data" became the directory " " there, and restore filled it).
func TestLocationsWithWhiteSpace(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"DATA_DIR", map[string]string{"DATA_DIR": " /data"}, []string{"save", "s"}, "invalid DATA_DIR"},
		{"--data-dir", nil, []string{"restore", "s", "--data-dir", "data "}, "invalid --data-dir"},
		{"STATEPACK_STORE", map[string]string{"STATEPACK_STORE": "store\t"}, []string{"list"}, "invalid STATEPACK_STORE"},
		{"--store", nil, []string{"--store", " store", "list"}, "invalid --store"},
		{"--remote", nil, []string{"list", "--remote", " /remote"}, "invalid remote"},
		{"STATEPACK_REMOTE", map[string]string{"STATEPACK_REMOTE": "s3://bucket/p\n"}, []string{"push", "s"}, "invalid remote"},
		{"control character", nil, []string{"--data-dir", "da\x1bta", "status"}, "control character"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.write(sampleTree())
			e.MustRun("save", "s")
			cwd := filepath.Join(e.root, "cwd")
			if err := os.Mkdir(cwd, 0o755); err != nil {
				t.Fatal(err)
			}
			e.Dir = cwd
			for k, v := range tc.env {
				e.Env[k] = v
			}
			res := e.Run(tc.args...)
			if res.Code != exitUsage || !strings.Contains(res.Stderr, tc.want) || !strings.Contains(res.Stderr, "white space") && !strings.Contains(res.Stderr, "control character") {
				t.Errorf("want a usage error naming %q:\n%s", tc.want, res)
			}
			if names, _ := os.ReadDir(cwd); len(names) > 0 {
				t.Errorf("created %v under the working directory", names)
			}
		})
	}
}

// TestLocationsWithTilde: "~/x" in DATA_DIR or STATEPACK_STORE, set where
// no shell expands it, is the home directory (as for a remote), not a
// directory "~" under the working directory.
func TestLocationsWithTilde(t *testing.T) {
	e := newEnv(t)
	cwd := filepath.Join(e.root, "cwd")
	if err := os.Mkdir(cwd, 0o755); err != nil {
		t.Fatal(err)
	}
	e.Dir = cwd
	e.Env["DATA_DIR"], e.Env["STATEPACK_STORE"] = "~/data", "~/store"
	var st statusOutput
	e.runJSON(&st, "status")
	home := e.Env["HOME"]
	if st.DataDir != filepath.Join(home, "data") || st.Store != filepath.Join(home, "store") {
		t.Errorf("status: data dir %q, store %q; want them under %s", st.DataDir, st.Store, home)
	}
	if err := os.MkdirAll(filepath.Join(home, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.MustRun("save", "s")
	if names, _ := os.ReadDir(cwd); len(names) > 0 {
		t.Errorf("created %v under the working directory", names)
	}
}
