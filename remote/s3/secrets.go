package s3

import (
	"os"
	"slices"
	"strings"
	"sync"
)

// minRedacted is the shortest secret that messages are scrubbed of.
// Real secrets are far longer (AWS: 40 characters, MinIO: at least 8);
// scrubbing a dummy secret such as "s" would mangle every message.
const minRedacted = 8

// secretEnv are the environment variables whose values are secrets.
var secretEnv = []string{"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", EnvSSECustomerKey}

// noted holds every secret value this process has read from any source,
// for Redact.
var noted struct {
	sync.Mutex
	values []string
}

// noteSecrets adds values to those Redact masks; values too short to be
// real secrets are skipped (see minRedacted).
func noteSecrets(values ...string) {
	noted.Lock()
	defer noted.Unlock()
	for _, v := range values {
		if len(v) >= minRedacted && !slices.Contains(noted.values, v) {
			noted.values = append(noted.values, v)
		}
	}
}

// knownSecrets returns the secret values Redact masks: those noted, and
// those in the environment (even when no S3 client was made).
func knownSecrets() []string {
	noted.Lock()
	out := slices.Clone(noted.values)
	noted.Unlock()
	for _, name := range secretEnv {
		if v := os.Getenv(name); len(v) >= minRedacted && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	// Longest first: a secret that contains another is masked whole.
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// Redact masks every S3 secret this process knows of in text: those of
// the configurations its clients were made with, those the credentials
// chain handed out (a profile of the shared credentials file, an IAM
// role, a web identity), and those in the environment. Every S3 error
// passes through it; remote.Redact adds the userinfo of URLs, for
// whatever else statepack prints about a remote.
func Redact(text string) string {
	for _, s := range knownSecrets() {
		text = strings.ReplaceAll(text, s, "<redacted>")
	}
	return text
}
