package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// completionFlag is the flag urfave/cli's shell completion appends.
const completionFlag = "--generate-bash-completion"

// flagSpec is what argument normalisation needs to know about a flag.
type flagSpec struct {
	name       string // canonical name
	takesValue bool
}

func flagSpecs(flags []cli.Flag) map[string]flagSpec {
	specs := map[string]flagSpec{
		"h": {"help", false}, "help": {"help", false},
	}
	for _, f := range flags {
		names := f.Names()
		_, isBool := f.(*cli.BoolFlag)
		isBool = isBool || isOptional(f)
		for _, n := range names {
			specs[n] = flagSpec{name: names[0], takesValue: !isBool}
		}
	}
	return specs
}

// normalizeArgs lets flags follow arguments, the way users type them
// (`statepack forget main --keep-last 5`, `statepack list --json`), which
// urfave/cli does not parse by itself. It rewrites
//
//	statepack [global flags] COMMAND [args and flags, global or the command's]
//
// into global flags, the command, its flags, then its arguments. Global
// flags met on the command line are recorded in cmdline (for `env`).
//
// A command's own --remote is a switch ("work on the remote"); given a
// value (--remote=URL, or --remote followed by something with a slash,
// which no state name has) it also sets the global --remote URL. In the
// same way --localstack takes a following http:// URL as its value.
func normalizeArgs(app *cli.App, args []string, cmdline map[string]bool) []string {
	if len(args) < 2 {
		return args
	}
	global := flagSpecs(append([]cli.Flag{cli.VersionFlag}, app.Flags...))
	var globals []string
	i := 1
	for ; i < len(args); i++ {
		if args[i] == "--" || !isFlag(args[i]) {
			break
		}
		n := takeFlag(args, i, global, cmdline)
		globals = append(globals, args[i:i+n]...)
		i += n - 1
	}
	if i >= len(args) || args[i] == "--" || app.Command(args[i]) == nil {
		return args
	}
	cmd := app.Command(args[i])
	r := reorder{global: global, own: flagSpecs(cmd.Flags), cmdline: cmdline, globals: globals}
	r.scan(args[i+1:])
	out := append([]string{args[0]}, r.globals...)
	out = append(out, args[i])
	out = append(out, r.flags...)
	if len(r.positional) > 0 {
		out = append(append(out, "--"), r.positional...)
	}
	if r.complete {
		out = append(out, completionFlag)
	}
	return out
}

// reorder sorts the arguments after a command into global flags, the
// command's flags and its positional arguments.
type reorder struct {
	global, own                map[string]flagSpec
	cmdline                    map[string]bool
	globals, flags, positional []string
	complete                   bool
}

func (r *reorder) scan(rest []string) {
	for j := 0; j < len(rest); j++ {
		a := rest[j]
		switch {
		case a == completionFlag && j == len(rest)-1:
			r.complete = true
		case a == "--":
			r.positional = append(r.positional, rest[j+1:]...)
			return
		case !isFlag(a):
			r.positional = append(r.positional, a)
		default:
			j += r.flag(rest, j) - 1
		}
	}
}

// flag files the flag at rest[j] and returns how many arguments it spans.
func (r *reorder) flag(rest []string, j int) int {
	name, _, hasValue := strings.Cut(strings.TrimLeft(rest[j], "-"), "=")
	spec, mine := r.own[name]
	if _, isGlobal := r.global[name]; !mine && isGlobal {
		n := takeFlag(rest, j, r.global, r.cmdline)
		r.globals = append(r.globals, rest[j:j+n]...)
		return n
	}
	switch {
	case mine && name == "remote" && !spec.takesValue:
		g, n := remoteSwitch(rest, j, hasValue)
		if g != nil {
			r.cmdline["remote"] = true
		}
		r.globals = append(r.globals, g...)
		r.flags = append(r.flags, "--remote")
		return n
	case mine && name == "localstack" && !hasValue && j+1 < len(rest) && strings.Contains(rest[j+1], "://"):
		r.flags = append(r.flags, "--localstack="+rest[j+1])
		return 2
	case mine && spec.takesValue && !hasValue && j+1 < len(rest):
		r.flags = append(r.flags, rest[j:j+2]...)
		return 2
	}
	r.flags = append(r.flags, rest[j]) // unknown flags too: the parser reports them
	return 1
}

func isFlag(a string) bool { return len(a) > 1 && a[0] == '-' }

// takeFlag returns how many arguments the global flag at args[i] spans
// and records it.
func takeFlag(args []string, i int, specs map[string]flagSpec, cmdline map[string]bool) int {
	name, _, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
	spec, ok := specs[name]
	if !ok {
		return 1
	}
	cmdline[spec.name] = true
	if spec.takesValue && !hasValue && i+1 < len(args) {
		return 2
	}
	return 1
}

// remoteSwitch turns a command's --remote[=URL] or --remote URL into the
// global flag arguments that carry the URL (nil when none) and the number
// of arguments consumed.
func remoteSwitch(args []string, i int, hasValue bool) ([]string, int) {
	if hasValue {
		_, v, _ := strings.Cut(args[i], "=")
		return []string{"--remote=" + v}, 1
	}
	if i+1 < len(args) && strings.Contains(args[i+1], "/") && args[i+1] != completionFlag {
		return []string{"--remote", args[i+1]}, 2
	}
	return nil, 1
}
