package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/statepack/statepack/internal/localstack"
	"github.com/statepack/statepack/internal/output"
	"github.com/statepack/statepack/remote"
)

// optionalValue is a flag given alone (--localstack) or with a value
// (--localstack=URL). To the flag package it is a boolean flag, so that
// alone it takes no argument.
type optionalValue struct {
	given bool
	value string
}

// Set implements flag.Value.
func (o *optionalValue) Set(v string) error {
	o.given = true
	if v != "true" {
		o.value = v
	}
	return nil
}

// String implements flag.Value.
func (o *optionalValue) String() string {
	if o == nil {
		return ""
	}
	return o.value
}

// IsBoolFlag lets the flag stand alone.
func (o *optionalValue) IsBoolFlag() bool { return true }

// optionalFlag is a flag given alone or with a value (an optionalValue).
// Its help shows that the value may be left out, --localstack[=URL],
// where urfave/cli would show "--localstack value", which reads as if a
// value were needed.
type optionalFlag struct {
	*cli.GenericFlag
	placeholder string // what the value is: "URL"
}

// String implements cli.Flag: the line of the flag in --help.
func (f *optionalFlag) String() string {
	return fmt.Sprintf("--%s[=%s]\t%s", f.Name, f.placeholder, f.Usage)
}

// isOptional reports whether f is a flag that may stand alone or take a
// value (see optionalFlag).
func isOptional(f cli.Flag) bool {
	_, ok := f.(*optionalFlag)
	return ok
}

// localstackFlags are the flags of save and restore that involve a running
// LocalStack.
func localstackFlags(op string) []cli.Flag {
	return []cli.Flag{
		&optionalFlag{GenericFlag: &cli.GenericFlag{Name: "localstack", Value: &optionalValue{},
			Usage: fmt.Sprintf("ask the running LocalStack (at URL; default %s) to %s its state", localstack.DefaultURL, op)}, placeholder: "URL"},
		&cli.StringSliceFlag{Name: "services", Usage: "only these LocalStack `SERVICES` (\"sqs,dynamodb\"; repeatable): their paths under DATA_DIR"},
	}
}

// localstackOutput is the `localstack` object of `save --json` and
// `restore --json`: null unless --localstack was given.
//
//	url       where LocalStack was asked
//	services  what it answered, per service: [{service, status, message}]
type localstackOutput struct {
	URL      string              `json:"url"`
	Services []localstack.Result `json:"services"`
}

// servicePaths turns --services into path globs ("" services: none).
func servicePaths(c *cli.Context) ([]string, []string, error) {
	services := localstack.SplitServices(c.StringSlice("services"))
	paths, err := localstack.Paths(services)
	if err != nil {
		return nil, nil, &usageError{err}
	}
	return services, paths, nil
}

// localstackClient is the client for --localstack, nil when it was not
// given.
func localstackClient(c *cli.Context) *localstack.Client {
	flag, _ := c.Generic("localstack").(*optionalValue)
	if flag == nil || !flag.given {
		return nil
	}
	return localstack.New(flag.value)
}

// localstackDownHint is the next step when LocalStack does not answer.
const localstackDownHint = "start LocalStack, pass --localstack=URL, or leave out --localstack"

// pingLocalStack makes sure LocalStack answers when --localstack was
// given, so that restore refuses before it changes DATA_DIR rather than
// fail after.
func pingLocalStack(ctx context.Context, c *cli.Context) error {
	client := localstackClient(c)
	if client == nil {
		return nil
	}
	err := client.Ping(ctx)
	if errors.Is(err, localstack.ErrUnreachable) || errors.Is(err, localstack.ErrNotReady) {
		return withHint(fmt.Errorf("%w; nothing was changed", err), localstackDownHint)
	}
	return err
}

// callLocalStack asks LocalStack to save or load state when --localstack
// was given; it returns nil otherwise.
func callLocalStack(ctx context.Context, c *cli.Context, op string, services []string) (*localstackOutput, error) {
	client := localstackClient(c)
	if client == nil {
		return nil, nil
	}
	call := client.Save
	if op == "load" {
		call = client.Load
	}
	res, err := call(ctx, services)
	if errors.Is(err, localstack.ErrUnreachable) {
		return nil, withHint(err, localstackDownHint)
	}
	if err != nil {
		return nil, err
	}
	return &localstackOutput{URL: remote.RedactURL(client.URL), Services: nonNil(res)}, nil
}

// notLoadedError is a restore that put the files in place, after which
// LocalStack did not load them (--localstack): DATA_DIR is the snapshot,
// LocalStack still runs on what it had. It has an exit status of its
// own, so that a script can tell it from a restore that did not happen.
type notLoadedError struct {
	restore *restoreOutput
	err     error // what LocalStack (or the way to it) answered
}

// Error implements error.
func (e *notLoadedError) Error() string {
	return e.done() + "; LocalStack was not reloaded: " + e.err.Error()
}

// Unwrap returns LocalStack's error.
func (e *notLoadedError) Unwrap() error { return e.err }

// done says what the restore did: "DATA_DIR restored from main
// (0123abcd): 3 files written, 1 removed; what it held before is saved
// as restore-backup 4567cdef".
func (e *notLoadedError) done() string {
	o := e.restore
	msg := fmt.Sprintf("DATA_DIR restored from %s (%s): %s written, %d removed", o.Name, o.Snapshot[:8],
		output.Plural(int64(o.FilesWritten), "file", "files"), o.Removed)
	if b := o.Backup; b != nil {
		msg += fmt.Sprintf("; what it held before is saved as %s %s (`statepack restore %s` brings it back)", b.State, b.Snapshot[:8], b.Snapshot[:8])
	}
	return msg
}

// notLoadedHint is the next step after a notLoadedError.
const notLoadedHint = "when LocalStack can load it, run the same command again: DATA_DIR is restored already, so that only asks LocalStack to load it " +
	"(or restart LocalStack with PERSISTENCE=1, which loads DATA_DIR as it starts)"

func (o *localstackOutput) print(w io.Writer, op string) {
	if o != nil {
		fmt.Fprintf(w, "LocalStack at %s %s the state of %s\n", o.URL, op, output.Plural(int64(len(o.Services)), "service", "services"))
	}
}
