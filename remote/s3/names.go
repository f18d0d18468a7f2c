package s3

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// CheckBucketName applies the S3 naming rules for general purpose buckets
// that an endpoint would otherwise report less clearly, so that a
// mistyped remote fails while its URL is parsed.
func CheckBucketName(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("bucket name %q must be 3 to 63 characters long", b)
	}
	for _, c := range b {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			return fmt.Errorf("bucket name %q may contain only lowercase letters, digits, dots and hyphens", b)
		}
	}
	if !isAlnum(b[0]) || !isAlnum(b[len(b)-1]) {
		return fmt.Errorf("bucket name %q must begin and end with a letter or digit", b)
	}
	if strings.Contains(b, "..") || strings.Contains(b, ".-") || strings.Contains(b, "-.") {
		return fmt.Errorf("bucket name %q has adjacent dots or a dot next to a hyphen", b)
	}
	if looksLikeIPv4(b) {
		return fmt.Errorf("bucket name %q must not be an IP address", b)
	}
	return nil
}

func isAlnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }

func looksLikeIPv4(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return false
	}
	for _, p := range parts {
		if p == "" || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	return true
}

// CleanPrefix drops empty and "." segments of a key prefix and refuses
// "..", white space around a segment and control characters, so that a
// prefix names exactly one place in the bucket and reads back the same
// in a URL.
func CleanPrefix(p string) (string, error) {
	var segs []string
	for _, seg := range strings.Split(p, "/") {
		switch seg {
		case "", ".":
			continue
		case "..":
			return "", fmt.Errorf("prefix %q must not contain \"..\"", p)
		}
		if !utf8.ValidString(seg) {
			return "", fmt.Errorf("prefix %q is not valid UTF-8", p)
		}
		if strings.TrimSpace(seg) != seg {
			return "", fmt.Errorf("prefix %q has a part that starts or ends with white space", p)
		}
		for _, c := range seg {
			if c < 0x20 || c == 0x7f {
				return "", fmt.Errorf("prefix %q contains a control character", p)
			}
		}
		segs = append(segs, seg)
	}
	return strings.Join(segs, "/"), nil
}
