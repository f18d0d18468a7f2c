package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

// settings are the global options after precedence: flag, then
// environment, then default.
type settings struct {
	Store   string // absolute path of the local store
	DataDir string // absolute path of DATA_DIR; empty: persistence disabled
	Remote  string // remote URL as given; empty when none
	JSON    bool
	Quiet   bool
	Debug   bool
	Timeout time.Duration
	// LockWait is how long a command waits for a conflicting lock.
	LockWait time.Duration
	Source   map[string]string // setting name -> "flag", "env", "default"
}

// Where a setting came from, as `statepack env` prints it.
const (
	fromFlag    = "flag"
	fromEnv     = "env"
	fromDefault = "default"
	fromUnset   = "unset"
)

// Environment variables of the global settings.
const (
	envStore  = "STATEPACK_STORE"
	envData   = "DATA_DIR"
	envRemote = "STATEPACK_REMOTE"
)

func resolveSettings(c *cli.Context, cmdline map[string]bool) (settings, error) {
	set := settings{JSON: c.Bool("json"), Quiet: c.Bool("quiet"), Debug: c.Bool("debug"), Timeout: c.Duration("timeout"),
		Source: map[string]string{}}
	if set.Timeout < 0 {
		return set, usagef("--timeout must not be negative")
	}
	set.LockWait = c.Duration("lock-wait")
	if set.LockWait < 0 {
		return set, usagef("--lock-wait must not be negative")
	}
	pick := func(name, env string) string {
		if cmdline[name] {
			set.Source[name] = fromFlag
			return c.String(name)
		}
		if v := os.Getenv(env); v != "" {
			set.Source[name] = fromEnv
			return v
		}
		set.Source[name] = fromUnset
		return ""
	}
	set.Store = pick("store", envStore)
	set.DataDir = pick("data-dir", envData)
	set.Remote = pick("remote", envRemote)
	if set.Store == "" {
		def, err := defaultStore()
		if err != nil {
			return set, err
		}
		set.Store, set.Source["store"] = def, fromDefault
	}
	var err error
	if set.Store, err = filepath.Abs(set.Store); err != nil {
		return set, err
	}
	if set.DataDir != "" {
		if strings.TrimSpace(set.DataDir) != set.DataDir {
			// " /var/lib/app" would be a directory under the current one.
			return set, withHint(usagef("DATA_DIR %q begins or ends with white space", set.DataDir), "remove the spaces around it (a quoting mistake?)")
		}
		if set.DataDir, err = filepath.Abs(set.DataDir); err != nil {
			return set, err
		}
	}
	set.Source["timeout"] = fromDefault
	if cmdline["timeout"] {
		set.Source["timeout"] = fromFlag
	}
	return set, nil
}

// defaultStore is $XDG_DATA_HOME/statepack, else ~/.local/share/statepack.
func defaultStore() (string, error) {
	if x := os.Getenv("XDG_DATA_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "statepack"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return "", fmt.Errorf("no place for the store: HOME is not set; set STATEPACK_STORE or pass --store")
	}
	return filepath.Join(home, ".local", "share", "statepack"), nil
}

// cacheDir is where the stat cache and restore markers live.
func (set settings) cacheDir() string { return filepath.Join(set.Store, "cache") }
