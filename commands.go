package main

import (
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bot-bottle/bottle-hook/hooks"
	"github.com/bot-bottle/bottle-hook/state"
)

type actionFunc func(*cli.Context, *cmdEnv) error

func outputFlag(formats ...hooks.Format) *cli.StringFlag {
	names := make([]string, len(formats))
	for i, f := range formats {
		names[i] = string(f)
	}
	return &cli.StringFlag{
		Name:  "output",
		Usage: "result `FORMAT` on stdout: " + strings.Join(names, ", "),
		Value: string(hooks.FormatText),
	}
}

var hookTimeoutFlag = &cli.DurationFlag{
	Name:  "hook-timeout",
	Usage: "time `LIMIT` for each extension hook in hooks.d, after which it is killed",
	Value: hooks.DefaultHookTimeout,
}

// preStartFlags are shared by pre-start and run.
func preStartFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "agent", Usage: "agent `NAME` of a new bottle"},
		&cli.StringFlag{Name: "resume", Usage: "resume the bottle `IDENTITY` instead"},
		&cli.StringFlag{Name: "cwd", Usage: "host `DIR` the agent works on (recorded as given)"},
		&cli.BoolFlag{Name: "copy-cwd", Usage: "copy the cwd into the bottle instead of mounting it"},
		&cli.StringFlag{Name: "backend", Usage: "`BACKEND`: docker or smolmachines"},
		&cli.StringFlag{Name: "label", Usage: "operator's `LABEL` for dashboards"},
		&cli.StringFlag{Name: "color", Usage: "operator's `COLOR` for dashboards"},
		imageFlag,
		hookTimeoutFlag,
	}
}

var imageFlag = &cli.StringFlag{
	Name:    "image",
	Usage:   "base agent `IMAGE` for bottles without their own Dockerfile",
	Value:   hooks.DefaultImage,
	EnvVars: []string{"BOTTLE_HOOK_IMAGE"},
}

func commands(wrap func(actionFunc) cli.ActionFunc) []*cli.Command {
	return []*cli.Command{
		{
			Name:  "pre-start",
			Usage: "create a bottle (or resume one) and print its launch spec",
			UsageText: "bottle-hook pre-start --agent NAME [flags]\n" +
				"   bottle-hook pre-start --resume IDENTITY [flags]",
			Description: "Prints the launch spec on stdout: text, JSON, or an env file that\n" +
				"docker compose --env-file and sh both read.\n\n" +
				"Examples:\n" +
				"   bottle-hook pre-start --agent demo --cwd /srv/project\n" +
				"   bottle-hook pre-start --agent demo --output env > bottle.env\n" +
				"   bottle-hook pre-start --resume demo-k3x9q --output json",
			Flags: append(preStartFlags(),
				outputFlag(hooks.FormatText, hooks.FormatJSON, hooks.FormatEnv)),
			Action: wrap(preStart),
		},
		{
			Name:      "run",
			Usage:     "run a command as a whole bottle session: pre-start, COMMAND, session-end",
			UsageText: "bottle-hook run [pre-start flags] -- COMMAND [ARG...]",
			Description: "Starts the bottle (new, or --resume), runs COMMAND with the launch spec\n" +
				"in its environment (the variables of pre-start --output env), and ends\n" +
				"the session when COMMAND exits, whatever the reason. INT, TERM and HUP\n" +
				"are passed to COMMAND; its exit status (128+N for signal N) is ours.\n" +
				"While it runs, the bottle's session lease is held: list shows it live,\n" +
				"gc leaves it alone, and a second resume is refused. Prints nothing.\n\n" +
				"Examples:\n" +
				"   bottle-hook run --agent demo -- docker compose up\n" +
				"   bottle-hook run --resume demo-k3x9q -- sh -c 'echo $BOTTLE_STATE_DIR'",
			Flags:  preStartFlags(),
			Action: wrap(runSession),
		},
		{
			Name:  "post-approval",
			Usage: "apply what an operator approved to an existing bottle",
			UsageText: "bottle-hook post-approval IDENTITY [--routes FILE] [--allowlist FILE]\n" +
				"   bottle-hook post-approval IDENTITY --dockerfile FILE [--transcript DIR]",
			Description: "Replaces live-config files and/or applies a capability change. A FILE\n" +
				"of - reads stdin; an empty file empties its live-config file. Prints one\n" +
				"line per live-config file (replaced or unchanged), then the image tag to\n" +
				"rebuild after a capability change.\n\n" +
				"Examples:\n" +
				"   bottle-hook post-approval demo-k3x9q --routes routes.yaml\n" +
				"   printf 'api.example.com\\n' | bottle-hook post-approval demo-k3x9q --allowlist -\n" +
				"   bottle-hook post-approval demo-k3x9q --dockerfile Dockerfile --transcript ./snap",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "routes", Usage: "new egress routes `FILE` (YAML)"},
				&cli.StringFlag{Name: "allowlist", Usage: "new egress allowlist `FILE`"},
				&cli.StringFlag{Name: "dockerfile", Usage: "per-bottle Dockerfile `FILE` (needs FROM)"},
				&cli.StringFlag{Name: "transcript", Usage: "transcript snapshot `DIR` to copy (with --dockerfile)"},
				hookTimeoutFlag,
				outputFlag(hooks.FormatText, hooks.FormatJSON),
			},
			Action: wrap(postApproval),
		},
		{
			Name:      "session-end",
			Usage:     "keep a preserved bottle, remove any other",
			UsageText: "bottle-hook session-end IDENTITY [--force]",
			Description: "Prints kept, removed or absent.\n\n" +
				"Examples:\n" +
				"   bottle-hook session-end demo-k3x9q\n" +
				"   bottle-hook session-end demo-k3x9q --force",
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "force", Usage: "remove the bottle even if it is preserved, or if a hook failed"},
				hookTimeoutFlag,
				outputFlag(hooks.FormatText, hooks.FormatJSON),
			},
			Action: wrap(sessionEnd),
		},
		{
			Name:      "list",
			Usage:     "list every bottle, broken ones with the reason",
			UsageText: "bottle-hook list [--output json]",
			Description: "Prints a table (nothing when there are no bottles) or JSON.\n\n" +
				"Examples:\n" +
				"   bottle-hook list\n" +
				"   bottle-hook list --output json",
			Flags:  []cli.Flag{outputFlag(hooks.FormatText, hooks.FormatJSON)},
			Action: wrap(list),
		},
		{
			Name:      "inspect",
			Usage:     "show one bottle in full",
			UsageText: "bottle-hook inspect IDENTITY [--output json]",
			Description: "Prints key: value lines or JSON.\n\n" +
				"Examples:\n" +
				"   bottle-hook inspect demo-k3x9q\n" +
				"   bottle-hook inspect demo-k3x9q --output json",
			Flags:  []cli.Flag{imageFlag, outputFlag(hooks.FormatText, hooks.FormatJSON)},
			Action: wrap(inspect),
		},
		{
			Name:      "gc",
			Usage:     "finish interrupted removals and sweep debris",
			UsageText: "bottle-hook gc [--dry-run] [--older-than D]",
			Description: "Prints one line per item collected (\"would ...\" on a dry run).\n\n" +
				"Examples:\n" +
				"   bottle-hook gc --dry-run\n" +
				"   bottle-hook gc --older-than 24h",
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "dry-run", Usage: "only print what would be collected"},
				&cli.StringFlag{Name: "older-than", Value: "1h",
					Usage: "minimum `AGE` of a state dir without metadata (e.g. 30m, 24h, 7d)"},
				outputFlag(hooks.FormatText, hooks.FormatJSON),
			},
			Action: wrap(gc),
		},
		{
			Name:      "version",
			Usage:     "print the version",
			UsageText: "bottle-hook version",
			Action: func(c *cli.Context) error {
				if err := wantArgs(c); err != nil {
					return err
				}
				_, err := fmt.Fprintf(c.App.Writer, "%s %s\n", progName, c.App.Version)
				return err
			},
		},
		ociCommand(),
	}
}

// wantArgs checks the positional arguments against the names a command
// takes, so that a surplus or missing argument is refused, not ignored.
func wantArgs(c *cli.Context, names ...string) error {
	if c.NArg() == len(names) {
		return nil
	}
	if len(names) == 0 {
		return hooks.Usage(fmt.Errorf("%s takes no arguments, got %q", c.Command.Name, c.Args().Slice()))
	}
	return hooks.Usage(fmt.Errorf("%s takes %s, got %d arguments", c.Command.Name,
		strings.Join(names, " "), c.NArg()))
}

func format(c *cli.Context, allowed ...hooks.Format) (hooks.Format, error) {
	return hooks.ParseFormat(c.String("output"), allowed...)
}

func preStart(c *cli.Context, env *cmdEnv) error {
	if err := wantArgs(c); err != nil {
		return err
	}
	f, err := format(c, hooks.FormatText, hooks.FormatJSON, hooks.FormatEnv)
	if err != nil {
		return err
	}
	req, err := preStartRequest(c, f)
	if err != nil {
		return err
	}
	spec, err := hooks.PreStart(&env.Env, req)
	if err != nil {
		return err
	}
	return spec.Write(env.stdout, f)
}

func runSession(c *cli.Context, env *cmdEnv) error {
	req, err := preStartRequest(c, hooks.FormatText)
	if err != nil {
		return err
	}
	return hooks.Run(&env.Env, hooks.RunRequest{PreStart: req, Command: c.Args().Slice()})
}

// preStartRequest reads the flags shared by pre-start and run.
func preStartRequest(c *cli.Context, f hooks.Format) (hooks.PreStartRequest, error) {
	req := hooks.PreStartRequest{
		Resume: c.String("resume"),
		Image:  c.String("image"),
		Output: f,
		New: state.NewBottle{
			AgentName: c.String("agent"),
			Cwd:       c.String("cwd"),
			CopyCwd:   c.Bool("copy-cwd"),
			Backend:   c.String("backend"),
			Label:     c.String("label"),
			Color:     c.String("color"),
		},
	}
	if c.IsSet("resume") {
		if err := state.ValidateIdentity(req.Resume); err != nil {
			return req, err
		}
		for _, name := range []string{"agent", "cwd", "copy-cwd", "backend", "label", "color"} {
			if c.IsSet(name) {
				return req, hooks.Usage(fmt.Errorf(
					"--resume takes the stored launch record; --%s is not allowed with it", name))
			}
		}
	} else if !c.IsSet("agent") {
		return req, hooks.Usage(fmt.Errorf("%s needs --agent NAME or --resume IDENTITY", c.Command.Name))
	}
	return req, nil
}

func postApproval(c *cli.Context, env *cmdEnv) error {
	if err := wantArgs(c, "IDENTITY"); err != nil {
		return err
	}
	f, err := format(c, hooks.FormatText, hooks.FormatJSON)
	if err != nil {
		return err
	}
	req := hooks.ApprovalRequest{
		Identity:      c.Args().First(),
		Routes:        c.String("routes"),
		Allowlist:     c.String("allowlist"),
		Dockerfile:    c.String("dockerfile"),
		TranscriptDir: c.String("transcript"),
		Stdin:         env.stdin,
	}
	for _, name := range []string{"routes", "allowlist", "dockerfile", "transcript"} {
		if c.IsSet(name) && c.String(name) == "" {
			return hooks.Usage(fmt.Errorf("--%s needs a path (use - for stdin)", name))
		}
	}
	res, err := hooks.PostApproval(&env.Env, req)
	if err != nil {
		return err
	}
	return res.Write(env.stdout, f)
}

func sessionEnd(c *cli.Context, env *cmdEnv) error {
	if err := wantArgs(c, "IDENTITY"); err != nil {
		return err
	}
	f, err := format(c, hooks.FormatText, hooks.FormatJSON)
	if err != nil {
		return err
	}
	res, err := hooks.SessionEnd(&env.Env, c.Args().First(), c.Bool("force"))
	if err != nil {
		return err
	}
	return res.Write(env.stdout, f)
}

// listGCPercent is the garbage collection target of list (GOGC): the heap
// may grow by a quarter of what is live before a collection.
const listGCPercent = 25

func list(c *cli.Context, env *cmdEnv) error {
	if err := wantArgs(c); err != nil {
		return err
	}
	f, err := format(c, hooks.FormatText, hooks.FormatJSON)
	if err != nil {
		return err
	}
	// A listing reads one bottle after another and keeps almost nothing
	// of each, so its live heap stays small however many bottles there
	// are; a low collection target keeps the garbage of those reads from
	// growing the heap to the 4 MiB the default lets it reach first. A
	// GOGC in the environment is left to rule.
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(listGCPercent)
	}
	lw := hooks.NewListWriter(env.stdout, f)
	if err := hooks.List(&env.Env, lw.Add); err != nil {
		return err
	}
	return lw.Close()
}

func inspect(c *cli.Context, env *cmdEnv) error {
	if err := wantArgs(c, "IDENTITY"); err != nil {
		return err
	}
	f, err := format(c, hooks.FormatText, hooks.FormatJSON)
	if err != nil {
		return err
	}
	res, err := hooks.Inspect(&env.Env, c.Args().First(), c.String("image"))
	if err != nil {
		return err
	}
	return res.Write(env.stdout, f)
}

func gc(c *cli.Context, env *cmdEnv) error {
	if err := wantArgs(c); err != nil {
		return err
	}
	f, err := format(c, hooks.FormatText, hooks.FormatJSON)
	if err != nil {
		return err
	}
	age, err := parseAge(c.String("older-than"))
	if err != nil {
		return err
	}
	res, err := hooks.GC(&env.Env, c.Bool("dry-run"), age)
	if res != nil {
		if werr := res.Write(env.stdout, f); err == nil {
			err = werr
		}
	}
	return err
}

// parseAge reads a Go duration, or a whole number of days as "7d".
func parseAge(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(days, "%d", &n); err == nil && n >= 0 && fmt.Sprint(n) == days {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, hooks.Usage(fmt.Errorf("--older-than %q: want a duration such as 30m, 24h or 7d", s))
	}
	return d, nil
}
