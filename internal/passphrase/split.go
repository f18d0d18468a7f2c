package passphrase

import (
	"errors"
	"strings"
	"unicode"
)

// SplitCommand splits a password command into a program and its
// arguments without a shell, as restic does for RESTIC_PASSWORD_COMMAND:
// words are separated by white space; single quotes keep everything up to
// the next single quote; double quotes keep everything up to the next
// unescaped double quote, where \" and \\ stand for " and \; outside
// quotes a backslash keeps the next character. Quoted and unquoted parts
// next to each other form one word, and "" is an empty word. Nothing
// else is special: no variables, globs, pipes or redirections, so
// `sh -c '...'` is the way to ask for those.
func SplitCommand(command string) ([]string, error) {
	var (
		words  []string
		word   strings.Builder
		inWord bool
		quote  rune
		escape bool
	)
	for _, c := range command {
		switch {
		case escape:
			if quote == '"' && c != '"' && c != '\\' {
				word.WriteRune('\\')
			}
			word.WriteRune(c)
			escape = false
		case quote == '\'':
			if c == '\'' {
				quote = 0
			} else {
				word.WriteRune(c)
			}
		case quote == '"':
			switch c {
			case '"':
				quote = 0
			case '\\':
				escape = true
			default:
				word.WriteRune(c)
			}
		case c == '\'' || c == '"':
			quote, inWord = c, true
		case c == '\\':
			escape, inWord = true, true
		case unicode.IsSpace(c):
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		default:
			word.WriteRune(c)
			inWord = true
		}
	}
	switch {
	case escape:
		return nil, errors.New("command ends with a backslash")
	case quote == '\'':
		return nil, errors.New("single-quoted string not terminated")
	case quote == '"':
		return nil, errors.New("double-quoted string not terminated")
	}
	if inWord {
		words = append(words, word.String())
	}
	if len(words) == 0 {
		return nil, errors.New("command is empty")
	}
	return words, nil
}
