package main

import (
	"fmt"

	"github.com/statepack/statepack/internal/suggest"
	"github.com/urfave/cli/v2"
)

// newApp builds the command line.
func (s *session) newApp() *cli.App {
	cli.VersionPrinter = func(c *cli.Context) { buildVersion().print(c.App.Writer) }
	app := &cli.App{
		Name:      "statepack",
		Usage:     "save, restore and share an application's data directory",
		UsageText: "statepack [global options] COMMAND [options] [arguments]",
		Description: "statepack snapshots DATA_DIR (LocalStack's, or any application's) into a local store,\n" +
			"restores any saved version exactly, and shares states through S3 or a shared directory.\n\n" +
			"Settings come from flags, then the environment, then defaults; `statepack env` shows them.\n" +
			"Exit status: 0 success, 1 failure, 2 usage error, 3 the named state or snapshot does not exist.\n\n" +
			"Example:\n\n" +
			"   export DATA_DIR=/tmp/localstack/data\n" +
			"   statepack save orders-e2e -m \"after stage 1\"\n" +
			"   statepack restore orders-e2e",
		Version:                   buildVersion().Version,
		EnableBashCompletion:      true,
		DisableSliceFlagSeparator: true,
		HideHelpCommand:           false,
		Writer:                    s.stdout,
		ErrWriter:                 s.stderr,
		ExitErrHandler:            func(*cli.Context, error) {},
		OnUsageError:              s.onUsageError,
		Before:                    s.before,
		Action:                    s.rootAction,
		Flags:                     globalFlags(),
		Commands: []*cli.Command{
			s.initCommand(), s.saveCommand(), s.restoreCommand(),
			s.listCommand(), s.logCommand(), s.showCommand(), s.diffCommand(), s.statusCommand(),
			s.verifyCommand(), s.forgetCommand(), s.pruneCommand(), s.unlockCommand(),
			s.pushCommand(), s.pullCommand(),
			s.envCommand(), s.completionCommand(), s.versionCommand(),
		},
	}
	for _, c := range app.Commands {
		c.OnUsageError = s.onUsageError
	}
	return app
}

func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "store", Usage: "the local store `DIR` (env STATEPACK_STORE; default $XDG_DATA_HOME/statepack)"},
		&cli.StringFlag{Name: "data-dir", Usage: "the data directory `DIR` to save and restore (env DATA_DIR)"},
		&cli.StringFlag{Name: "remote", Usage: "the remote `URL`: s3://bucket/prefix, file:///path or a directory (env STATEPACK_REMOTE)"},
		&cli.BoolFlag{Name: "json", Usage: "print one JSON document on stdout; errors as JSON on stderr"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only errors"},
		&cli.BoolFlag{Name: "debug", Usage: "add detail to errors, for bug reports"},
		&cli.DurationFlag{Name: "timeout", Usage: "give up after `DURATION` in total (0: never)"},
		&cli.DurationFlag{Name: "lock-wait", Usage: "wait up to `DURATION` for a conflicting lock (a prune, writers for prune, another save or restore of the DATA_DIR) instead of failing at once"},
	}
}

func (s *session) onUsageError(c *cli.Context, err error, _ bool) error {
	if c.Command != nil && c.Command.Name != "" && c.Command.Name != "statepack" {
		s.cmdName = c.Command.Name
	}
	return &usageError{err}
}

// rootAction runs when no command is given: help, or an unknown command.
func (s *session) rootAction(c *cli.Context) error {
	if c.Args().Present() {
		name, hint := c.Args().First(), "`statepack --help` lists the commands"
		var names []string
		for _, cmd := range c.App.Commands {
			names = append(names, cmd.Names()...)
		}
		if near := suggest.Closest(name, names); near != "" {
			hint = fmt.Sprintf("did you mean %q? %s", near, hint)
		}
		return withHint(usagef("unknown command %q", name), hint)
	}
	return cli.ShowAppHelp(c)
}

// onRemoteFlag is the --remote of commands that can work on the remote
// instead of the local store.
func onRemoteFlag(what string) *cli.BoolFlag {
	return &cli.BoolFlag{Name: "remote", Usage: fmt.Sprintf("%s the remote (--remote=URL, or STATEPACK_REMOTE) instead of the local store", what)}
}
