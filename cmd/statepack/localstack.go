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

// localstackFlags are the flags of save and restore that involve a running
// LocalStack.
func localstackFlags(op string) []cli.Flag {
	return []cli.Flag{
		&cli.GenericFlag{Name: "localstack", Value: &optionalValue{},
			Usage: fmt.Sprintf("ask the running LocalStack (--localstack=URL; default %s) to %s its state", localstack.DefaultURL, op)},
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

// callLocalStack asks LocalStack to save or load state when --localstack
// was given; it returns nil otherwise.
func callLocalStack(ctx context.Context, c *cli.Context, op string, services []string) (*localstackOutput, error) {
	flag, _ := c.Generic("localstack").(*optionalValue)
	if flag == nil || !flag.given {
		return nil, nil
	}
	client := localstack.New(flag.value)
	call := client.Save
	if op == "load" {
		call = client.Load
	}
	res, err := call(ctx, services)
	if errors.Is(err, localstack.ErrUnreachable) {
		return nil, withHint(err, "start LocalStack, pass --localstack=URL, or leave out --localstack")
	}
	if err != nil {
		return nil, err
	}
	return &localstackOutput{URL: remote.RedactURL(client.URL), Services: nonNil(res)}, nil
}

func (o *localstackOutput) print(w io.Writer, op string) {
	if o != nil {
		fmt.Fprintf(w, "LocalStack at %s %s the state of %s\n", o.URL, op, output.Plural(int64(len(o.Services)), "service", "services"))
	}
}
