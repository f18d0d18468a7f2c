package remote_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/statepack/statepack/remote"
)

func TestParseURL(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	s3 := func(bucket, prefix string) remote.URL {
		return remote.URL{Kind: remote.KindS3, Bucket: bucket, Prefix: prefix}
	}
	dir := func(p string) remote.URL { return remote.URL{Kind: remote.KindDir, Path: p} }
	cases := []struct {
		in   string
		want remote.URL
	}{
		{"s3://bucket", s3("bucket", "")},
		{"s3://bucket/", s3("bucket", "")},
		{"s3://my.bucket-1/some/prefix", s3("my.bucket-1", "some/prefix")},
		{"s3://bucket/some/prefix/", s3("bucket", "some/prefix")},
		{"s3://bucket//a//b/./c/", s3("bucket", "a/b/c")},
		{"S3://bucket/p", s3("bucket", "p")},
		{"s3://abc/team:ci/x?y", s3("abc", "team:ci/x?y")},
		{"file:///srv/statepack", dir("/srv/statepack")},
		{"file:///srv/state%20pack/", dir("/srv/state pack")},
		{"file://localhost/srv/x", dir("/srv/x")},
		{"/srv/statepack", dir("/srv/statepack")},
		{"/srv/../srv/./statepack/", dir("/srv/statepack")},
		{"remote", dir(filepath.Join(wd, "remote"))},
		{"./a/b", dir(filepath.Join(wd, "a/b"))},
		{"../x", dir(filepath.Join(filepath.Dir(wd), "x"))},
		{"~/states", dir(filepath.Join(home, "states"))},
		{"/a/b://c", dir("/a/b:/c")},
		{"my:dir", dir(filepath.Join(wd, "my:dir"))},
	}
	for _, c := range cases {
		got, err := remote.ParseURL(c.in)
		if err != nil {
			t.Errorf("ParseURL(%q): %v", c.in, err)
			continue
		}
		if got != c.want {
			t.Errorf("ParseURL(%q) = %+v, want %+v", c.in, got, c.want)
		}
		again, err := remote.ParseURL(got.String())
		if err != nil || again != got {
			t.Errorf("ParseURL(%q).String() = %q re-parses to %+v, %v", c.in, got.String(), again, err)
		}
	}
}

func TestParseURLErrors(t *testing.T) {
	cases := []struct {
		in   string
		want string // in the message
	}{
		{"", "empty"},
		{"   ", "empty"},
		{"s3://", "no bucket"},
		{"s3:///prefix", "no bucket"},
		{"s3:bucket", "malformed"},
		{"s3://ab", "3 to 63"},
		{"s3://" + strings.Repeat("a", 64), "3 to 63"},
		{"s3://My-Bucket", "lowercase"},
		{"s3://under_score", "lowercase"},
		{"s3://-bucket", "begin and end"},
		{"s3://bucket-", "begin and end"},
		{"s3://a..b", "adjacent dots"},
		{"s3://a.-b", "adjacent dots"},
		{"s3://192.168.1.1", "IP address"},
		{"s3://bucket/a/../b", `".."`},
		{"s3://bucket/..", `".."`},
		{"s3://bucket/a\nb", "control character"},
		{"s3://bucket/a\xffb", "UTF-8"},
		{"file://host/path", `host "host"`},
		{"file://", "no absolute path"},
		{"file:relative", "malformed"},
		{"file:///x?y=1", "query"},
		{"gs://bucket", `unsupported scheme "gs"`},
		{"http://example.com/x", "use --remote s3://x with AWS_ENDPOINT_URL=http://example.com"},
		{"https://minio:9000/states/ci/", "use --remote s3://states/ci with AWS_ENDPOINT_URL=https://minio:9000"},
		{"http://minio:9000", "goes in AWS_ENDPOINT_URL and the remote is s3://bucket[/prefix]"},
		{"/a\x00b", "NUL"},
	}
	for _, c := range cases {
		u, err := remote.ParseURL(c.in)
		if err == nil {
			t.Errorf("ParseURL(%q) = %+v, want an error", c.in, u)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, c.want) || strings.Contains(msg, "\n") {
			t.Errorf("ParseURL(%q) error %q: want one line containing %q", c.in, msg, c.want)
		}
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"s3://bucket", "s3://bucket/a/b", "s3://b.c-d/x//y/./z/", "file:///x/y", "file://h/x",
		"/abs/path", "rel/path", "~/x", "gs://x", "s3:", "file:", "", "a://b", "s3://bucket/..",
		"file:///%00", "s3://bucket/\x00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := remote.ParseURL(s)
		if err != nil {
			return
		}
		again, err := remote.ParseURL(u.String())
		if err != nil {
			t.Fatalf("ParseURL(%q) = %+v, but its String %q does not parse: %v", s, u, u.String(), err)
		}
		if again != u {
			t.Fatalf("ParseURL(%q) = %+v; String %q parses to %+v", s, u, u.String(), again)
		}
		switch u.Kind {
		case remote.KindS3:
			if u.Bucket == "" || strings.HasPrefix(u.Prefix, "/") || strings.HasSuffix(u.Prefix, "/") {
				t.Fatalf("ParseURL(%q) = %+v: bad bucket or prefix", s, u)
			}
		case remote.KindDir:
			if !filepath.IsAbs(u.Path) {
				t.Fatalf("ParseURL(%q) = %+v: path not absolute", s, u)
			}
		default:
			t.Fatalf("ParseURL(%q) = %+v: unknown kind", s, u)
		}
	})
}
