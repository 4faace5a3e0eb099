package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

const hooksDExample = "examples/oci/hooks.d/bottle-hook.json"

// cmdExpand replaces $NAME and ${NAME} in each file by the script's
// variables, so that an archived container state can name $WORK and a
// minted identity.
func cmdExpand(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: expand FILE...")
	}
	for _, name := range args {
		out := os.Expand(ts.ReadFile(name), ts.Getenv)
		ts.Check(os.WriteFile(ts.MkAbs(name), []byte(out), 0o666))
	}
}

// hooksDFile is the part of the hooks.d schema 1.0.0 (as read by podman
// and CRI-O through containers/common) that the example uses.
type hooksDFile struct {
	Version string `json:"version"`
	Hook    struct {
		Path    string   `json:"path"`
		Args    []string `json:"args"`
		Env     []string `json:"env"`
		Timeout *int     `json:"timeout"`
	} `json:"hook"`
	When struct {
		Annotations map[string]string `json:"annotations"`
	} `json:"when"`
	Stages []string `json:"stages"`
}

func readHooksDExample(t *testing.T) hooksDFile {
	t.Helper()
	data, err := os.ReadFile(hooksDExample)
	if err != nil {
		t.Fatal(err)
	}
	var f hooksDFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", hooksDExample, err)
	}
	return f
}

// TestHooksDExample checks the podman / CRI-O registration: schema 1.0.0,
// matching exactly the containers that carry the identity annotation, at
// createRuntime and poststop, with the stage left to the state's status.
func TestHooksDExample(t *testing.T) {
	f := readHooksDExample(t)
	if f.Version != "1.0.0" {
		t.Errorf("version %q, want 1.0.0", f.Version)
	}
	h := f.Hook
	if !filepath.IsAbs(h.Path) || len(h.Args) == 0 || filepath.Base(h.Path) != h.Args[0] {
		t.Errorf("hook path %q, args %q: want an absolute path and its name as args[0]",
			h.Path, h.Args)
	}
	if f.Hook.Args[len(f.Hook.Args)-1] != "oci" {
		t.Errorf("args %q: want the oci command last, its stage inferred", f.Hook.Args)
	}
	if f.Hook.Env == nil || len(f.Hook.Env) != 0 {
		t.Errorf("env %q: want an explicit empty environment", f.Hook.Env)
	}
	if f.Hook.Timeout == nil || *f.Hook.Timeout <= 0 {
		t.Errorf("timeout: want a positive number of seconds")
	}
	if !slices.Equal(f.Stages, []string{"createRuntime", "poststop"}) {
		t.Errorf("stages %q, want createRuntime and poststop", f.Stages)
	}
	// containers/common matches when.annotations as key regexp => value
	// regexp against every annotation.
	matches := func(ann map[string]string) bool {
		for kre, vre := range f.When.Annotations {
			k, v := regexp.MustCompile(kre), regexp.MustCompile(vre)
			for key, value := range ann {
				if k.MatchString(key) && v.MatchString(value) {
					return true
				}
			}
		}
		return false
	}
	for _, tt := range []struct {
		ann  map[string]string
		want bool
	}{
		{map[string]string{"bot-bottle.identity": "demo-k3x9q"}, true},
		{map[string]string{"bot-bottle.identityx": "demo-k3x9q"}, false},
		{map[string]string{"xbot-bottle.identity": "demo-k3x9q"}, false},
		{map[string]string{"bot-bottle.root": "/var/lib/bot-bottle"}, false},
		{map[string]string{"io.kubernetes.pod.name": "bot-bottle.identity"}, false},
		{map[string]string{}, false},
	} {
		if got := matches(tt.ann); got != tt.want {
			t.Errorf("annotations %v: match %v, want %v", tt.ann, got, tt.want)
		}
	}
}

// TestHooksDExampleRuns calls bottle-hook as podman would with the
// example: its args, its empty environment, the state on stdin, once at
// createRuntime (status creating) and once at poststop (status stopped).
func TestHooksDExampleRuns(t *testing.T) {
	t.Parallel()
	f := readHooksDExample(t)
	e := &e2e{bin: buildHook(t, t.TempDir())}
	root := t.TempDir()
	id := e.newBottle(t, root, "hooks.d")
	args := slices.Clone(f.Hook.Args[1:])
	for i, a := range args {
		if a == "--root" {
			args[i+1] = root
		}
	}
	call := func(status string) string {
		t.Helper()
		state, _ := json.Marshal(map[string]any{
			"ociVersion": "1.0.2", "id": "podman-ctr", "status": status, "bundle": t.TempDir(),
			"annotations": map[string]string{"bot-bottle.identity": id},
		})
		cmd := exec.Command(e.bin, args...)
		cmd.Env = f.Hook.Env
		cmd.Stdin = bytes.NewReader(state)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v: %s", status, err, stderr.String())
		}
		return strings.TrimSpace(string(out))
	}
	if got := call("creating"); got != "found" {
		t.Errorf("createRuntime: got %q, want found", got)
	}
	if got := call("stopped"); got != "removed" {
		t.Errorf("poststop: got %q, want removed", got)
	}
}

// TestRuncHooksExample checks the runc / crun config.json snippet without
// a runtime; TestRuncHooks runs it for real.
func TestRuncHooksExample(t *testing.T) {
	ex := readRuncExample(t)
	if ex.Annotations["bot-bottle.identity"] == "" || !filepath.IsAbs(ex.Annotations["bot-bottle.root"]) {
		t.Errorf("annotations %v: want an identity and an absolute root", ex.Annotations)
	}
	for stage, want := range map[string]string{"createRuntime": "createRuntime", "poststop": "poststop"} {
		list := ex.Hooks[stage]
		if len(list) != 1 {
			t.Fatalf("hooks.%s: %d entries, want 1", stage, len(list))
		}
		h := list[0]
		var args []string
		for _, a := range h["args"].([]any) {
			args = append(args, a.(string))
		}
		path, _ := h["path"].(string)
		if !filepath.IsAbs(path) || len(args) < 3 || args[0] != filepath.Base(path) ||
			args[len(args)-2] != "oci" || args[len(args)-1] != want {
			t.Errorf("hooks.%s: path %q, args %q: want .../bottle-hook, bottle-hook oci %s",
				stage, path, args, want)
		}
		if env, ok := h["env"].([]any); !ok || len(env) != 0 {
			t.Errorf("hooks.%s: env %v, want []", stage, h["env"])
		}
		if timeout, ok := h["timeout"].(float64); !ok || timeout <= 0 {
			t.Errorf("hooks.%s: timeout %v, want positive seconds", stage, h["timeout"])
		}
	}
}
