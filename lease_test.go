package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startWrapper starts a wrapper around "sleep 60" and waits until its
// bottle is listed live; the test's cleanup kills it.
func startWrapper(t *testing.T, root, agent string) (*exec.Cmd, string) {
	t.Helper()
	cmd, id := startWrapperCmd(t, root, agent, "sleep", "60")
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, id
}

type listed struct {
	Identity  string `json:"identity"`
	AgentName string `json:"agent_name"`
	Session   string `json:"session"`
}

func listBottles(t *testing.T, root string) []listed {
	t.Helper()
	out, code := hook(t, root, "list", "--output", "json")
	if code != 0 {
		t.Fatalf("list: exit %d", code)
	}
	var res struct{ Bottles []listed }
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("list output: %v", err)
	}
	return res.Bottles
}

func sessionOf(t *testing.T, root, id string) string {
	t.Helper()
	for _, b := range listBottles(t, root) {
		if b.Identity == id {
			return b.Session
		}
	}
	return "gone"
}

// TestKilledWrapperLeavesAnOrphanForGC kills a session wrapper with SIGKILL:
// its bottle turns dead and gc removes it, while a live bottle, a bottle
// never run under a wrapper, and a preserved orphan are left alone.
func TestKilledWrapperLeavesAnOrphanForGC(t *testing.T) {
	root := t.TempDir()
	victim, orphan := startWrapper(t, root, "victim")
	_, live := startWrapper(t, root, "survivor")
	keeper, preserved := startWrapper(t, root, "keeper")
	plain := newBottle(t, root, "plain")

	dockerfile := filepath.Join(t.TempDir(), "Dockerfile")
	os.WriteFile(dockerfile, []byte("FROM scratch\n"), 0o600)
	if _, code := hook(t, root, "post-approval", preserved, "--dockerfile", dockerfile); code != 0 {
		t.Fatalf("preserve: exit %d", code)
	}

	// Resuming a bottle whose lease is held is refused, by pre-start and
	// by run alike.
	if _, code := hook(t, root, "pre-start", "--resume", live); code != exitFailed {
		t.Errorf("pre-start --resume of a live bottle: exit %d, want %d", code, exitFailed)
	}
	if _, code := hook(t, root, "run", "--resume", live, "--", "true"); code != exitFailed {
		t.Errorf("run --resume of a live bottle: exit %d, want %d", code, exitFailed)
	}

	for _, w := range []*exec.Cmd{victim, keeper} {
		w.Process.Signal(syscall.SIGKILL)
		w.Wait()
	}
	if got := sessionOf(t, root, orphan); got != "dead" {
		t.Fatalf("session of the killed wrapper's bottle: %s, want dead", got)
	}
	if got := sessionOf(t, root, plain); got != "unknown" {
		t.Errorf("session of a plain pre-start: %s, want unknown", got)
	}

	// A young orphan is left for --older-than to mature.
	out, _ := hook(t, root, "gc", "--older-than", "1h")
	if strings.Contains(out, "remove-orphan") {
		t.Errorf("gc --older-than 1h removed a fresh orphan:\n%s", out)
	}
	out, code := hook(t, root, "gc", "--older-than", "0s")
	if code != 0 {
		t.Fatalf("gc: exit %d", code)
	}
	if !strings.Contains(out, "remove-orphan "+filepath.Join(root, "state", orphan)+"\n") {
		t.Errorf("gc did not remove the orphan %s:\n%s", orphan, out)
	}
	for _, id := range []string{live, plain, preserved} {
		if strings.Contains(out, id) {
			t.Errorf("gc touched %s:\n%s", id, out)
		}
		if _, err := os.Stat(filepath.Join(root, "state", id, "metadata.json")); err != nil {
			t.Errorf("bottle %s: %v", id, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(root, "state", orphan)); !os.IsNotExist(err) {
		t.Errorf("orphan %s still in state/ (err %v)", orphan, err)
	}
	if got := sessionOf(t, root, live); got != "live" {
		t.Errorf("session of the surviving wrapper's bottle: %s, want live", got)
	}
}

// TestWrapperCommandDiesWithWrapper: a command is not left running, holding
// a bottle nobody owns any more, when its wrapper is killed.
func TestWrapperCommandDiesWithWrapper(t *testing.T) {
	root := t.TempDir()
	w, _ := startWrapper(t, root, "parent")
	// The lease is taken just before the command starts.
	var pids []string
	for start := time.Now(); len(pids) == 0; pids = childrenOf(w.Process.Pid) {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("wrapper %d has no command running", w.Process.Pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
	w.Process.Signal(syscall.SIGKILL)
	w.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("command %s outlived its killed wrapper", pid)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// childrenOf lists the processes whose parent is pid.
func childrenOf(pid int) []string {
	var out []string
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		stat, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			out = append(out, d.Name())
		}
	}
	return out
}

// alive reports whether pid runs, counting a zombie as dead.
func alive(pid string) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

// TestSessionOutlivesKilledWrapperWhileItsProcessesRun: what the command
// started inherits the lease, so after the wrapper is killed the bottle
// stays live, and safe from gc, until the last of them is gone.
func TestSessionOutlivesKilledWrapperWhileItsProcessesRun(t *testing.T) {
	root := t.TempDir()
	w, id := startWrapperCmd(t, root, "daemon", "sh", "-c", "sleep 60 & wait")
	var grandchild string
	for start := time.Now(); grandchild == ""; {
		for _, child := range childrenOf(w.Process.Pid) {
			pid, _ := strconv.Atoi(child)
			if g := childrenOf(pid); len(g) > 0 {
				grandchild = g[0]
			}
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("the command's child never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	w.Process.Signal(syscall.SIGKILL)
	w.Wait()

	if got := sessionOf(t, root, id); got != "live" {
		t.Errorf("session with a process still running: %s, want live", got)
	}
	if out, _ := hook(t, root, "gc", "--older-than", "0s"); strings.Contains(out, id) {
		t.Errorf("gc touched a bottle whose session still runs:\n%s", out)
	}

	pid, _ := strconv.Atoi(grandchild)
	syscall.Kill(pid, syscall.SIGKILL)
	for start := time.Now(); sessionOf(t, root, id) != "dead"; {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("session still %s after its last process was killed", sessionOf(t, root, id))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if out, _ := hook(t, root, "gc", "--older-than", "0s"); !strings.Contains(out, "remove-orphan") {
		t.Errorf("gc left the orphan once its session was over:\n%s", out)
	}

	// A plain resume of a dead bottle makes its session unknown again:
	// its new launcher holds no lease, so gc must not take it for dead.
	w2, id2 := startWrapper(t, root, "again")
	w2.Process.Signal(syscall.SIGKILL)
	w2.Wait()
	for start := time.Now(); sessionOf(t, root, id2) != "dead"; {
		if time.Since(start) > 10*time.Second {
			t.Fatal("killed wrapper's bottle never turned dead")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, code := hook(t, root, "pre-start", "--resume", id2); code != 0 {
		t.Fatalf("plain resume: exit %d", code)
	}
	if got := sessionOf(t, root, id2); got != "unknown" {
		t.Errorf("session after a plain resume: %s, want unknown", got)
	}
}
