package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// leasesDirName holds one lease file per bottle ever run under a session
// wrapper. The file outlives the wrapper on purpose: a lease file whose
// lock nobody holds is how an orphan is told from a bottle that never had
// a lease.
const leasesDirName = ".leases"

// leaseAcquireWait is how long acquiring a lease retries, so that a probe
// by list or gc at the same instant does not make a start fail.
const leaseAcquireWait = time.Second

// Session is what is known of the session holding a bottle.
type Session string

// Session states.
const (
	// SessionLive: a wrapper holds the bottle's lease right now.
	SessionLive Session = "live"
	// SessionDead: the bottle was run under a wrapper that is gone.
	SessionDead Session = "dead"
	// SessionUnknown: the bottle was never run under a wrapper (a plain
	// pre-start), so nothing tells whether its launcher is alive.
	SessionUnknown Session = "unknown"
)

// ErrLeaseHeld reports that a live session already holds the bottle.
var ErrLeaseHeld = errors.New("bottle is in use by a live session")

// Lease is a session's hold on a bottle: an open file description lock
// that the kernel drops when the holding process dies, however it dies.
// The file is opened close-on-exec, so the session's command does not
// inherit it.
type Lease struct {
	f    *os.File
	path string
}

// AcquireLease takes the bottle's lease, failing with ErrLeaseHeld when a
// live session holds it.
func (r *Root) AcquireLease(id string) (*Lease, error) {
	if err := ValidateIdentity(id); err != nil {
		return nil, err
	}
	if err := r.ensureDir(leasesDirName, rootMode); err != nil {
		return nil, err
	}
	p := filepath.Join(r.dir, leasesDirName, id)
	deadline := time.Now().Add(leaseAcquireWait)
	for {
		l, err := tryLease(p)
		if err == nil {
			return l, nil
		}
		if !errors.Is(err, ErrLeaseHeld) || time.Now().After(deadline) {
			if errors.Is(err, ErrLeaseHeld) {
				return nil, classed(ErrLeaseHeld, "bottle %q is in use by a live session", id)
			}
			return nil, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func tryLease(p string) (*Lease, error) {
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lease: %w", err)
	}
	// Whatever the umask, the next session must be able to open it.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, fmt.Errorf("open lease: %w", err)
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		f.Close()
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			return nil, ErrLeaseHeld
		}
		return nil, fmt.Errorf("lock lease: %w", err)
	}
	// The lease file may have been unlinked by a session end between the
	// open and the lock; a lock on a nameless file guards nothing.
	held, err1 := f.Stat()
	cur, err2 := os.Lstat(p)
	if err1 != nil || err2 != nil || !os.SameFile(held, cur) {
		f.Close()
		return tryLease(p)
	}
	return &Lease{f: f, path: p}, nil
}

// Release drops the lease. The lease file stays, so the bottle is known to
// have been run under a wrapper.
func (l *Lease) Release() error { return l.f.Close() }

// SessionState reports whether a live session holds the bottle, without
// taking or creating anything.
func (r *Root) SessionState(id string) Session {
	f, err := os.OpenFile(filepath.Join(r.dir, leasesDirName, id), os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return SessionUnknown
	}
	defer f.Close()
	// F_OFD_GETLK asks whether a lock could be placed without placing
	// one, so a probe never makes a starting session fail.
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, &lk); err != nil {
		return SessionUnknown
	}
	if lk.Type == unix.F_UNLCK {
		return SessionDead
	}
	return SessionLive
}

// forgetLease removes the lease file of a bottle that is gone.
func (r *Root) forgetLease(id string) {
	err := r.fs.Remove(path.Join(leasesDirName, id))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		r.log.Warn("lease file left behind", "identity", id, "error", err)
	}
}
