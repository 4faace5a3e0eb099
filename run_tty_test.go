package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPty returns the two ends of a new pseudo-terminal.
func openPty(t *testing.T) (ptm, pts *os.File) {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { ptm.Close() })
	if err := unix.IoctlSetPointerInt(int(ptm.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetUint32(int(ptm.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	pts, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pty: %v", err)
	}
	t.Cleanup(func() { pts.Close() })
	return ptm, pts
}

// TestCtrlCReachesCommandOnce runs a session as the foreground job of a
// terminal and types Ctrl-C. The terminal delivers INT to the wrapper's
// process group: a command in that group gets it from the terminal, and
// the wrapper must not deliver it a second time; a command that moved to a
// group of its own gets it only from the wrapper. An INT sent to a wrapper
// without a terminal is passed on too (run-signals.txtar).
func TestCtrlCReachesCommandOnce(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("needs sh as the wrapped command")
	}
	t.Run("same group", func(t *testing.T) { ctrlCOnce(t) })
	t.Run("own group", func(t *testing.T) {
		if _, err := exec.LookPath("setsid"); err != nil {
			t.Skip("needs setsid")
		}
		ctrlCOnce(t, "setsid")
	})
}

func ctrlCOnce(t *testing.T, wrap ...string) {
	ptm, pts := openPty(t)
	dir := t.TempDir()
	count, ready, stop := filepath.Join(dir, "ints"), filepath.Join(dir, "ready"), filepath.Join(dir, "stop")
	// The loop runs only builtins, so the shell runs its trap as soon as
	// each INT arrives: two deliveries show as two lines.
	script := `trap 'echo int >>"$1"' INT; : >"$2"; while [ ! -e "$3" ]; do :; done; exit 7`
	args := append([]string{"run", "--agent", "tty", "--"}, wrap...)
	args = append(args, "sh", "-c", script, "sh", count, ready, stop)
	cmd := exec.Command(binary(t), args...)
	cmd.Env = []string{raceExitNow, "BOT_BOTTLE_ROOT=" + filepath.Join(dir, "root"),
		"BOTTLE_HOOK_LOG_LEVEL=error", "PATH=" + os.Getenv("PATH")}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = pts, pts, pts
	// A session of its own with the pty as controlling terminal makes the
	// wrapper's process group the terminal's foreground group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	go io.Copy(io.Discard, ptm)

	waitFor(t, ready)
	if _, err := ptm.Write([]byte{0x03}); err != nil { // Ctrl-C
		t.Fatal(err)
	}
	waitFor(t, count)
	// Give a second delivery, were there one, time to arrive.
	time.Sleep(300 * time.Millisecond)
	if err := os.WriteFile(stop, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 {
		t.Errorf("run: %v, want exit status 7 from the command", err)
	}
	data, err := os.ReadFile(count)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "int\n"); n != 1 {
		t.Errorf("the command got INT %d times from one Ctrl-C, want once", n)
	}
}

func waitFor(t *testing.T, name string) {
	t.Helper()
	for start := time.Now(); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(name); err == nil {
			return
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("%s never appeared", name)
		}
	}
}
