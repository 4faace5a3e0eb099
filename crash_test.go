package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
)

// crashPoints are the steps at which the crashtest build can stop the
// process; each scenario is killed at each of them, at each of its first
// few occurrences.
var crashPoints = []string{
	"write.temp-written", "write.temp-synced", "write.renamed",
	"create.staged", "create.published",
	"capability.staged", "capability.marked",
	"transcript.file-copied", "transcript.swapped",
	"remove.renamed", "remove.entry",
}

// crashBinary builds bottle-hook with the crashtest tag, once per test run.
func crashBinary(t *testing.T) string {
	t.Helper()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		t.Skipf("no go toolchain at %s to build the crashtest binary", goBin)
	}
	out := filepath.Join(t.TempDir(), "bottle-hook-crashtest")
	cmd := exec.Command(goBin, "build", "-tags", "crashtest", "-o", out, ".")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build crashtest binary: %v\n%s", err, msg)
	}
	return out
}

// crashRun runs bin with the crash point armed and reports whether the
// process was killed there.
func crashRun(t *testing.T, bin, root, point string, args ...string) bool {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{raceExitNow, "BOT_BOTTLE_ROOT=" + root, "BOTTLE_HOOK_LOG_LEVEL=off",
		"BOTTLE_HOOK_CRASH_AT=" + point, "PATH=" + os.Getenv("PATH")}
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return true
		}
		return false
	}
	if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return false
}

type crashScenario struct {
	name string
	// setup prepares the root and returns the identity to act on.
	setup func(t *testing.T, root, dir string) string
	args  func(id, dir string) []string
	// check asserts what must hold right after the crash, before any
	// repair.
	check func(t *testing.T, root, id, dir string)
}

func TestCrashAtEveryPointLeavesConsistentState(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a process at every crash point; skipped with -short")
	}
	bin := crashBinary(t)
	hits := map[string]int{}
	for _, sc := range crashScenarios() {
		for _, point := range crashPoints {
			// Kill at the first occurrence of the point, then the
			// second, and so on until the call no longer reaches it.
			for n := 1; n <= 8; n++ {
				reached := false
				t.Run(fmt.Sprintf("%s/%s:%d", sc.name, point, n), func(t *testing.T) {
					root := filepath.Join(t.TempDir(), "root")
					dir := t.TempDir()
					id := sc.setup(t, root, dir)
					if reached = crashRun(t, bin, root, fmt.Sprintf("%s:%d", point, n), sc.args(id, dir)...); !reached {
						return
					}
					checkNoHalfBottles(t, root)
					sc.check(t, root, id, dir)

					// gc, then the next call, finish or clear what
					// was interrupted.
					if _, code := hook(t, root, "gc", "--older-than", "0s"); code != 0 {
						t.Fatalf("gc after the crash: exit %d", code)
					}
					checkNoLeftovers(t, root)
					checkNoHalfBottles(t, root)
					sc.check(t, root, id, dir)
				})
				if !reached {
					break
				}
				hits[point]++
			}
		}
	}
	for _, point := range crashPoints {
		if hits[point] == 0 {
			t.Errorf("no scenario reaches crash point %s", point)
		}
	}
}

func crashScenarios() []crashScenario {
	oldRoutes, newRoutes := []byte("routes: [old]\n"), []byte("routes: [new]\n")
	baseline := func(t *testing.T, root, dir string) string {
		t.Helper()
		id := newBottle(t, root, "crash")
		writeFile(t, filepath.Join(dir, "old.yaml"), oldRoutes)
		writeFile(t, filepath.Join(dir, "new.yaml"), newRoutes)
		writeFile(t, filepath.Join(dir, "Dockerfile"), []byte("FROM new\n"))
		for i := range 4 {
			writeFile(t, filepath.Join(dir, "snap", fmt.Sprintf("f%d", i)), []byte("new\n"))
		}
		if _, code := hook(t, root, "post-approval", id, "--routes", filepath.Join(dir, "old.yaml")); code != 0 {
			t.Fatalf("baseline approval: exit %d", code)
		}
		return id
	}
	return []crashScenario{
		{
			name:  "pre-start",
			setup: func(t *testing.T, root, dir string) string { return baseline(t, root, dir) },
			args:  func(string, string) []string { return []string{"pre-start", "--agent", "second"} },
			check: func(t *testing.T, root, id, dir string) {
				// The baseline bottle is untouched; a second one
				// is either whole (checked by checkNoHalfBottles)
				// or absent.
				wantFile(t, filepath.Join(root, "state", id, "live-config", "routes.yaml"), oldRoutes)
			},
		},
		{
			name:  "post-approval routes",
			setup: baseline,
			args: func(id, dir string) []string {
				return []string{"post-approval", id, "--routes", filepath.Join(dir, "new.yaml")}
			},
			check: func(t *testing.T, root, id, dir string) {
				wantFile(t, filepath.Join(root, "state", id, "live-config", "routes.yaml"), oldRoutes, newRoutes)
			},
		},
		{
			name:  "capability change",
			setup: baseline,
			args: func(id, dir string) []string {
				return []string{"post-approval", id, "--dockerfile", filepath.Join(dir, "Dockerfile"),
					"--transcript", filepath.Join(dir, "snap")}
			},
			check: func(t *testing.T, root, id, dir string) {
				sd := filepath.Join(root, "state", id)
				_, dfErr := os.Lstat(filepath.Join(sd, "Dockerfile"))
				_, tErr := os.Lstat(filepath.Join(sd, "transcript"))
				_, mErr := os.Lstat(filepath.Join(sd, ".preserve"))
				if (dfErr == nil || tErr == nil) && mErr != nil {
					t.Errorf("Dockerfile or transcript changed before the preserve marker was written")
				}
				if dfErr == nil {
					wantFile(t, filepath.Join(sd, "Dockerfile"), []byte("FROM new\n"))
				}
				if tErr == nil {
					if got := listTree(t, filepath.Join(sd, "transcript")); got != "f0 f1 f2 f3" {
						t.Errorf("transcript holds %q, want the whole new snapshot", got)
					}
				}
			},
		},
		{
			name: "snapshot replaced",
			setup: func(t *testing.T, root, dir string) string {
				id := baseline(t, root, dir)
				for i := range 2 {
					writeFile(t, filepath.Join(dir, "oldsnap", fmt.Sprintf("o%d", i)), []byte("old\n"))
				}
				if _, code := hook(t, root, "post-approval", id, "--dockerfile", filepath.Join(dir, "Dockerfile"),
					"--transcript", filepath.Join(dir, "oldsnap")); code != 0 {
					t.Fatalf("first snapshot: exit %d", code)
				}
				return id
			},
			args: func(id, dir string) []string {
				return []string{"post-approval", id, "--dockerfile", filepath.Join(dir, "Dockerfile"),
					"--transcript", filepath.Join(dir, "snap")}
			},
			check: func(t *testing.T, root, id, dir string) {
				got := listTree(t, filepath.Join(root, "state", id, "transcript"))
				if got != "o0 o1" && got != "f0 f1 f2 f3" {
					t.Errorf("transcript holds %q, want the whole old or the whole new snapshot", got)
				}
			},
		},
		{
			name:  "session-end",
			setup: baseline,
			args:  func(id, _ string) []string { return []string{"session-end", id} },
			check: func(t *testing.T, root, id, dir string) {
				// Whole or gone: checkNoHalfBottles covers the
				// rest. A bottle that is still there is unchanged.
				p := filepath.Join(root, "state", id, "live-config", "routes.yaml")
				if _, err := os.Lstat(filepath.Join(root, "state", id)); err == nil {
					wantFile(t, p, oldRoutes)
				}
			},
		},
	}
}

func writeFile(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// wantFile checks that p holds one of the versions, whole.
func wantFile(t *testing.T, p string, versions ...[]byte) {
	t.Helper()
	got, err := os.ReadFile(p)
	if err != nil {
		t.Errorf("%s: %v", p, err)
		return
	}
	for _, v := range versions {
		if bytes.Equal(got, v) {
			return
		}
	}
	t.Errorf("%s holds %q, want one of %q", p, got, versions)
}

func listTree(t *testing.T, dir string) string {
	t.Helper()
	var names []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, filepath.Base(p))
		}
		return nil
	})
	sort.Strings(names)
	return strings.Join(names, " ")
}

// checkNoHalfBottles: every bottle a reader can see in state/ has valid
// metadata and every subdirectory.
func checkNoHalfBottles(t *testing.T, root string) {
	t.Helper()
	entries, _ := os.ReadDir(filepath.Join(root, "state"))
	for _, e := range entries {
		sd := filepath.Join(root, "state", e.Name())
		data, err := os.ReadFile(filepath.Join(sd, "metadata.json"))
		var m map[string]any
		if err != nil || json.Unmarshal(data, &m) != nil {
			t.Errorf("bottle %s visible without valid metadata (%v)", e.Name(), err)
			continue
		}
		for _, sub := range []string{"egress", "git-gate", "supervise", "agent", "live-config"} {
			if fi, err := os.Lstat(filepath.Join(sd, sub)); err != nil || !fi.IsDir() {
				t.Errorf("bottle %s visible without %s/", e.Name(), sub)
			}
		}
	}
}

// checkNoLeftovers: after gc, no temporary file or interrupted removal is
// left anywhere in the root.
func checkNoLeftovers(t *testing.T, root string) {
	t.Helper()
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		name := d.Name()
		if strings.Contains(name, ".tmp-") || strings.HasPrefix(name, ".transcript.new-") {
			t.Errorf("left after gc: %s", p)
		}
		return nil
	})
	if left, _ := os.ReadDir(filepath.Join(root, ".tmp")); len(left) != 0 {
		t.Errorf(".tmp holds %d entries after gc", len(left))
	}
}
