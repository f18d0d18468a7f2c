package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestNormalizeArgs(t *testing.T) {
	tests := []struct {
		in, want string
		globals  []string // recorded as given on the command line
	}{
		{in: "list", want: "list"},
		{in: "--json list", want: "--json list", globals: []string{"json"}},
		{in: "list --json", want: "--json list", globals: []string{"json"}},
		{in: "forget main --keep-last 5", want: "forget --keep-last 5 -- main"},
		{in: "save main -m msg --store /s", want: "--store /s save -m msg -- main", globals: []string{"store"}},
		{in: "save main --label a=b --label c=d", want: "save --label a=b --label c=d -- main"},
		{in: "--store=/s save -- -odd", want: "--store=/s save -- -odd", globals: []string{"store"}},
		{in: "list --remote", want: "list --remote"},
		{in: "list --remote s3://b/p", want: "--remote s3://b/p list --remote", globals: []string{"remote"}},
		{in: "log main --remote=/srv/r", want: "--remote=/srv/r log --remote -- main", globals: []string{"remote"}},
		{in: "log --remote main", want: "log --remote -- main"},
		{in: "push main --remote file:///r --force", want: "--remote file:///r push --force -- main", globals: []string{"remote"}},
		{in: "save x --localstack http://ls:4566 -q", want: "-q save --localstack=http://ls:4566 -- x", globals: []string{"quiet"}},
		{in: "save x --localstack", want: "save --localstack -- x"},
		{in: "restore --generate-bash-completion", want: "restore --generate-bash-completion"},
		{in: "save --bogus x", want: "save --bogus -- x"},
		{in: "nosuchcommand --json", want: "nosuchcommand --json"},
		{in: "--timeout 5s status", want: "--timeout 5s status", globals: []string{"timeout"}},
	}
	app := newSession(nil, nil).newApp()
	for _, tc := range tests {
		cmdline := map[string]bool{}
		got := normalizeArgs(app, append([]string{"statepack"}, strings.Fields(tc.in)...), cmdline)
		if want := append([]string{"statepack"}, strings.Fields(tc.want)...); !reflect.DeepEqual(got, want) {
			t.Errorf("%q:\n got %q\nwant %q", tc.in, got[1:], want[1:])
		}
		want := map[string]bool{}
		for _, g := range tc.globals {
			want[g] = true
		}
		if !reflect.DeepEqual(cmdline, want) {
			t.Errorf("%q: recorded %v, want %v", tc.in, cmdline, want)
		}
	}
}

func TestSnapshotName(t *testing.T) {
	for spec, ok := range map[string]bool{
		"main": true, "main~1": true, "main~": true, "abcdef01": true, "ABCDEF01": true, "0123456789abcdef0123": true,
		"a b": false, "main~x": false, "no/slash": false, "": false, "-flag": false, "abcdef01~1": true,
	} {
		if _, err := snapshotName(spec); (err == nil) != ok {
			t.Errorf("snapshotName(%q): %v, want ok %v", spec, err, ok)
		}
	}
}
