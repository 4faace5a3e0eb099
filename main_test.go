package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/rogpeppe/go-internal/testscript"
)

var update = flag.Bool("u", false, "update golden files in testdata/script")

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		progName: func() { os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr)) },
	})
}

func TestScripts(t *testing.T) {
	compatDir, err := filepath.Abs("testdata/compat")
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:           "testdata/script",
		UpdateScripts: *update,
		Setup: func(env *testscript.Env) error {
			// Each script gets its own state root; HOME points at an
			// empty work dir so the default root is never the tester's.
			env.Setenv("BOT_BOTTLE_ROOT", env.WorkDir+"/root")
			env.Setenv("HOME", env.WorkDir+"/home")
			env.Setenv("BOTTLE_HOOK_LOG_LEVEL", "warn")
			env.Setenv("COMPAT", compatDir)
			// A race-enabled binary otherwise sleeps a second at exit.
			env.Setenv("GORACE", "atexit_sleep_ms=0")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"loadenv": cmdLoadenv,
			"redact":  cmdRedact,
			"mode":    cmdMode,
			"expand":  cmdExpand,
		},
	})
}

// cmdLoadenv reads an env file written by "pre-start --output env" with
// Docker Compose's own env-file parser and sets each variable in the
// script's environment.
func cmdLoadenv(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: loadenv FILE")
	}
	vars, err := dotenv.ParseWithLookup(strings.NewReader(ts.ReadFile(args[0])), nil)
	ts.Check(err)
	for name, value := range vars {
		ts.Setenv(name, value)
	}
}

var timestamp = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`)

// cmdRedact replaces RFC 3339 UTC timestamps in a file by TIMESTAMP, so that
// a golden file can be compared byte for byte.
func cmdRedact(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: redact FILE")
	}
	out := timestamp.ReplaceAllString(ts.ReadFile(args[0]), "TIMESTAMP")
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), []byte(out), 0o666))
}

// cmdMode checks the permission bits of each path, without following a
// final symlink.
func cmdMode(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: mode PERM PATH...")
	}
	want, err := strconv.ParseUint(args[0], 8, 32)
	ts.Check(err)
	for _, p := range args[1:] {
		fi, err := os.Lstat(ts.MkAbs(p))
		ts.Check(err)
		got := uint64(fi.Mode().Perm())
		if (got == want) == neg {
			ts.Fatalf("%s: mode %s, want %s%s", p, fmt.Sprintf("%04o", got), map[bool]string{true: "not "}[neg], args[0])
		}
	}
}
