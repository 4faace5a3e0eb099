package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// normalizeArgs lets flags stand anywhere on a command line, as operators
// type them. urfave/cli stops reading flags at the first positional
// argument and would take "post-approval ID --routes F" as three
// arguments, silently dropping the flag. So the command line is reordered
// before parsing: global flags before the command, the command's own flags
// next, then "--" and the positional arguments. A "--" typed by the user
// still ends flags; everything after it stays a positional argument, in
// order. Unknown flags are kept among the flags, where the parser refuses
// them. A flag given twice, or a flag that needs a value and has none, is
// refused here, since the parser would keep the last value silently or
// take the next word for the value.
func normalizeArgs(app *cli.App, args []string) ([]string, error) {
	if len(args) < 2 {
		return args, nil
	}
	globals := flagArity(app.Flags)
	seen := map[string]bool{}
	take := func(arity map[string]bool, rest []string, j int) ([]string, error) {
		a := rest[j]
		name := flagName(a)
		if _, known := arity[name]; known && seen[name] && name != "help" && name != "h" {
			return nil, fmt.Errorf("flag --%s given twice", name)
		}
		seen[name] = true
		n := takes(arity, a)
		if n == 2 && (j+1 >= len(rest) || rest[j+1] == "--") {
			return nil, fmt.Errorf("flag needs an argument: %s", a)
		}
		return rest[j : j+n], nil
	}
	out := []string{args[0]}
	i := 1
	for i < len(args) && isFlag(args[i]) {
		tokens, err := take(globals, args, i)
		if err != nil {
			return nil, err
		}
		out = append(out, tokens...)
		i += len(tokens)
	}
	if i >= len(args) {
		return out, nil
	}
	cmd := app.Command(args[i])
	if cmd == nil || cmd.SkipFlagParsing {
		return append(out, args[i:]...), nil
	}
	own := flagArity(cmd.Flags)
	var hoisted, flags, positional []string
	rest := args[i+1:]
	for j := 0; j < len(rest); j++ {
		a := rest[j]
		switch {
		case a == "--":
			positional = append(positional, rest[j+1:]...)
			j = len(rest)
		case isFlag(a):
			dst := &flags
			arity := own
			if _, ok := globals[flagName(a)]; ok {
				dst, arity = &hoisted, globals
			}
			tokens, err := take(arity, rest, j)
			if err != nil {
				return nil, err
			}
			*dst = append(*dst, tokens...)
			j += len(tokens) - 1
		case commandTakesCommand[cmd.Name]:
			// The first word of a wrapped command ends our flags:
			// what follows belongs to that command.
			positional = append(positional, rest[j:]...)
			j = len(rest)
		default:
			positional = append(positional, a)
		}
	}
	out = append(out, hoisted...)
	out = append(out, args[i])
	out = append(out, flags...)
	if len(positional) > 0 {
		out = append(out, "--")
		out = append(out, positional...)
	}
	return out, nil
}

// commandTakesCommand names the commands whose arguments are a command line
// of their own, whose flags must not be taken for ours.
var commandTakesCommand = map[string]bool{"run": true}

func isFlag(a string) bool { return len(a) > 1 && a[0] == '-' && a != "--" }

func flagName(a string) string {
	name := strings.TrimLeft(a, "-")
	name, _, _ = strings.Cut(name, "=")
	return name
}

// takes returns how many tokens a flag occupies: two for a flag that takes
// a value given as the next token, one otherwise.
func takes(arity map[string]bool, a string) int {
	if strings.Contains(a, "=") {
		return 1
	}
	if hasValue, ok := arity[flagName(a)]; ok && hasValue {
		return 2
	}
	return 1
}

// flagArity maps every name of every flag to whether it takes a value.
func flagArity(flags []cli.Flag) map[string]bool {
	m := map[string]bool{"help": false, "h": false}
	for _, f := range flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			m[n] = !isBool
		}
	}
	return m
}
