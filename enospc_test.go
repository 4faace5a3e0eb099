package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// mountSmallTmpfs mounts a tmpfs of size bytes on a fresh directory, for
// the test's lifetime. Without the privilege to mount it skips, except in
// CI, where the disk-full proof must run.
func mountSmallTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0755"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount a tmpfs for the disk-full test: %v (CI must run it as root)", err)
		}
		t.Skipf("cannot mount a tmpfs (%v): run as root to test a full disk", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// fillDisk writes a file until the file system is full.
func fillDisk(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	// Single bytes, to use up the last partial block.
	for {
		if _, err := f.Write([]byte{0}); err != nil {
			break
		}
	}
}

// TestFullDiskLeavesOldContent: when the disk fills up, every write leaves
// the old content in place, no temporary file, and one error line that
// says the disk is full.
func TestFullDiskLeavesOldContent(t *testing.T) {
	mnt := mountSmallTmpfs(t, "2m")
	root := filepath.Join(mnt, "root")
	id := newBottle(t, root, "full")
	in := t.TempDir()
	old := []byte("routes: [old]\n")
	writeFile(t, filepath.Join(in, "old.yaml"), old)
	if _, code := hook(t, root, "post-approval", id, "--routes", filepath.Join(in, "old.yaml"), "--allowlist", filepath.Join(in, "old.yaml")); code != 0 {
		t.Fatalf("baseline: exit %d", code)
	}
	big := bytes.Repeat([]byte("# filler line of a routes file\n"), 100000) // 3 MiB
	writeFile(t, filepath.Join(in, "big.yaml"), big)
	writeFile(t, filepath.Join(in, "Dockerfile"), []byte("FROM x\n"))
	writeFile(t, filepath.Join(in, "snap", "f"), bytes.Repeat([]byte("x"), 3<<20))

	sd := filepath.Join(root, "state", id)
	cases := []struct {
		name string
		args []string
	}{
		{"routes", []string{"post-approval", id, "--routes", filepath.Join(in, "big.yaml")}},
		{"allowlist", []string{"post-approval", id, "--allowlist", filepath.Join(in, "big.yaml")}},
		{"transcript", []string{"post-approval", id, "--dockerfile", filepath.Join(in, "Dockerfile"), "--transcript", filepath.Join(in, "snap")}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stderr, code := hookStderr(t, root, c.args...)
			if code != exitFailed {
				t.Errorf("exit %d, want %d", code, exitFailed)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if len(lines) != 1 || !strings.HasSuffix(lines[0], ": disk is full") {
				t.Errorf("stderr %q, want one line ending in \"disk is full\"", stderr)
			}
			wantFile(t, filepath.Join(sd, "live-config", "routes.yaml"), old)
			wantFile(t, filepath.Join(sd, "live-config", "allowlist"), old)
			if _, err := os.Lstat(filepath.Join(sd, "transcript")); err == nil {
				t.Errorf("a transcript appeared although its copy failed")
			}
			checkNoLeftovers(t, root)
		})
	}

	// With the disk already full to the last byte, even a small write
	// fails cleanly.
	fillDisk(t, mnt)
	writeFile(t, filepath.Join(in, "new.yaml"), []byte("routes: [new]\n"))
	stderr, code := hookStderr(t, root, "post-approval", id, "--routes", filepath.Join(in, "new.yaml"))
	if code != exitFailed || !strings.Contains(stderr, "disk is full") {
		t.Errorf("full disk: exit %d, stderr %q", code, stderr)
	}
	wantFile(t, filepath.Join(sd, "live-config", "routes.yaml"), old)
	checkNoLeftovers(t, root)

	// A start on a full disk creates no bottle and leaves nothing behind.
	stderr, code = hookStderr(t, root, "pre-start", "--agent", "late")
	if code != exitFailed || !strings.HasSuffix(strings.TrimSpace(stderr), "disk is full") {
		t.Errorf("pre-start on a full disk: exit %d, stderr %q", code, stderr)
	}
	entries, _ := os.ReadDir(filepath.Join(root, "state"))
	if len(entries) != 1 {
		t.Errorf("state/ holds %d bottles after a failed start, want 1", len(entries))
	}
	checkNoLeftovers(t, root)
}

// hookStderr runs one bottle-hook process and returns its stderr and exit
// code.
func hookStderr(t *testing.T, root string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = []string{raceExitNow, "BOT_BOTTLE_ROOT=" + root, "BOTTLE_HOOK_LOG_LEVEL=off", "PATH=" + os.Getenv("PATH")}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return stderr.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return stderr.String(), 0
}
