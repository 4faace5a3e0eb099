package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The tests in this file run real containers with runc, with bottle-hook
// registered as their createRuntime and poststop hooks exactly as
// examples/oci/runc-hooks.json shows. They need root, runc and a static
// busybox (Debian: runc, busybox-static). Where these are missing they
// skip with the reason, except under CI=true, where a skip would hide that
// the runtime contract is no longer tested: there they fail.

const (
	runcExample = "examples/oci/runc-hooks.json"
	// containerTimeout bounds one runc call; the containers here live for
	// milliseconds.
	containerTimeout = 30 * time.Second
)

var containerSeq atomic.Int64

// runtimeEnv is what every container test needs, found once.
type runtimeEnv struct {
	runc    string
	busybox string
	reason  string // why containers cannot run here; "" when they can
}

var (
	probeOnce sync.Once
	probed    runtimeEnv
)

// needRuntime returns runc and busybox, or skips (fails under CI=true)
// with the reason they cannot run a container here.
func needRuntime(t *testing.T) runtimeEnv {
	t.Helper()
	probeOnce.Do(func() { probed = probeRuntime() })
	if probed.reason != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but the runc tests cannot run: %s", probed.reason)
		}
		t.Skipf("runc tests skipped: %s", probed.reason)
	}
	return probed
}

func probeRuntime() runtimeEnv {
	var env runtimeEnv
	if os.Geteuid() != 0 {
		env.reason = "not root (runc needs root here; rootless runc needs its own config)"
		return env
	}
	if env.runc = lookPath("runc", "/usr/sbin/runc", "/usr/bin/runc"); env.runc == "" {
		env.reason = "no runc in PATH (Debian package runc)"
		return env
	}
	if env.busybox = lookPath("busybox", "/bin/busybox", "/usr/bin/busybox"); env.busybox == "" {
		env.reason = "no busybox in PATH (Debian package busybox-static)"
		return env
	}
	if dynamic, err := isDynamic(env.busybox); err != nil || dynamic {
		env.reason = fmt.Sprintf("%s is not a static binary (install busybox-static)", env.busybox)
		return env
	}
	dir, err := os.MkdirTemp("", "runc-probe-")
	if err != nil {
		env.reason = err.Error()
		return env
	}
	defer os.RemoveAll(dir)
	out, err := probeContainer(env, dir)
	if err != nil {
		env.reason = fmt.Sprintf("runc cannot run a trivial container here: %v: %s",
			err, strings.TrimSpace(out))
	}
	return env
}

func probeContainer(env runtimeEnv, dir string) (string, error) {
	bundle := filepath.Join(dir, "bundle")
	if err := writeRootfs(env, bundle); err != nil {
		return "", err
	}
	spec, err := defaultSpec(env, bundle)
	if err != nil {
		return "", err
	}
	spec.Process.Args = []string{"true"}
	if err := writeConfig(bundle, spec, nil); err != nil {
		return "", err
	}
	state := filepath.Join(dir, "runc")
	id := fmt.Sprintf("bottle-probe-%d", os.Getpid())
	defer exec.Command(env.runc, "--root", state, "delete", "-f", id).Run()
	ctx, cancel := context.WithTimeout(context.Background(), containerTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, env.runc, "--root", state, "run", "--bundle", bundle, id)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func lookPath(name string, fallbacks ...string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, p := range fallbacks {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
	}
	return ""
}

func isDynamic(path string) (bool, error) {
	f, err := elf.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return true, nil
		}
	}
	return false, nil
}

// busyboxApplets are the commands the containers' scripts use.
var busyboxApplets = []string{"sh", "true", "echo", "cat", "sha256sum", "sleep"}

// writeRootfs makes bundle/rootfs: busybox and its applet links in /bin.
func writeRootfs(env runtimeEnv, bundle string) error {
	bin := filepath.Join(bundle, "rootfs", "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	src, err := os.Open(env.busybox)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(filepath.Join(bin, "busybox"), os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	if err := dst.Close(); err != nil {
		return err
	}
	for _, a := range busyboxApplets {
		if err := os.Symlink("busybox", filepath.Join(bin, a)); err != nil {
			return err
		}
	}
	return nil
}

// defaultSpec is runc's own default config for bundle (namespaces,
// mounts, capabilities of this runc version), with no terminal: the
// container has an empty network namespace and a read-only rootfs.
func defaultSpec(env runtimeEnv, bundle string) (*specs.Spec, error) {
	if out, err := exec.Command(env.runc, "spec", "--bundle", bundle).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("runc spec: %v: %s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, err
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, fmt.Errorf("runc spec output: %w", err)
	}
	spec.Process.Terminal = false
	spec.Process.Env = []string{"PATH=/bin"}
	spec.Root.Readonly = true
	return &spec, nil
}

// writeConfig writes bundle/config.json. hooks, when not nil, is written
// as given: specs.Hook drops an empty "env", and an absent env would make
// runc pass its own environment to the hooks.
func writeConfig(bundle string, spec *specs.Spec, hooks json.RawMessage) error {
	data, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	var config map[string]json.RawMessage
	if err := json.Unmarshal(data, &config); err != nil {
		return err
	}
	delete(config, "hooks")
	if hooks != nil {
		config["hooks"] = hooks
	}
	if data, err = json.MarshalIndent(config, "", "\t"); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o644)
}

// runcExampleConfig is examples/oci/runc-hooks.json, decoded with its
// hooks kept as JSON.
type runcExampleConfig struct {
	Annotations map[string]string                   `json:"annotations"`
	Hooks       map[string][]map[string]interface{} `json:"hooks"`
}

func readRuncExample(t *testing.T) runcExampleConfig {
	t.Helper()
	data, err := os.ReadFile(runcExample)
	if err != nil {
		t.Fatal(err)
	}
	var ex runcExampleConfig
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ex); err != nil {
		t.Fatalf("%s: %v", runcExample, err)
	}
	return ex
}

// exampleHooks returns the example's hooks with their path pointing at
// the bottle-hook under test.
func exampleHooks(t *testing.T, path string) json.RawMessage {
	t.Helper()
	ex := readRuncExample(t)
	for _, list := range ex.Hooks {
		for _, h := range list {
			h["path"] = path
		}
	}
	data, err := json.Marshal(ex.Hooks)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// e2e is what the container tests share: the runtime and a bottle-hook
// binary. The binary is built without the race detector, whose exit delay
// of a second would otherwise be paid by every hook call.
type e2e struct {
	rt  runtimeEnv
	bin string
}

// buildHook builds bottle-hook into dir.
func buildHook(t *testing.T, dir string) string {
	t.Helper()
	goBin := lookPath("go", filepath.Join(runtime.GOROOT(), "bin", "go"))
	if goBin == "" {
		t.Fatal("no go command to build bottle-hook with")
	}
	bin := filepath.Join(dir, progName)
	out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v: %s", err, out)
	}
	return bin
}

// hook runs bottle-hook against root, as a launcher or an approval
// pipeline would, and returns its stdout; a failure fails the test.
func (e *e2e) hook(t *testing.T, root string, args ...string) string {
	t.Helper()
	cmd := exec.Command(e.bin, append([]string{"--root", root, "--log-level", "error"}, args...)...)
	cmd.Env = []string{}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("bottle-hook %v: %v: %s", args, err, stderr.String())
	}
	return stdout.String()
}

// newBottle starts a bottle under root and returns its identity.
func (e *e2e) newBottle(t *testing.T, root, agent string) string {
	t.Helper()
	var spec struct{ Identity string }
	out := e.hook(t, root, "pre-start", "--agent", agent, "--output", "json")
	if err := json.Unmarshal([]byte(out), &spec); err != nil || spec.Identity == "" {
		t.Fatalf("pre-start output %q: %v", out, err)
	}
	return spec.Identity
}

// container is one runc container of a test, in its own bundle and with
// its own runc state root.
type container struct {
	t      *testing.T
	env    runtimeEnv
	id     string
	bundle string
	state  string
	spec   *specs.Spec
	hooks  json.RawMessage
}

// newContainer prepares a container that runs args, with bottle-hook
// registered as in the runc example. annotations replace the example's;
// nil leaves the container without annotations.
func (e *e2e) newContainer(t *testing.T, annotations map[string]string, args ...string) *container {
	t.Helper()
	dir := t.TempDir()
	c := &container{
		t:      t,
		env:    e.rt,
		id:     fmt.Sprintf("bottle-e2e-%d-%d", os.Getpid(), containerSeq.Add(1)),
		bundle: filepath.Join(dir, "bundle"),
		state:  filepath.Join(dir, "runc"),
		hooks:  exampleHooks(t, e.bin),
	}
	if err := writeRootfs(e.rt, c.bundle); err != nil {
		t.Fatal(err)
	}
	spec, err := defaultSpec(e.rt, c.bundle)
	if err != nil {
		t.Fatal(err)
	}
	spec.Process.Args = args
	spec.Annotations = annotations
	c.spec = spec
	t.Cleanup(func() {
		exec.Command(e.rt.runc, "--root", c.state, "delete", "-f", c.id).Run()
	})
	return c
}

// bind mounts a host directory into the container.
func (c *container) bind(src, dst string, readOnly bool) {
	opts := []string{"rbind", "rw"}
	if readOnly {
		opts = []string{"rbind", "ro"}
	}
	c.spec.Mounts = append(c.spec.Mounts, specs.Mount{
		Destination: dst, Type: "bind", Source: src, Options: opts,
	})
}

// start writes the config and starts "runc run" in the foreground: it
// returns once the container has exited and its poststop hooks have run.
func (c *container) start(ctx context.Context) (*exec.Cmd, *bytes.Buffer) {
	c.t.Helper()
	if err := writeConfig(c.bundle, c.spec, c.hooks); err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, c.env.runc, "--root", c.state, "run", "--bundle", c.bundle, c.id)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	return cmd, &out
}

// run runs the container to its end and returns runc's output (the
// container's too) and whether runc succeeded.
func (c *container) run() (string, bool) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), containerTimeout)
	defer cancel()
	cmd, out := c.start(ctx)
	err := cmd.Wait()
	if ctx.Err() != nil {
		c.t.Fatalf("runc run %s: no end after %s: %s", c.id, containerTimeout, out)
	}
	return out.String(), err == nil
}

func bottleAnnotations(id, root string) map[string]string {
	return map[string]string{"bot-bottle.identity": id, "bot-bottle.root": root}
}

// tree lists every path under dir with its type and mode, so that two
// listings differ when anything was created, removed or changed mode.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		paths = append(paths, fmt.Sprintf("%s %v", rel, fi.Mode()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return paths
}

// TestRuncHooks runs containers with bottle-hook registered as their
// createRuntime and poststop hooks, as examples/oci/runc-hooks.json shows,
// with "env": [] as runtimes commonly give hooks.
func TestRuncHooks(t *testing.T) {
	rt := needRuntime(t)
	e := &e2e{rt: rt, bin: buildHook(t, t.TempDir())}
	t.Run("unpreserved bottle removed at poststop", e.testUnpreserved)
	t.Run("preserved bottle kept at poststop", e.testPreserved)
	t.Run("missing bottle fails the start", e.testMissing)
	t.Run("foreign container untouched", e.testForeign)
	t.Run("live-config reads are whole versions", e.testLiveConfig)
}

func (e *e2e) testUnpreserved(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	id := e.newBottle(t, root, "runc plain")
	// The container proves that it started while its bottle existed.
	c := e.newContainer(t, bottleAnnotations(id, root), "sh", "-c", "test -d /live && echo started")
	c.bind(filepath.Join(root, "state", id, "live-config"), "/live", true)

	out, ok := c.run()
	if !ok || !strings.Contains(out, "started") {
		t.Fatalf("runc run: ok=%v, output: %s", ok, out)
	}
	if _, err := os.Lstat(filepath.Join(root, "state", id)); !os.IsNotExist(err) {
		t.Errorf("state dir after poststop: %v, want removed", err)
	}
	if out := e.hook(t, root, "session-end", id); out != "absent\n" {
		t.Errorf("session-end after poststop: %q, want absent", out)
	}
}

func (e *e2e) testPreserved(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	id := e.newBottle(t, root, "runc kept")
	dockerfile := filepath.Join(t.TempDir(), "Dockerfile")
	if err := os.WriteFile(dockerfile, []byte("FROM scratch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.hook(t, root, "post-approval", id, "--dockerfile", dockerfile)
	before := tree(t, filepath.Join(root, "state"))
	c := e.newContainer(t, bottleAnnotations(id, root), "echo", "started")

	out, ok := c.run()
	if !ok || !strings.Contains(out, "started") {
		t.Fatalf("runc run: ok=%v, output: %s", ok, out)
	}
	if after := tree(t, filepath.Join(root, "state")); !slices.Equal(before, after) {
		t.Errorf("preserved bottle changed at poststop:\nbefore %v\nafter  %v", before, after)
	}
}

func (e *e2e) testMissing(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	other := e.newBottle(t, root, "runc other")
	before := tree(t, root)
	results := t.TempDir()
	c := e.newContainer(t, bottleAnnotations("gone-abcde", root), "sh", "-c", "echo ran > /out/ran")
	c.bind(results, "/out", false)

	out, ok := c.run()
	if ok {
		t.Fatalf("runc run of a container whose bottle is missing succeeded: %s", out)
	}
	// runc quotes the hook's stderr in its own message.
	if !strings.Contains(out, "exit status 3") || !strings.Contains(out, "gone-abcde") ||
		!strings.Contains(out, "no state in") {
		t.Errorf("runc output does not carry the hook's reason: %s", out)
	}
	if _, err := os.Stat(filepath.Join(results, "ran")); !os.IsNotExist(err) {
		t.Errorf("the container's process ran: %v", err)
	}
	if after := tree(t, root); !slices.Equal(before, after) {
		t.Errorf("the root changed:\nbefore %v\nafter  %v", before, after)
	}
	if _, err := os.Stat(filepath.Join(root, "state", other, "metadata.json")); err != nil {
		t.Errorf("other bottle: %v", err)
	}
}

func (e *e2e) testForeign(t *testing.T) {
	t.Parallel()
	// No annotations and, with "env": [], no HOME or BOT_BOTTLE_ROOT: the
	// hooks have no root at all and must still let the container run.
	c := e.newContainer(t, nil, "echo", "foreign ran")
	out, ok := c.run()
	if !ok || !strings.Contains(out, "foreign ran") {
		t.Fatalf("runc run of a foreign container: ok=%v, output: %s", ok, out)
	}
}

// testLiveConfig bind-mounts a bottle's live-config directory read-only
// into a container that reads routes.yaml in a loop, recording the digest
// of each read, while the host runs approvals. Every read must be one
// whole version, and the container must see the last one without a
// restart.
func (e *e2e) testLiveConfig(t *testing.T) {
	t.Parallel()
	const approvals = 30
	root := t.TempDir()
	id := e.newBottle(t, root, "runc reader")
	inputs := t.TempDir()
	versions := map[string]int{}
	for i := 0; i <= approvals; i++ {
		versions[digest(routesVersion(i))] = i
	}
	last := digest(routesVersion(approvals))
	approve := func(i int) {
		t.Helper()
		p := filepath.Join(inputs, fmt.Sprintf("routes-%d.yaml", i))
		if err := os.WriteFile(p, routesVersion(i), 0o644); err != nil {
			t.Fatal(err)
		}
		e.hook(t, root, "post-approval", id, "--routes", p)
	}
	approve(0)

	results := t.TempDir()
	// A read that fails records the error's first word, which is no
	// version's digest. The loop is bounded in case the last version is
	// never seen.
	script := `{ echo x > /live/probe; } 2>/dev/null && echo > /out/writable
n=0
while [ $n -lt 100000 ]; do
	d=$(sha256sum /live/routes.yaml 2>&1)
	d=${d%% *}
	echo "$d" >> /out/reads
	[ "$d" = "$LAST" ] && exit 0
	n=$((n+1))
done
exit 1`
	c := e.newContainer(t, bottleAnnotations(id, root), "sh", "-c", script)
	c.spec.Process.Env = append(c.spec.Process.Env, "LAST="+last)
	c.bind(filepath.Join(root, "state", id, "live-config"), "/live", true)
	c.bind(results, "/out", false)

	ctx, cancel := context.WithTimeout(context.Background(), containerTimeout)
	defer cancel()
	cmd, out := c.start(ctx)
	reads := filepath.Join(results, "reads")
	for deadline := time.Now().Add(containerTimeout); ; time.Sleep(5 * time.Millisecond) {
		if fi, err := os.Stat(reads); err == nil && fi.Size() > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the container never read routes.yaml: %s", out)
		}
	}
	for i := 1; i <= approvals; i++ {
		approve(i)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the container did not see the last version: %v: %s", err, out)
	}

	if _, err := os.Stat(filepath.Join(results, "writable")); err == nil {
		t.Errorf("the container could write into the read-only live-config mount")
	}
	data, err := os.ReadFile(reads)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(string(data))
	seen := map[int]bool{}
	for n, d := range lines {
		v, ok := versions[d]
		if !ok {
			t.Fatalf("read %d of %d was no whole version: %q", n+1, len(lines), d)
		}
		seen[v] = true
	}
	if lines[len(lines)-1] != last {
		t.Errorf("last read %q, want version %d", lines[len(lines)-1], approvals)
	}
	t.Logf("%d reads saw %d of %d versions", len(lines), len(seen), approvals+1)
	if _, err := os.Lstat(filepath.Join(root, "state", id)); !os.IsNotExist(err) {
		t.Errorf("state dir after poststop: %v, want removed", err)
	}
}

// routesVersion is version i of routes.yaml: 64 KiB of one repeated line,
// so that a torn read would show.
func routesVersion(i int) []byte {
	line := fmt.Sprintf("# version %04d\n", i)
	return []byte(strings.Repeat(line, 65536/len(line)))
}

func digest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
