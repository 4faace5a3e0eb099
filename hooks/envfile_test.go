package hooks_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/compose-spec/compose-go/v2/dotenv"

	"github.com/bot-bottle/bottle-hook/hooks"
)

// Each env file in these tests opens with this variable, so that a value
// that expands $X, ${X} or a command shows up as a mismatch instead of
// silently expanding to "".
var preamble = hooks.EnvVar{Name: "X", Value: "leak"}

// acceptedValues must all be encoded, and read back unchanged by both
// compose and sh.
var acceptedValues = []string{
	"",
	"plain",
	"with space",
	"  leading and trailing  ",
	"it's",
	"'",
	"''",
	"'quoted'",
	`"`,
	`say "hi"`,
	`$`,
	`$X`,
	`${X}`,
	`$$`,
	`$(echo pwned)`,
	"`echo pwned`",
	`#`,
	`#start`,
	`a #b`,
	`a#b`,
	`a # b #`,
	`\`,
	`a\b`,
	`a\\b`,
	`\\`,
	`a\`,
	`a\\`,
	`a\\\`,
	`C:\dir\`,
	`\n\t\r\a\v\f\0101`,
	`\$X`,
	`\"`,
	`\'`,
	`!`,
	`!!`,
	`*`,
	`~`,
	`~/x`,
	`a=b`,
	`=`,
	`==`,
	`é`,
	`😀`,
	"naïve café 😀",
	"\u0085 nel, \u00a0 nbsp, \u2028 ls",
	"\ufeff",
	`{}`,
	`; && | < > &`,
	`%s %v`,
	// Combinations that need double quotes: a single quote, or an odd
	// run of trailing backslashes, with what double quotes must escape.
	`it's "$X"`,
	`it's ${X} and $(echo pwned)`,
	`it's \`,
	`it's \\`,
	`it's \n`,
	`it's \$X`,
	`it's \"`,
	`'$'`,
	`'#' "#" \#`,
	`$X\`,
	`"quoted"\`,
	"it's !*~=# é😀",
	// Combinations that single quotes carry.
	"`$(echo pwned)` ${X} \"#\" \\ !*~= é😀",
	`\\\"\$`,
}

// refusedValues must all be refused, with an error that contains want.
var refusedValues = []struct {
	value, want string
}{
	{"it's `echo pwned`", "backtick"},
	{"'`", "backtick"},
	{"`a\\", "backtick"},
	{"`'$\"\\", "backtick"},
	{"\n", "control character U+000A"},
	{"a\nb", "control character U+000A"},
	{"\t", "control character U+0009"},
	{"a\rb", "control character U+000D"},
	{"a\x00b", "control character U+0000"},
	{"\x7f", "control character U+007F"},
	{"\x1b[31m", "control character U+001B"},
	{"it's\n", "control character U+000A"},
	{"\xff", "not valid UTF-8"},
	{"a\xc3", "not valid UTF-8"},
	{"\xed\xa0\x80", "not valid UTF-8"},
}

func TestEnvFileRoundTrip(t *testing.T) {
	for _, v := range acceptedValues {
		t.Run(fmt.Sprintf("%q", v), func(t *testing.T) {
			if _, err := hooks.EncodeEnvValue(v); err != nil {
				t.Fatalf("EncodeEnvValue(%q): got error %q, want none", v, err)
			}
			checkReaders(t, []hooks.EnvVar{
				preamble,
				{Name: "VALUE", Value: v},
				{Name: "AFTER", Value: "after"},
			})
		})
	}
}

func TestEncodeEnvValueRefuses(t *testing.T) {
	for _, tc := range refusedValues {
		t.Run(fmt.Sprintf("%q", tc.value), func(t *testing.T) {
			got, err := hooks.EncodeEnvValue(tc.value)
			if err == nil {
				t.Fatalf("EncodeEnvValue(%q): got %q, want an error", tc.value, got)
			}
			checkOneLine(t, err, tc.want)
		})
	}
}

func TestWriteEnvFileRefusedWritesNothing(t *testing.T) {
	for _, tc := range refusedValues {
		t.Run(fmt.Sprintf("%q", tc.value), func(t *testing.T) {
			var w countingWriter
			err := hooks.WriteEnvFile(&w, []hooks.EnvVar{
				{Name: "GOOD", Value: "good"},
				{Name: "BAD", Value: tc.value},
				{Name: "LATER", Value: "later"},
			})
			if err == nil {
				t.Fatalf("WriteEnvFile: got no error, want one for %q", tc.value)
			}
			checkOneLine(t, err, tc.want)
			checkOneLine(t, err, "BAD=")
			if w.calls != 0 || w.bytes != 0 {
				t.Errorf("WriteEnvFile: got %d writes of %d bytes, want none",
					w.calls, w.bytes)
			}
		})
	}
}

// TestEnvFileRandomValues checks random values over an alphabet of the
// characters that sh or compose treat specially: every value is either
// refused for a documented reason or read back unchanged by both readers.
func TestEnvFileRandomValues(t *testing.T) {
	const count, batch = 2000, 500
	rng := rand.New(rand.NewPCG(0x5eed, 0xb0771e))
	var accepted []hooks.EnvVar
	refusals := map[string]int{}
	for i := range count {
		v := randomValue(rng)
		reason := wantRefusal(v)
		_, err := hooks.EncodeEnvValue(v)
		switch {
		case err != nil && reason == "":
			t.Errorf("EncodeEnvValue(%q): got error %q, want none", v, err)
		case err == nil && reason != "":
			t.Errorf("EncodeEnvValue(%q): got no error, want %q", v, reason)
		case err != nil:
			checkOneLine(t, err, reason)
			refusals[reason]++
		default:
			accepted = append(accepted, hooks.EnvVar{
				Name: fmt.Sprintf("V%04d", i), Value: v,
			})
		}
	}
	// A generator that stopped producing either kind would make this test
	// pass without checking anything.
	if len(accepted) < count/2 {
		t.Errorf("got %d accepted values of %d, want at least %d",
			len(accepted), count, count/2)
	}
	for _, reason := range []string{"backtick", "control character", "not valid UTF-8"} {
		if refusals[reason] == 0 {
			t.Errorf("got no value refused for %q, want some", reason)
		}
	}
	for start := 0; start < len(accepted); start += batch {
		vars := accepted[start:min(start+batch, len(accepted))]
		t.Run(fmt.Sprintf("batch%d", start/batch), func(t *testing.T) {
			checkReaders(t, append([]hooks.EnvVar{preamble}, vars...))
		})
	}
}

func TestLaunchSpecEnvRoundTrip(t *testing.T) {
	root := `/home/o'brien/my "bottles" $HOME #1 ${X}`
	id := "demo-agent-k3x9q"
	dir := root + "/state/" + id
	spec := &hooks.LaunchSpec{
		Identity:       id,
		AgentName:      `Démo "Agent" it's #1 $X`,
		ComposeProject: "bottle-" + id,
		Resumed:        true,
		StateDir:       dir,
		Dirs: hooks.Dirs{
			Egress:     dir + "/egress",
			GitGate:    dir + "/git-gate",
			Supervise:  dir + "/supervise",
			Agent:      dir + "/agent",
			LiveConfig: dir + "/live-config",
			Transcript: dir + "/transcript",
		},
		Image:      "bot-bottle-rebuilt-" + id + ":latest",
		Dockerfile: dir + "/Dockerfile",
		Transcript: dir + "/transcript/snapshot",
	}
	var buf bytes.Buffer
	if err := spec.Write(&buf, hooks.FormatEnv); err != nil {
		t.Fatalf("Write(env): got error %q, want none", err)
	}
	vars := spec.EnvVars()
	if len(vars) == 0 {
		t.Fatal("EnvVars: got no variables, want some")
	}
	path := filepath.Join(t.TempDir(), "spec.env")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, vars)
}

// FuzzEncodeEnvValue checks that EncodeEnvValue never panics, refuses with
// a one-line error, and that compose reads back exactly what it accepts.
func FuzzEncodeEnvValue(f *testing.F) {
	for _, v := range acceptedValues {
		f.Add(v)
	}
	for _, tc := range refusedValues {
		f.Add(tc.value)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if _, err := hooks.EncodeEnvValue(v); err != nil {
			checkOneLine(t, err, "")
			return
		}
		vars := []hooks.EnvVar{preamble, {Name: "VALUE", Value: v}}
		var buf bytes.Buffer
		if err := hooks.WriteEnvFile(&buf, vars); err != nil {
			t.Fatalf("WriteEnvFile: got error %q for an accepted value", err)
		}
		got, err := dotenv.ParseWithLookup(&buf, noLookup)
		if err != nil {
			t.Fatalf("compose: got error %q, want none; file:\n%s", err, buf.String())
		}
		checkVars(t, "compose", got, vars)
	})
}

// checkReaders writes vars with WriteEnvFile and checks that compose and
// every shell read them back unchanged.
func checkReaders(t *testing.T, vars []hooks.EnvVar) {
	t.Helper()
	var buf bytes.Buffer
	if err := hooks.WriteEnvFile(&buf, vars); err != nil {
		t.Fatalf("WriteEnvFile: got error %q, want none", err)
	}
	path := filepath.Join(t.TempDir(), "spec.env")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, vars)
}

// checkFile checks that compose and every shell read the env file at path
// as exactly vars.
func checkFile(t *testing.T, path string, vars []hooks.EnvVar) {
	t.Helper()
	// GetEnvFromFile is what compose's --env-file calls. An empty
	// environment keeps this process's variables out of the expansion.
	got, err := dotenv.GetEnvFromFile(map[string]string{}, []string{path})
	if err != nil {
		t.Errorf("compose: got error %q, want none", err)
	} else {
		checkVars(t, "compose", got, vars)
	}
	for _, sh := range shells() {
		t.Run(sh.name, func(t *testing.T) {
			if sh.skip != "" {
				t.Skip(sh.skip)
			}
			checkVars(t, sh.name, readWithShell(t, sh.argv, path, vars), vars)
		})
	}
}

// checkVars reports every difference between what reader read, got, and
// want. got may have other variables only when reader is a shell, which
// sets a few of its own.
func checkVars(t *testing.T, reader string, got map[string]string, want []hooks.EnvVar) {
	t.Helper()
	for _, v := range want {
		g, ok := got[v.Name]
		switch {
		case !ok:
			t.Errorf("%s: got %s unset, want %q", reader, v.Name, v.Value)
		case g != v.Value:
			t.Errorf("%s: got %s=%q, want %q", reader, v.Name, g, v.Value)
		}
	}
	if reader == "compose" && len(got) != len(want) {
		t.Errorf("%s: got %d variables, want %d: %q", reader, len(got), len(want), got)
	}
}

// shellScript sources the env file $1 and prints, for each other argument,
// "x" and the value of that variable if it is set, or nothing if it is not,
// each followed by a NUL byte so that any value comes through unchanged.
const shellScript = `set -a
. "$1"
set +a
shift
for __n do
	eval "__s=\${$__n+x} __v=\${$__n-}"
	printf '%s%s\0' "$__s" "$__v"
done`

type shell struct {
	name string
	argv []string
	skip string // why this shell cannot run here, or ""
}

// shells lists the shells that read env files in these tests.
func shells() []shell {
	list := []shell{{name: "sh", argv: []string{"/bin/sh"}}}
	if p, err := exec.LookPath("bash"); err == nil {
		list = append(list, shell{name: "bash-posix", argv: []string{p, "--posix"}})
	} else {
		list = append(list, shell{name: "bash-posix", skip: "bash is not installed"})
	}
	if p, err := exec.LookPath("busybox"); err == nil {
		list = append(list, shell{name: "busybox-sh", argv: []string{p, "sh"}})
	} else {
		list = append(list, shell{name: "busybox-sh", skip: "busybox is not installed"})
	}
	return list
}

// readWithShell sources the env file at path in a shell started by argv,
// with an empty environment in an empty directory, and returns the
// variables of vars that it set.
func readWithShell(
	t *testing.T, argv []string, path string, vars []hooks.EnvVar,
) map[string]string {
	t.Helper()
	args := slices.Concat(argv[1:], []string{"-c", shellScript, "sh", path})
	for _, v := range vars {
		args = append(args, v.Name)
	}
	cmd := exec.Command(argv[0], args...)
	cmd.Env = []string{}
	// A value misread as code could redirect to a file: keep it here.
	cmd.Dir = t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: got error %v, want none; stderr: %q", argv[0], err, stderr.String())
	}
	if stderr.Len() != 0 {
		t.Errorf("%s: got stderr %q, want none", argv[0], stderr.String())
	}
	fields := strings.Split(stdout.String(), "\x00")
	if len(fields) != len(vars)+1 || fields[len(vars)] != "" {
		t.Fatalf("%s: got %d NUL-terminated fields, want %d; stdout: %q",
			argv[0], len(fields)-1, len(vars), stdout.String())
	}
	got := map[string]string{}
	for i, v := range vars {
		if value, ok := strings.CutPrefix(fields[i], "x"); ok {
			got[v.Name] = value
		}
	}
	return got
}

// checkOneLine checks that err is one line and contains want.
func checkOneLine(t *testing.T, err error, want string) {
	t.Helper()
	msg := err.Error()
	if strings.ContainsAny(msg, "\n\r") {
		t.Errorf("got error %q, want one line", msg)
	}
	if !strings.Contains(msg, want) {
		t.Errorf("got error %q, want it to contain %q", msg, want)
	}
}

// wantRefusal states which values the env format cannot carry: those that
// neither single quotes nor escaped double quotes carry to both readers.
// It returns the reason an error must give, or "".
func wantRefusal(v string) string {
	trailing := len(v) - len(strings.TrimRight(v, `\`))
	needsDouble := strings.Contains(v, "'") || trailing%2 == 1
	switch {
	case !utf8.ValidString(v):
		return "not valid UTF-8"
	case strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return "control character"
	case needsDouble && strings.Contains(v, "`"):
		return "backtick"
	}
	return ""
}

// common and rare are the pieces random values are made of: common ones
// are what sh or compose treat specially, rare ones are refused.
var (
	common = []string{
		"'", `"`, `\`, `\`, `$`, "`", `#`, ` `, `{`, `}`, `(`, `)`, `!`,
		`*`, `~`, `=`, `;`, `&`, `|`, `<`, `>`, `?`, `[`, `]`, `%`, `a`,
		`n`, `0`, `X`, `_`, `é`, `😀`, "\u0085", "\u00a0", `${X}`, `$(`,
		`\$`, `\\`, `\"`, `\'`, `\n`,
	}
	rare = []string{"\n", "\t", "\r", "\x00", "\x7f", "\xff", "\xc3"}
)

// randomValue returns a value of up to 12 pieces, each rare one time in 60.
func randomValue(rng *rand.Rand) string {
	var b strings.Builder
	for range rng.IntN(13) {
		if rng.IntN(60) == 0 {
			b.WriteString(rare[rng.IntN(len(rare))])
		} else {
			b.WriteString(common[rng.IntN(len(common))])
		}
	}
	return b.String()
}

func noLookup(string) (string, bool) { return "", false }

// countingWriter counts what is written to it.
type countingWriter struct {
	calls, bytes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.calls++
	w.bytes += len(p)
	return len(p), nil
}
