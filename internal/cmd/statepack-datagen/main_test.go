package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/statepack/statepack/internal/datagen"
)

// run runs the command in-process and returns what it printed.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	app := newApp()
	var out bytes.Buffer
	app.Writer, app.ErrWriter = &out, &out
	err := app.Run(append([]string{"statepack-datagen"}, args...))
	return out.String(), err
}

func TestGenerateAndMutate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	out, err := run(t, "generate", "--dir", dir, "--size", "1MiB", "--seed", "4", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var st datagen.Stats
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Bytes != 1<<20 {
		t.Fatalf("generate printed %q (%v), want the stats of 1 MiB", out, err)
	}
	out, err = run(t, "mutate", "--dir", dir, "--seed", "4", "--step", "1")
	if err != nil || !strings.HasPrefix(out, "mutated ") || strings.Count(out, "\n") != 1 {
		t.Fatalf("mutate printed %q (%v), want a one-line summary", out, err)
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no dir", []string{"generate"}, "--dir is required"},
		{"bad size", []string{"generate", "--dir", dir + "/x", "--size", "12XB"}, "--size"},
		{"unknown flag", []string{"mutate", "--bogus"}, "bogus"},
		{"bad step", []string{"mutate", "--dir", dir, "--step", "0"}, "step 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := run(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
			if out != "" {
				t.Errorf("printed %q besides the error", out)
			}
		})
	}
}
