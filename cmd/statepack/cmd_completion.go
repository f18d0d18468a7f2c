package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/statepack/statepack/archive"
	"github.com/statepack/statepack/remote/dirbackend"
)

// completionOutput is `completion --json`.
//
//	shell   bash, zsh or fish
//	script  the script to source
type completionOutput struct {
	Shell  string `json:"shell"`
	Script string `json:"script"`
}

// The bash and zsh scripts are urfave/cli's autocomplete scripts for
// statepack: they ask `statepack ... --generate-bash-completion` for the
// words that fit.
const bashCompletion = `# bash completion for statepack; add to ~/.bashrc:
#   source <(statepack completion bash)
_statepack_complete() {
  local cur words
  COMPREPLY=()
  cur="${COMP_WORDS[COMP_CWORD]}"
  words=("${COMP_WORDS[@]:0:$COMP_CWORD}")
  local opts
  if [[ "$cur" == "-"* ]]; then
    opts=$("${words[@]}" "$cur" --generate-bash-completion 2>/dev/null)
  else
    opts=$("${words[@]}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "${opts}" -- "${cur}"))
  return 0
}
complete -o bashdefault -o default -o nospace -F _statepack_complete statepack
`

const zshCompletion = `#compdef statepack
# zsh completion for statepack; add to ~/.zshrc:
#   source <(statepack completion zsh)
_statepack() {
  local -a opts
  local cur
  cur=${words[-1]}
  if [[ "$cur" == "-"* ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} ${cur} --generate-bash-completion 2>/dev/null)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion 2>/dev/null)}")
  fi
  if [[ "${opts[1]}" != "" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}
compdef _statepack statepack
`

func (s *session) completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script for bash, zsh or fish",
		ArgsUsage: "bash|zsh|fish",
		Description: "Example:\n\n   source <(statepack completion bash)\n" +
			"   statepack completion zsh > \"${fpath[1]}/_statepack\"\n" +
			"   statepack completion fish > ~/.config/fish/completions/statepack.fish",
		BashComplete: func(c *cli.Context) { fmt.Fprintln(c.App.Writer, "bash\nzsh\nfish") },
		Action: s.action(1, 1, func(c *cli.Context) error {
			shell := c.Args().First()
			var script string
			switch shell {
			case "bash":
				script = bashCompletion
			case "zsh":
				script = zshCompletion
			case "fish":
				var err error
				if script, err = c.App.ToFishCompletion(); err != nil {
					return err
				}
			default:
				return usagef("unknown shell %q: want bash, zsh or fish", shell)
			}
			return s.emit(completionOutput{Shell: shell, Script: script}, func(w io.Writer) { fmt.Fprint(w, script) })
		}),
	}
}

// completeStates offers flags after a dash, else the local store's states.
func completeStates(c *cli.Context) {
	if n := len(os.Args); n > 2 && strings.HasPrefix(os.Args[n-2], "-") {
		cli.DefaultCompleteWithFlags(c.Command)(c)
		return
	}
	store := c.String("store")
	if store == "" {
		store = os.Getenv(envStore)
	}
	if store == "" {
		store, _ = defaultStore()
	}
	be, err := dirbackend.New(store, false)
	if err != nil {
		return
	}
	r, err := archive.Open(context.Background(), be)
	if err != nil {
		return
	}
	states, _ := r.States(context.Background())
	sort.Strings(states)
	for _, st := range states {
		fmt.Fprintln(c.App.Writer, st)
	}
}
