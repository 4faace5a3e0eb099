// Command bottle-hook owns the lifecycle state of sandboxed agent
// containers ("bottles"): it is called before a bottle starts, when an
// operator approves a change, and when the session ends, and it lets
// operators list, inspect and clean up bottles.
//
// Output policy: stdout carries only a command's result (text, JSON or an
// env file); logs go to stderr through hclog; an error is one stderr line
// "bottle-hook: ..." and an exit code: 1 the operation failed, 2 usage or
// invalid input, 3 no such bottle.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/urfave/cli/v2"

	"github.com/bot-bottle/bottle-hook/hooks"
	"github.com/bot-bottle/bottle-hook/state"
)

const progName = "bottle-hook"

// version is set at link time (-ldflags "-X main.version=..."); otherwise
// the module version from the build info is shown.
var version = ""

// Exit codes.
const (
	exitOK       = 0
	exitFailed   = 1
	exitUsage    = 2
	exitNotFound = 3
)

func main() {
	os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}

// run executes one command line and returns the exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := newApp(stdin, stdout, stderr)
	argv, err := normalizeArgs(app, args)
	if err == nil {
		err = app.Run(argv)
	} else {
		err = hooks.Usage(err)
	}
	if err == nil {
		return exitOK
	}
	var status *hooks.ErrStatus
	if errors.As(err, &status) {
		if status.Err != nil {
			fmt.Fprintf(stderr, "%s: %s\n", progName, oneLine(status.Err.Error()))
		}
		return status.Code
	}
	fmt.Fprintf(stderr, "%s: %s\n", progName, oneLine(err.Error()))
	return exitCode(err)
}

// oneLine makes an error message one line of plain text for a terminal:
// line breaks become spaces and other control characters are escaped, so
// that a name quoted in the message cannot move the cursor or recolour
// the screen.
func oneLine(msg string) string {
	var b strings.Builder
	for _, r := range msg {
		switch {
		case r == '\n':
			b.WriteByte(' ')
		case r == '\t':
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r >= 0x80 && r < 0xa0:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func exitCode(err error) int {
	switch {
	case errors.Is(err, hooks.ErrUsage), errors.Is(err, state.ErrInvalid):
		return exitUsage
	case errors.Is(err, state.ErrNotFound):
		return exitNotFound
	}
	return exitFailed
}

// cmdEnv is built once the flags are parsed and handed to each action.
type cmdEnv struct {
	hooks.Env
	stdin  io.Reader
	stdout io.Writer
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:      progName,
		Usage:     "own the lifecycle state of sandboxed agent containers",
		Version:   buildVersion(),
		Reader:    stdin,
		Writer:    stdout,
		ErrWriter: stderr,
		Flags:     globalFlags,
		// Exit codes are decided in one place, by run.
		ExitErrHandler:  func(*cli.Context, error) {},
		OnUsageError:    usageError,
		HideHelpCommand: true,
	}
	wrap := func(action actionFunc) cli.ActionFunc {
		return func(c *cli.Context) error {
			// Results go out in large writes, not one per table cell.
			out := bufio.NewWriterSize(stdout, 64<<10)
			env, err := newCmdEnv(c, stdin, out, stderr)
			if err != nil {
				return err
			}
			err = action(c, env)
			if ferr := out.Flush(); err == nil {
				err = ferr
			}
			return err
		}
	}
	app.Commands = commands(wrap)
	for _, cmd := range app.Commands {
		cmd.OnUsageError = usageError
	}
	app.Action = func(c *cli.Context) error {
		if c.NArg() > 0 {
			return hooks.Usage(fmt.Errorf("unknown command %q; see %s --help", c.Args().First(), progName))
		}
		return cli.ShowAppHelp(c)
	}
	return app
}

// usageError classes the parser's complaints as usage errors, and names
// an unknown flag the way it is typed.
func usageError(_ *cli.Context, err error, _ bool) error {
	if name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: -"); ok {
		return hooks.Usage(fmt.Errorf("unknown flag --%s", strings.TrimLeft(name, "-")))
	}
	if m := badFlagValue.FindStringSubmatch(err.Error()); m != nil {
		want := "want a duration such as 30s or 2m"
		if m[1] != "" {
			want = "want true or false"
		}
		return hooks.Usage(fmt.Errorf("--%s %s: %s", m[3], m[2], want))
	}
	return hooks.Usage(err)
}

// badFlagValue matches the flag package's refusal of a boolean or a
// duration flag's value; the tool has no flag of another parsed type.
var badFlagValue = regexp.MustCompile(
	`^invalid (boolean )?value ("[^"]*") for (?:flag )?-{1,2}([a-z0-9-]+): parse error$`)

var globalFlags = []cli.Flag{
	&cli.StringFlag{
		Name:    "root",
		Usage:   "state root `DIR` (default $HOME/.bot-bottle)",
		EnvVars: []string{"BOT_BOTTLE_ROOT"},
	},
	&cli.StringFlag{
		Name:    "log-level",
		Usage:   "log `LEVEL` on stderr: trace, debug, info, warn, error, off",
		Value:   "info",
		EnvVars: []string{"BOTTLE_HOOK_LOG_LEVEL"},
	},
	&cli.StringFlag{
		Name:    "log-format",
		Usage:   "log `FORMAT` on stderr: text or json",
		Value:   "text",
		EnvVars: []string{"BOTTLE_HOOK_LOG_FORMAT"},
	},
}

func newCmdEnv(c *cli.Context, stdin io.Reader, stdout, stderr io.Writer) (*cmdEnv, error) {
	log, err := newLogger(c.String("log-level"), c.String("log-format"), stderr)
	if err != nil {
		return nil, err
	}
	root, err := resolveRoot(c.String("root"), os.Getenv("HOME"))
	if err != nil {
		return nil, err
	}
	e := &cmdEnv{Env: hooks.Env{RootDir: root, Log: log}, stdin: stdin, stdout: stdout}
	if c.IsSet("hook-timeout") {
		if e.HookTimeout = c.Duration("hook-timeout"); e.HookTimeout <= 0 {
			return nil, hooks.Usage(fmt.Errorf("--hook-timeout %s: want a positive duration", e.HookTimeout))
		}
	}
	return e, nil
}

func newLogger(level, format string, w io.Writer) (hclog.Logger, error) {
	lvl := hclog.LevelFromString(level)
	if lvl == hclog.NoLevel {
		return nil, hooks.Usage(fmt.Errorf(
			"--log-level %q: want trace, debug, info, warn, error or off", level))
	}
	if format != "text" && format != "json" {
		return nil, hooks.Usage(fmt.Errorf("--log-format %q: want text or json", format))
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:       progName,
		Level:      lvl,
		Output:     w,
		JSONFormat: format == "json",
	}), nil
}

// resolveRoot picks the state root: the flag (or $BOT_BOTTLE_ROOT), else
// $HOME/.bot-bottle; an empty value counts as unset. It never falls back to
// the current directory.
func resolveRoot(flag, home string) (string, error) {
	if flag != "" {
		return filepath.Abs(flag)
	}
	if home == "" || !filepath.IsAbs(home) {
		return "", hooks.Usage(errors.New("no state root: set --root or BOT_BOTTLE_ROOT " +
			"(HOME is not set or not an absolute path)"))
	}
	return filepath.Join(home, ".bot-bottle"), nil
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
