package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// binary returns the path of the bottle-hook command that testscript.Main
// put in PATH.
func binary(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath(progName)
	if err != nil {
		t.Fatalf("find %s: %v", progName, err)
	}
	return p
}

// hook runs one bottle-hook process against root and returns its stdout and
// exit code.
func hook(t *testing.T, root string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = []string{raceExitNow, "BOT_BOTTLE_ROOT=" + root, "BOTTLE_HOOK_LOG_LEVEL=error", "PATH=" + os.Getenv("PATH")}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	if stderr.Len() > 0 && code == 0 {
		t.Errorf("%v: unexpected stderr: %s", args, stderr.String())
	}
	return stdout.String(), code
}

func newBottle(t *testing.T, root, agent string) string {
	t.Helper()
	out, code := hook(t, root, "pre-start", "--agent", agent, "--output", "json")
	if code != 0 {
		t.Fatalf("pre-start: exit %d", code)
	}
	var spec struct{ Identity string }
	if err := json.Unmarshal([]byte(out), &spec); err != nil {
		t.Fatalf("pre-start output: %v", err)
	}
	return spec.Identity
}

func TestParallelPreStartsYieldDistinctBottles(t *testing.T) {
	const n = 200
	root := t.TempDir()
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i] = newBottle(t, root, "same agent")
		}()
	}
	wg.Wait()

	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Errorf("identity %q minted twice", id)
		}
		seen[id] = true
		if _, err := os.Stat(filepath.Join(root, "state", id, "metadata.json")); err != nil {
			t.Errorf("bottle %q: %v", id, err)
		}
	}
	entries, err := os.ReadDir(filepath.Join(root, "state"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != n {
		t.Errorf("state/ holds %d entries, want %d", len(entries), n)
	}
	staging, _ := os.ReadDir(filepath.Join(root, ".tmp"))
	if len(staging) != 0 {
		t.Errorf(".tmp holds %d leftovers, want none", len(staging))
	}
}

// TestLiveConfigReadersSeeWholeVersions reads routes.yaml in a tight loop
// while approvals replace it; every read must be one whole version, with
// the contract mode, never empty or missing.
func TestLiveConfigReadersSeeWholeVersions(t *testing.T) {
	const approvals = 30
	root := t.TempDir()
	id := newBottle(t, root, "reader")
	dir := t.TempDir()
	version := func(i int) []byte {
		// 64 KiB per version, so that a torn write would show.
		line := fmt.Sprintf("# version %04d\n", i)
		return []byte(strings.Repeat(line, 65536/len(line)))
	}
	first := filepath.Join(dir, "routes-0.yaml")
	os.WriteFile(first, version(0), 0o600)
	if _, code := hook(t, root, "post-approval", id, "--routes", first); code != 0 {
		t.Fatalf("first approval: exit %d", code)
	}

	live := filepath.Join(root, "state", id, "live-config", "routes.yaml")
	stop := make(chan struct{})
	var reads, bad atomic.Int64
	var last atomic.Value
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			fi, err := os.Stat(live)
			data, rerr := os.ReadFile(live)
			reads.Add(1)
			switch {
			case err != nil || rerr != nil:
				t.Errorf("read %d: %v %v", reads.Load(), err, rerr)
				bad.Add(1)
			case fi.Mode().Perm() != 0o644:
				t.Errorf("read %d: mode %o", reads.Load(), fi.Mode().Perm())
				bad.Add(1)
			case !isWholeVersion(data, version):
				t.Errorf("read %d: torn or empty content (%d bytes)", reads.Load(), len(data))
				bad.Add(1)
			default:
				last.Store(string(data[:15]))
			}
			if bad.Load() > 5 {
				return
			}
		}
	}()
	for i := 1; i <= approvals; i++ {
		p := filepath.Join(dir, fmt.Sprintf("routes-%d.yaml", i))
		os.WriteFile(p, version(i), 0o600)
		if _, code := hook(t, root, "post-approval", id, "--routes", p); code != 0 {
			t.Errorf("approval %d: exit %d", i, code)
		}
	}
	time.Sleep(10 * time.Millisecond)
	close(stop)
	wg.Wait()

	if got, want := last.Load(), fmt.Sprintf("# version %04d\n", approvals); got != want {
		t.Errorf("last version seen %q, want %q", got, want)
	}
	if reads.Load() < approvals {
		t.Errorf("only %d reads during %d approvals; the reader did not overlap", reads.Load(), approvals)
	}
}

func isWholeVersion(data []byte, version func(int) []byte) bool {
	var i int
	if _, err := fmt.Sscanf(string(data), "# version %04d\n", &i); err != nil {
		return false
	}
	return bytes.Equal(data, version(i))
}

// TestSessionEndRacingApproval runs a session end and an approval on the
// same bottle at once, many times: the bottle ends up whole or gone, never
// partial, and an approval that lost the race creates nothing.
func TestSessionEndRacingApproval(t *testing.T) {
	const rounds = 20
	root := t.TempDir()
	allow := filepath.Join(t.TempDir(), "allow")
	os.WriteFile(allow, []byte("api.example.com\n"), 0o600)
	for round := range rounds {
		id := newBottle(t, root, "race")
		var endOut string
		var endCode, approvalCode int
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); endOut, endCode = hook(t, root, "session-end", id) }()
		go func() { defer wg.Done(); _, approvalCode = hook(t, root, "post-approval", id, "--allowlist", allow) }()
		wg.Wait()

		if endCode != 0 || strings.TrimSpace(endOut) != "removed" {
			t.Fatalf("round %d: session-end %q exit %d, want removed", round, endOut, endCode)
		}
		if approvalCode != 0 && approvalCode != exitNotFound {
			t.Fatalf("round %d: post-approval exit %d, want 0 or %d", round, approvalCode, exitNotFound)
		}
		if _, err := os.Lstat(filepath.Join(root, "state", id)); !os.IsNotExist(err) {
			t.Fatalf("round %d: state dir of a removed bottle is back (err %v)", round, err)
		}
	}
	if left, _ := os.ReadDir(filepath.Join(root, ".tmp")); len(left) != 0 {
		t.Errorf(".tmp holds %d leftovers, want none", len(left))
	}
}

// raceExitNow spares each process of a race-enabled test binary the
// second the race runtime otherwise sleeps at exit.
const raceExitNow = "GORACE=atexit_sleep_ms=0"
