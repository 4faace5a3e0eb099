package main

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// snapshot describes every path of a root with its type, mode and content
// digest, leaving out the events log, which grows with every call by
// design.
func snapshot(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if d.Name() == "events.jsonl" {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return nil
		}
		line := fmt.Sprintf("%s %v", rel, fi.Mode())
		if fi.Mode().IsRegular() {
			data, _ := os.ReadFile(p)
			line += fmt.Sprintf(" %x", sha256.Sum256(data))
		}
		lines = append(lines, line)
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestEveryCallDeliveredTwice: runtimes and compose deliver hooks at least
// once, sometimes twice. Every call, repeated, leaves the state exactly as
// the first delivery left it.
func TestEveryCallDeliveredTwice(t *testing.T) {
	root := t.TempDir()
	in := t.TempDir()
	writeFile(t, filepath.Join(in, "routes.yaml"), []byte("routes: [a]\n"))
	writeFile(t, filepath.Join(in, "allow"), []byte("a.example\n"))
	writeFile(t, filepath.Join(in, "Dockerfile"), []byte("FROM x\n"))
	writeFile(t, filepath.Join(in, "snap", "f"), []byte("turn 1\n"))
	id := newBottle(t, root, "twice")

	calls := [][]string{
		{"post-approval", id, "--routes", filepath.Join(in, "routes.yaml")},
		{"post-approval", id, "--allowlist", filepath.Join(in, "allow")},
		{"post-approval", id, "--dockerfile", filepath.Join(in, "Dockerfile"), "--transcript", filepath.Join(in, "snap")},
		{"session-end", id},
		{"pre-start", "--resume", id},
		{"session-end", id},
		{"gc", "--older-than", "0s"},
	}
	for _, args := range calls {
		first, code1 := hook(t, root, args...)
		after1 := snapshot(t, root)
		second, code2 := hook(t, root, args...)
		after2 := snapshot(t, root)
		if code1 != 0 || code2 != 0 {
			t.Fatalf("%v: exit %d then %d", args, code1, code2)
		}
		if after1 != after2 {
			t.Errorf("%v delivered twice changed the state:\nafter one:\n%s\nafter two:\n%s", args, after1, after2)
		}
		if args[0] == "session-end" && strings.TrimSpace(second) != "kept" && strings.TrimSpace(second) != "absent" {
			t.Errorf("%v delivered twice: %q then %q", args, first, second)
		}
	}
}

// TestSessionEndRacingWrapper ends a bottle from outside while its wrapper
// is running the session: the bottle ends up gone and whole-or-nothing,
// and the wrapper still exits with its command's status.
func TestSessionEndRacingWrapper(t *testing.T) {
	const rounds = 10
	root := t.TempDir()
	for round := range rounds {
		// The command runs until told to finish, which happens as the
		// outside session end starts, so the two race.
		release := filepath.Join(t.TempDir(), "release")
		w, id := startWrapperCmd(t, root, "racer", "sh", "-c",
			`while [ ! -e "$1" ]; do sleep 0.01; done`, "sh", release)
		var wg sync.WaitGroup
		wg.Add(1)
		var endCode int
		go func() { defer wg.Done(); _, endCode = hook(t, root, "session-end", id) }()
		writeFile(t, release, nil)
		err := w.Wait()
		wg.Wait()
		if err != nil {
			t.Errorf("round %d: wrapper: %v", round, err)
		}
		if endCode != 0 {
			t.Errorf("round %d: outside session-end: exit %d", round, endCode)
		}
		if _, err := os.Lstat(filepath.Join(root, "state", id)); !os.IsNotExist(err) {
			t.Errorf("round %d: bottle %s still there (err %v)", round, id, err)
		}
		checkNoHalfBottles(t, root)
	}
	if left, _ := os.ReadDir(filepath.Join(root, ".tmp")); len(left) != 0 {
		t.Errorf(".tmp holds %d leftovers, want none", len(left))
	}
}

// startWrapperCmd starts "run --agent AGENT -- ARGV..." and waits until its
// bottle is listed live.
func startWrapperCmd(t *testing.T, root, agent string, argv ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(binary(t), append([]string{"run", "--agent", agent, "--"}, argv...)...)
	cmd.Env = []string{raceExitNow, "BOT_BOTTLE_ROOT=" + root, "BOTTLE_HOOK_LOG_LEVEL=error", "PATH=" + os.Getenv("PATH")}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, b := range listBottles(t, root) {
			if b.AgentName == agent && b.Session == "live" {
				return cmd, b.Identity
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Kill()
	t.Fatalf("bottle of %q never listed live", agent)
	return nil, ""
}
