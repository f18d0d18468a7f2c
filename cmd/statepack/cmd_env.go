package main

import (
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/urfave/cli/v2"

	"github.com/statepack/statepack/internal/output"
	"github.com/statepack/statepack/remote"
	"github.com/statepack/statepack/remote/s3"
)

// envOutput is `env --json`.
//
//	settings  the effective settings, in a fixed order: see settingOutput
type envOutput struct {
	Settings []settingOutput `json:"settings"`
}

// settingOutput is one setting in `env --json`.
//
//	name    the setting: a global flag ("store", "data-dir", "remote",
//	        "timeout") or an environment variable statepack reads
//	env     the environment variable it is read from; "" when none
//	value   the effective value; secrets are "****"
//	source  flag, env, default or unset
type settingOutput struct {
	Name   string `json:"name"`
	Env    string `json:"env"`
	Value  string `json:"value"`
	Source string `json:"source"`
}

// readVars are the other environment variables statepack reads.
var readVars = []string{
	"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE",
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
	"AWS_CA_BUNDLE", s3.EnvSSE, s3.EnvSSEKMSKeyID, s3.EnvSSECustomerKey, s3.EnvSSECustomerKeyFile,
	"XDG_DATA_HOME", "NO_COLOR",
}

// secretEnv reports whether the value of the environment variable name is
// a secret, shown as ****: a credential, or the SSE-C key (whose file's
// name, STATEPACK_S3_SSE_C_KEY_FILE, is shown).
func secretEnv(name string) bool {
	return slices.Contains(secretVars, name) || name == s3.EnvSSECustomerKey
}

func (s *session) envCommand() *cli.Command {
	return &cli.Command{
		Name:      "env",
		Usage:     "show the effective settings and where each comes from (flag, env, default)",
		ArgsUsage: " ",
		Description: "Precedence is flag, then environment, then default. Secret values\n" +
			"(AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, STATEPACK_S3_SSE_C_KEY) are shown as ****,\n" +
			"credentials in a URL as ****@.\n\nExample:\n\n   statepack env\n   statepack --store /tmp/s env --json",
		Action: s.action(0, 0, s.runEnv),
	}
}

func (s *session) runEnv(c *cli.Context) error {
	set := s.set
	timeout := "0 (none)"
	if set.Timeout > 0 {
		timeout = set.Timeout.String()
	}
	out := envOutput{Settings: []settingOutput{
		{"store", envStore, set.Store, set.Source["store"]},
		{"data-dir", envData, set.DataDir, set.Source["data-dir"]},
		{"remote", envRemote, set.Remote, set.Source["remote"]},
		{"timeout", "", timeout, set.Source["timeout"]},
	}}
	for _, name := range readVars {
		v, ok := os.LookupEnv(name)
		src := fromEnv
		if !ok {
			src = fromUnset
		}
		if v != "" && secretEnv(name) {
			v = "****"
		}
		out.Settings = append(out.Settings, settingOutput{Name: name, Env: name, Value: v, Source: src})
	}
	for i := range out.Settings {
		// A URL with credentials in it (a remote, an endpoint) is shown
		// without them, in --json too.
		out.Settings[i].Value = remote.Redact(out.Settings[i].Value)
	}
	return s.emit(out, out.print)
}

func (o envOutput) print(w io.Writer) {
	t := output.NewTable(w, "SETTING", "VALUE", "SOURCE")
	for _, st := range o.Settings {
		src := st.Source
		if st.Env != "" && st.Env != st.Name {
			src = fmt.Sprintf("%s ($%s)", src, st.Env)
		}
		t.Row(st.Name, orDash(st.Value), src)
	}
	_ = t.Flush()
}
