package hooks

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bot-bottle/bottle-hook/state"
)

// Exit statuses of the session wrapper when the command never ran, as a
// shell reports them.
const (
	ExitCannotExecute = 126
	ExitNotFound      = 127
)

// forwarded are the signals the wrapper passes on to its command.
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP}

// RunRequest asks for a whole session: pre-start, the command, session-end.
type RunRequest struct {
	PreStart PreStartRequest
	Command  []string
}

// Run is the whole lifecycle in one call. It starts the bottle (new or
// resumed) and takes its session lease, which the kernel drops if this
// process dies; runs the command with the launch spec added to its
// environment, passing INT, TERM and HUP on to it (INT not when the
// terminal sent it to the command too: see terminalForeground); and ends
// the session when the command exits, whatever the reason. A signal
// during the pre-start hooks stops them and the command never runs; one
// during the session-end hooks stops them, and the bottle is kept. It
// returns the command's exit status, or 128+signal when a signal ended
// it, as an *ErrStatus (nil for status 0). Any other error means the
// session could not start. A command that cannot be started gives 127 or
// 126, as in a shell; a session end that fails turns a zero status into
// 1.
func Run(env *Env, req RunRequest) error {
	log := env.logger().Named("run")
	if len(req.Command) == 0 {
		return usagef("run needs a command: run [flags] [--] COMMAND [ARG...]")
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)

	// A signal during pre-start stops its hooks, and the command never
	// runs: a failed start removes what it minted, a started session is
	// ended at once.
	startEnv := *env
	interrupt, unwatch := interruptOn(sigs, nil)
	startEnv.Interrupt = interrupt
	spec, lease, err := startSession(&startEnv, req.PreStart)
	early := unwatch()
	if err != nil {
		if early != nil {
			return &ErrStatus{Code: signalStatus(early),
				Err: fmt.Errorf("%w: %w", notStarted(early), err)}
		}
		return err
	}
	log = log.With(keyIdentity, spec.Identity)

	var status int
	var cmdErr error
	if early != nil {
		status, cmdErr = signalStatus(early), notStarted(early)
	} else {
		status, cmdErr = runCommand(req.Command, spec, lease, sigs, env)
		log.Info("command exited", "status", status)
	}

	// A signal from now on stops the session-end hooks; session end then
	// keeps the bottle, as for any failing hook. The signal that ended the
	// command, when it was sent to the whole process group (a Ctrl-C, a
	// hangup), reached the wrapper too and may be read only now: what
	// comes within staleSignal of the command's end is taken for it.
	ended := time.Now()
	endEnv := *env
	endEnv.Interrupt, unwatch = interruptOn(sigs, func(sig os.Signal) bool {
		if time.Since(ended) < staleSignal {
			log.Debug("signal taken for the one that ended the command",
				"signal", sig.String())
			return true
		}
		log.Warn("signal during session end: stopping its hooks", "signal", sig.String())
		return false
	})
	_, endErr := SessionEnd(&endEnv, spec.Identity, false)
	unwatch()
	lease.Release()
	if endErr != nil {
		if status == 0 {
			status = 1
		}
		if cmdErr == nil {
			cmdErr = endErr // reported by the caller
		} else {
			log.Error("session end failed", keyError, endErr)
		}
	}
	if status == 0 {
		return nil
	}
	return &ErrStatus{Code: status, Err: cmdErr}
}

// staleSignal is how long after its command's end a signal to the wrapper
// is taken for the one that ended the command.
const staleSignal = 250 * time.Millisecond

// interruptOn watches sigs for a signal that ignore (if not nil) does not
// dismiss. The channel it returns is closed at that signal; unwatch stops
// the watching and returns the signal, nil if none came.
func interruptOn(sigs <-chan os.Signal,
	ignore func(os.Signal) bool) (_ <-chan struct{}, unwatch func() os.Signal) {
	interrupt := make(chan struct{})
	stop := make(chan struct{})
	got := make(chan os.Signal, 1)
	go func() {
		for {
			select {
			case sig := <-sigs:
				if ignore != nil && ignore(sig) {
					continue
				}
				close(interrupt)
				got <- sig
				return
			case <-stop:
				got <- nil
				return
			}
		}
	}()
	return interrupt, func() os.Signal {
		close(stop)
		return <-got
	}
}

func notStarted(sig os.Signal) error {
	return fmt.Errorf("run: %s before the command started", sig)
}

func signalStatus(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 1
}

// startSession runs pre-start with the session's lease held. A resumed
// bottle's lease is taken first, so that two sessions never share it; a
// new bottle's is taken before the bottle becomes visible.
func startSession(env *Env, req PreStartRequest) (*LaunchSpec, *state.Lease, error) {
	req.session = true
	if req.Resume == "" {
		spec, lease, err := preStart(env, req)
		return spec, lease, err
	}
	if err := state.ValidateIdentity(req.Resume); err != nil {
		return nil, nil, err
	}
	r, err := env.open(false)
	if state.IsNotExist(err) {
		return nil, nil, notFound(req.Resume, env.RootDir)
	}
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	lease, err := r.AcquireLease(req.Resume)
	if err != nil {
		return nil, nil, err
	}
	spec, _, err := preStart(env, req)
	if err != nil {
		// The bottle is left as it was: one never run under a wrapper
		// keeps having no lease file.
		lease.Abandon()
		return nil, nil, err
	}
	return spec, lease, nil
}

// runCommand runs the session's command to its end and returns its exit
// status, 128+signal if a signal killed it, and why it could not start.
func runCommand(argv []string, spec *LaunchSpec, lease *state.Lease,
	sigs <-chan os.Signal, env *Env) (int, error) {
	log := env.logger().Named("run").With(keyIdentity, spec.Identity)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = os.Environ()
	for _, v := range spec.EnvVars() {
		cmd.Env = append(cmd.Env, v.Name+"="+v.Value)
	}
	// The command and everything it starts inherit the lease (as fd 3),
	// so the bottle stays live while any process of the session runs,
	// even one that outlives a killed wrapper. The command itself dies
	// with the wrapper; the parent-death signal is tied to the thread
	// that forks, which must stay alive until the command is reaped.
	cmd.ExtraFiles = []*os.File{lease.File()}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	// A signal that came before the command started ends the session
	// without running it.
	select {
	case sig := <-sigs:
		return signalStatus(sig), notStarted(sig)
	default:
	}
	if err := cmd.Start(); err != nil {
		code := ExitCannotExecute
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			code = ExitNotFound
		}
		return code, fmt.Errorf("run %s: %v", argv[0], unwrapExec(err))
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGINT && terminalForeground(cmd.Process.Pid) {
				log.Debug("not forwarding signal: the terminal sent it to the command too",
					"signal", sig.String())
				continue
			}
			log.Debug("forwarding signal", "signal", sig.String())
			_ = cmd.Process.Signal(sig)
		case err := <-done:
			return exitStatus(cmd, err), nil
		}
	}
}

// terminalForeground reports whether process pid is in the foreground
// group of the controlling terminal. An INT typed at the terminal (Ctrl-C)
// then reached it as it reached the wrapper; passing it on would deliver
// it twice, which some programs (docker compose among them) take as a
// demand to force their way out. A command that moved to a group of its
// own (setsid, timeout) gets no Ctrl-C from the terminal, so it is not.
func terminalForeground(pid int) bool {
	tty, err := os.Open("/dev/tty")
	if err != nil {
		return false // no controlling terminal
	}
	defer tty.Close()
	fg, err := unix.IoctlGetInt(int(tty.Fd()), unix.TIOCGPGRP)
	if err != nil {
		return false
	}
	pgrp, err := unix.Getpgid(pid)
	return err == nil && pgrp == fg
}

func exitStatus(cmd *exec.Cmd, err error) int {
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	if err != nil && cmd.ProcessState == nil {
		return 1
	}
	return cmd.ProcessState.ExitCode()
}

// ErrStatus carries the exit status of a session's command to the caller
// that turns it into the process's own, with Err set when there is also
// something to say (the command could not start, the session end failed).
type ErrStatus struct {
	Code int
	Err  error
}

func (e *ErrStatus) Error() string {
	if e.Err != nil {
		return e.Err.Error()
	}
	return fmt.Sprintf("exit status %d", e.Code)
}

func (e *ErrStatus) Unwrap() error { return e.Err }
