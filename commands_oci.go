package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/bot-bottle/bottle-hook/hooks"
)

// ociCommand is the command an OCI runtime calls as a hook. Unlike the
// others it does not resolve its state root before it runs: the root may
// come from the container's annotations, known only once stdin is read.
func ociCommand() *cli.Command {
	return &cli.Command{
		Name:      "oci",
		Usage:     "act as an OCI runtime hook (createRuntime, prestart, poststop)",
		UsageText: "bottle-hook oci [STAGE] < STATE",
		Description: "Reads the container state JSON that the runtime writes on stdin and\n" +
			"acts on the bottle named by its bot-bottle.identity annotation, under\n" +
			"the root of its bot-bottle.root annotation or --root. createRuntime and\n" +
			"prestart fail when the bottle does not exist; poststop ends its session.\n" +
			"Without STAGE it is read from the state's status (creating, stopped). A\n" +
			"container without the annotation is ignored. Prints found, ignored, or\n" +
			"the session-end outcome (kept, removed, absent).\n\n" +
			"Examples:\n" +
			"   bottle-hook oci createRuntime < state.json\n" +
			"   bottle-hook --root /var/lib/bot-bottle oci poststop < state.json\n" +
			"   bottle-hook oci --output json < state.json",
		Flags: []cli.Flag{
			&cli.DurationFlag{
				Name:  "hook-timeout",
				Usage: "time `LIMIT` for each session-end extension hook at poststop",
				Value: hooks.OCIHookTimeout,
			},
			outputFlag(hooks.FormatText, hooks.FormatJSON),
		},
		Action: oci,
	}
}

func oci(c *cli.Context) error {
	// The runtime writes the state before it waits for us: read it all
	// first, so that it never sees a broken pipe, whatever we decide.
	data, readErr := hooks.ReadOCIInput(c.App.Reader, hooks.MaxOCIStateSize, hooks.OCIReadTimeout)

	if c.NArg() > 1 {
		return wantArgs(c, "[STAGE]")
	}
	f, err := format(c, hooks.FormatText, hooks.FormatJSON)
	if err != nil {
		return err
	}
	log, err := newLogger(c.String("log-level"), c.String("log-format"), c.App.ErrWriter)
	if err != nil {
		return err
	}
	if readErr != nil {
		return readErr
	}
	req := hooks.OCIRequest{
		Stage: c.Args().First(),
		State: data,
		Root:  c.String("root"),
		Home:  os.Getenv("HOME"),
	}
	env := &hooks.Env{Log: log, HookTimeout: c.Duration("hook-timeout")}
	if env.HookTimeout <= 0 {
		return hooks.Usage(fmt.Errorf("--hook-timeout %s: want a positive duration",
			env.HookTimeout))
	}
	res, err := hooks.OCI(env, req)
	if err != nil {
		return err
	}
	return res.Write(c.App.Writer, f)
}
