package hooks

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// EnvVar is one variable of an env file.
type EnvVar struct {
	Name, Value string
}

// EncodeEnvValue quotes v so that POSIX sh (". FILE") and Docker Compose's
// env-file parser both read back exactly v. Single quotes carry any text to
// both, except a single quote itself and an odd run of trailing backslashes
// (Compose reads the last one as escaping the closing quote). Double quotes
// carry such a value, with \, " and $ escaped by a backslash that both
// readers remove, unless it has a backtick: sh needs one escaped and Compose
// would keep that backslash. Such a value, and any control character,
// cannot be carried identically and is refused.
func EncodeEnvValue(v string) (string, error) {
	if !utf8.ValidString(v) {
		return "", fmt.Errorf("not valid UTF-8")
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return "", fmt.Errorf("control character %U cannot be carried by an env file", r)
		}
	}
	if !strings.Contains(v, "'") && !oddTrailingBackslashes(v) {
		return "'" + v + "'", nil
	}
	if !strings.Contains(v, "`") {
		return `"` + dquoteEscaper.Replace(v) + `"`, nil
	}
	return "", fmt.Errorf("a value with a backtick and a single quote " +
		"or a trailing backslash is read differently by sh and by compose")
}

// dquoteEscaper escapes what sh and Compose both unescape in double quotes.
var dquoteEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `\$`)

func oddTrailingBackslashes(v string) bool {
	n := len(v) - len(strings.TrimRight(v, `\`))
	return n%2 == 1
}

// WriteEnvFile writes vars as NAME='value' lines. It checks every value
// before writing anything, so a refused value leaves w untouched.
func WriteEnvFile(w io.Writer, vars []EnvVar) error {
	var b strings.Builder
	for _, v := range vars {
		q, err := EncodeEnvValue(v.Value)
		if err != nil {
			return fmt.Errorf("env output: %s=%q: %v", v.Name, v.Value, err)
		}
		b.WriteString(v.Name + "=" + q + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// CheckEnvVars reports the first value that WriteEnvFile would refuse.
func CheckEnvVars(vars []EnvVar) error {
	return WriteEnvFile(io.Discard, vars)
}
