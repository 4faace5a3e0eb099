package hooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/bot-bottle/bottle-hook/state"
)

// DefaultHookTimeout bounds one extension hook.
const DefaultHookTimeout = 30 * time.Second

// hookPipeGrace is how long a hook's children may keep its output pipes
// open after the hook itself exited.
const hookPipeGrace = time.Second

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// hookInput gives the hooks of an event their BOTTLE_* variables and their
// standard input (the bottle's metadata).
type hookInput func() (vars []EnvVar, stdin []byte, err error)

// bottleInput is the hook input of bottle b, with extra variables.
func bottleInput(b *state.Bottle, extra ...EnvVar) hookInput {
	return func() ([]EnvVar, []byte, error) {
		vars := append(NewLaunchSpec(b, DefaultImage, false).EnvVars(), extra...)
		return vars, state.MarshalMetadata(b.Meta), nil
	}
}

// HookRun reports one extension hook that was run.
type HookRun struct {
	Name       string  `json:"name"`
	ExitCode   int     `json:"exit_code"`
	DurationMS float64 `json:"duration_ms"`
	Error      string  `json:"error,omitempty"`
}

// HookError reports an extension hook that failed: it ran and exited
// non-zero, timed out, or could not be started.
type HookError struct {
	Event string
	Run   HookRun
}

func (e *HookError) Error() string {
	if e.Run.Error != "" {
		return fmt.Sprintf("%s hook %s: %s", e.Event, e.Run.Name, e.Run.Error)
	}
	return fmt.Sprintf("%s hook %s: exit status %d", e.Event, e.Run.Name, e.Run.ExitCode)
}

// extensions runs the operator's executables in <root>/hooks.d/<event>/,
// one at a time in byte order of their names, each with a minimal
// environment (PATH, HOME, LANG, vars and BOTTLE_EVENT), stdin as its
// standard input, a timeout after which it and all its children are
// killed, and its output logged line by line under its name. Files that
// are not regular executables, or that others may write, are skipped with
// a warning. The first failing hook stops the run and is returned as a
// *HookError, after the runs so far. input is called only when the event
// has hooks to run, so an event without any reads nothing more; its error
// is returned as is.
func (e *Env) extensions(event string, input hookInput) ([]HookRun, error) {
	log := e.logger().Named(event).Named("hooks")
	names, dir := e.hookNames(event, log)
	if len(names) == 0 {
		return nil, nil
	}
	vars, stdin, err := input()
	if err != nil {
		return nil, err
	}
	env := hookEnv(event, vars)
	timeout := e.HookTimeout
	if timeout <= 0 {
		timeout = DefaultHookTimeout
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if e.Interrupt != nil {
		go func() {
			select {
			case <-e.Interrupt:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	var runs []HookRun
	for _, name := range names {
		run := runHook(ctx, filepath.Join(dir, name), name, env, stdin, timeout,
			log.With("hook", name))
		runs = append(runs, run)
		if run.ExitCode != 0 || run.Error != "" {
			return runs, &HookError{Event: event, Run: run}
		}
	}
	return runs, nil
}

// hookNames lists the safe hooks of an event, sorted by byte order.
func (e *Env) hookNames(event string, log hclog.Logger) ([]string, string) {
	base := filepath.Join(e.RootDir, "hooks.d")
	dir := filepath.Join(base, event)
	for _, d := range []string{base, dir} {
		fi, err := os.Lstat(d)
		if err != nil {
			return nil, dir
		}
		if !fi.IsDir() {
			log.Warn("not a real directory; hooks skipped", keyPath, d)
			return nil, dir
		}
		// Whoever may write the directory chooses what runs.
		if why := unsafeOwner(fi); why != "" {
			log.Warn("hooks skipped: directory "+why, keyPath, d)
			return nil, dir
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		log.Warn("cannot read hooks", keyPath, dir, keyError, err)
		return nil, dir
	}
	var names []string
	for _, de := range entries {
		fi, err := os.Lstat(filepath.Join(dir, de.Name()))
		switch {
		case err != nil:
			log.Warn("hook skipped", "hook", de.Name(), keyError, err)
		case !fi.Mode().IsRegular():
			log.Warn("hook skipped: not a regular file", "hook", de.Name())
		case fi.Mode().Perm()&0o111 == 0:
			log.Warn("hook skipped: not executable", "hook", de.Name())
		case unsafeOwner(fi) != "":
			log.Warn("hook skipped: "+unsafeOwner(fi), "hook", de.Name())
		default:
			names = append(names, de.Name())
		}
	}
	sort.Strings(names)
	return names, dir
}

// unsafeOwner says why a hook file or directory may have been put there by
// someone other than the operator: writable by others, or owned by a user
// who is neither root nor us. It returns "" for a safe one.
func unsafeOwner(fi fs.FileInfo) string {
	if fi.Mode().Perm()&0o002 != 0 {
		return "writable by others"
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return fmt.Sprintf("owned by uid %d", st.Uid)
	}
	return ""
}

// hookEnv is the whole environment of a hook: nothing of the caller's but
// PATH, HOME and LANG, so that LD_PRELOAD and the like never pass.
func hookEnv(event string, vars []EnvVar) []string {
	env := []string{"PATH=" + defaultPath}
	if p := os.Getenv("PATH"); p != "" {
		env[0] = "PATH=" + p
	}
	for _, name := range []string{"HOME", "LANG"} {
		if v, ok := os.LookupEnv(name); ok {
			env = append(env, name+"="+v)
		}
	}
	for _, v := range vars {
		env = append(env, v.Name+"="+v.Value)
	}
	return append(env, "BOTTLE_EVENT="+event)
}

func runHook(parent context.Context, path, name string, env []string, stdin []byte,
	timeout time.Duration, log hclog.Logger) HookRun {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path)
	cmd.Env = env
	cmd.Dir = "/"
	cmd.Stdin = bytes.NewReader(stdin)
	stdout := &lineLog{log: log, stream: "stdout"}
	stderr := &lineLog{log: log, stream: "stderr"}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// Its own process group, so a timeout kills the hook with every
	// child it started. The hook dies with this process too: the
	// parent-death signal is tied to the thread that forks, which is kept
	// until the hook is reaped.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A child left running must not hold our pipes open past the hook.
	cmd.WaitDelay = hookPipeGrace

	if parent.Err() != nil {
		return HookRun{Name: name, ExitCode: -1, Error: "interrupted before it started"}
	}
	start := time.Now()
	err := cmd.Run()
	if cmd.Process != nil {
		// Whatever the hook left behind goes with it.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	stdout.flush()
	stderr.flush()
	run := HookRun{Name: name, DurationMS: millis(time.Since(start))}
	var exitErr *exec.ExitError
	switch {
	case err == nil, errors.Is(err, exec.ErrWaitDelay):
		// The hook exited 0 (with ErrWaitDelay, only its children
		// lingered), whatever came after.
	case parent.Err() != nil:
		run.ExitCode = -1
		run.Error = "interrupted; killed"
	case ctx.Err() != nil:
		run.ExitCode = -1
		run.Error = fmt.Sprintf("timed out after %s; killed", timeout)
	case errors.As(err, &exitErr):
		run.ExitCode = exitErr.ExitCode()
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			run.Error = "killed by " + ws.Signal().String()
		}
	case err != nil:
		run.ExitCode = -1
		run.Error = unwrapExec(err)
	}
	log.Debug("hook ran", "exit_code", run.ExitCode, "duration_ms", run.DurationMS)
	return run
}

func unwrapExec(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func millis(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

// lineLog logs what a hook writes, one log line per output line.
type lineLog struct {
	log    hclog.Logger
	stream string
	buf    []byte
}

// maxHookLine cuts a runaway line so that a hook cannot grow our memory.
const maxHookLine = 8 << 10

func (l *lineLog) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			for len(l.buf) > maxHookLine {
				l.emit(l.buf[:maxHookLine])
				l.buf = l.buf[maxHookLine:]
			}
			return len(p), nil
		}
		l.emit(l.buf[:i])
		l.buf = l.buf[i+1:]
	}
}

func (l *lineLog) flush() {
	if len(l.buf) > 0 {
		l.emit(l.buf)
		l.buf = nil
	}
}

func (l *lineLog) emit(line []byte) {
	l.log.Info("hook output", "stream", l.stream, "line", strings.TrimRight(string(line), "\r"))
}
