package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
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
// that the kernel drops when every process holding the description is
// gone, however they die. The session's command inherits it (see File),
// so the bottle stays live while any process of the session runs.
type Lease struct {
	f *os.File
	// For Abandon: the bottle, and whether taking the lease created its
	// file.
	r       *Root
	id      string
	created bool
}

// File is the lease's open file, for a command to inherit.
func (l *Lease) File() *os.File { return l.f }

// AcquireLease takes the bottle's lease, failing with ErrLeaseHeld when a
// live session holds it.
func (r *Root) AcquireLease(id string) (*Lease, error) {
	if err := ValidateIdentity(id); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(leaseAcquireWait)
	for {
		l, err := r.tryLease(id)
		if err == nil {
			return l, nil
		}
		if !errors.Is(err, ErrLeaseHeld) {
			return nil, err
		}
		if time.Now().After(deadline) {
			return nil, classed(ErrLeaseHeld, "bottle %q is in use by a live session", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tryLease takes the lease if it is free at once. Lease files are opened
// through the root, never through a symlink, and must be regular files.
func (r *Root) tryLease(id string) (*Lease, error) {
	if err := r.ensureDir(leasesDirName, rootMode); err != nil {
		return nil, err
	}
	rel := path.Join(leasesDirName, id)
	for attempt := 0; attempt < maxLockAttempts; attempt++ {
		_, statErr := r.fs.Lstat(rel)
		f, err := r.openLease(rel, os.O_RDWR|os.O_CREATE)
		if err != nil {
			return nil, err
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
		// The lease file may have been unlinked by a session end between
		// the open and the lock; a lock on a nameless file guards nothing.
		held, err1 := f.Stat()
		cur, err2 := r.fs.Lstat(rel)
		if err1 == nil && err2 == nil && os.SameFile(held, cur) {
			created := errors.Is(statErr, fs.ErrNotExist)
			return &Lease{f: f, r: r, id: id, created: created}, nil
		}
		f.Close()
	}
	return nil, fmt.Errorf("lease of bottle %q: its file keeps changing", id)
}

// openLease opens a lease file, which must be a regular file reached
// without a symlink. The descriptor is closed on exec: a command gets it
// only when it is passed on explicitly.
func (r *Root) openLease(rel string, flag int) (*os.File, error) {
	f, err := r.openRegular(rel, flag|syscall.O_CLOEXEC, 0o600)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("lease: %w", err)
	}
	return f, err
}

// Release drops this process's hold on the lease. The lease file stays, so
// the bottle is known to have been run under a wrapper.
func (l *Lease) Release() error { return l.f.Close() }

// Abandon drops the lease of a session that never ran. A lease file that
// taking the lease created is removed first (still held, so no other
// session can take it meanwhile), so that a bottle never run under a
// wrapper does not turn into an orphan for gc. The Root the lease was
// taken through must still be open.
func (l *Lease) Abandon() error {
	if l.created {
		l.r.forgetLease(l.id)
	}
	return l.f.Close()
}

// SessionState reports whether a live session holds the bottle, without
// taking or creating anything. Anything odd in place of a lease file (a
// symlink, a directory, a FIFO, a symlinked lease directory) says nothing
// about a session: the state is unknown, and gc leaves the bottle alone.
func (r *Root) SessionState(id string) Session {
	if r.checkDir(leasesDirName) != nil {
		return SessionUnknown
	}
	f, err := r.openLease(path.Join(leasesDirName, id), os.O_RDONLY)
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

// ForgetLease removes the lease file of a bottle that no wrapper holds, so
// that a bottle resumed by a plain pre-start reads as unknown rather than
// dead: its new launcher holds no lease, and gc must not take it for an
// orphan. A held lease is left alone.
func (r *Root) ForgetLease(id string) {
	if r.SessionState(id) == SessionDead {
		r.forgetLease(id)
	}
}

// forgetLease removes the lease file of a bottle that is gone.
func (r *Root) forgetLease(id string) {
	if r.checkDir(leasesDirName) != nil {
		return
	}
	err := r.fs.Remove(path.Join(leasesDirName, id))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		r.log.Warn("lease file left behind", "identity", id, "error", err)
	}
}
