package state

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"syscall"
	"time"

	"github.com/gofrs/flock"
)

// lockPoll is how often a waiting call retries a held lock.
const lockPoll = 5 * time.Millisecond

// bottleLock is an exclusive kernel lock on one bottle, held by this process
// until release. The kernel drops it if the process dies, so a crash never
// leaves a bottle locked.
type bottleLock struct {
	fl *flock.Flock
}

// maxLockAttempts bounds how often a lock is retried because its file was
// unlinked or replaced between the open and the lock.
const maxLockAttempts = 100

// lock takes the bottle's lock, waiting at most r.lockWait. Lock files live
// in a hidden directory of the root, one per bottle, and are unlinked by the
// call that removes the bottle; a waiter that then wins the lock on the
// unlinked file notices that the path names another file and starts over.
func (r *Root) lock(id string) (*bottleLock, error) {
	ctx, cancel := context.WithTimeout(context.Background(), r.lockWait)
	defer cancel()
	return r.takeLock(id, func(fl *flock.Flock) (bool, error) {
		ok, err := fl.TryLockContext(ctx, lockPoll)
		if errors.Is(err, context.DeadlineExceeded) {
			err = nil
		}
		if err == nil && !ok {
			err = classed(ErrLocked, "bottle %q is busy: another call "+
				"held its lock for over %s", id, r.lockWait)
		}
		return ok, err
	})
}

// tryLock takes the bottle's lock only if it is free at once; it reports
// false when another process holds it.
func (r *Root) tryLock(id string) (*bottleLock, bool, error) {
	l, err := r.takeLock(id, func(fl *flock.Flock) (bool, error) { return fl.TryLock() })
	if errors.Is(err, errBusy) {
		return nil, false, nil
	}
	return l, l != nil, err
}

var errBusy = errors.New("lock held")

func (r *Root) takeLock(id string, acquire func(*flock.Flock) (bool, error)) (*bottleLock, error) {
	if err := ValidateIdentity(id); err != nil {
		return nil, err
	}
	if err := r.ensureDir(locksDirName, rootMode); err != nil {
		return nil, err
	}
	rel := path.Join(locksDirName, id)
	p := r.Path(rel)
	for attempt := 0; attempt < maxLockAttempts; attempt++ {
		if err := r.ensureLockFile(rel); err != nil {
			return nil, err
		}
		// O_NOFOLLOW: a symlink planted in place of the lock file is
		// never opened, let alone created through.
		fl := flock.New(p, flock.SetFlag(os.O_RDWR|syscall.O_NOFOLLOW|syscall.O_CLOEXEC))
		ok, err := acquire(fl)
		if errors.Is(err, fs.ErrNotExist) {
			continue // unlinked by a session end since ensureLockFile
		}
		if err != nil {
			return nil, fmt.Errorf("lock bottle %q: %w", id, err)
		}
		if !ok {
			return nil, errBusy
		}
		if sameFile(fl, p) {
			return &bottleLock{fl: fl}, nil
		}
		fl.Close()
	}
	return nil, fmt.Errorf("lock bottle %q: its lock file keeps changing", id)
}

// ensureLockFile makes the lock file a regular file of mode 0600, whatever
// the umask, so that later calls can open it; anything else standing there
// is refused.
func (r *Root) ensureLockFile(rel string) error {
	fi, err := r.fs.Lstat(rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		f, err := r.fs.OpenFile(rel, os.O_RDWR|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
		if errors.Is(err, fs.ErrExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("create lock file: %w", err)
		}
		defer f.Close()
		return f.Chmod(0o600)
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return corruptf("refusing lock file %s: not a regular file", r.Path(rel))
	case fi.Mode().Perm() != 0o600:
		return r.fs.Chmod(rel, 0o600)
	}
	return nil
}

func sameFile(fl *flock.Flock, p string) bool {
	held, err := fl.Stat()
	if err != nil {
		return false
	}
	cur, err := os.Lstat(p)
	return err == nil && os.SameFile(held, cur)
}

// release drops the lock. With forget, the lock file is unlinked first,
// while still held, so that no later call can lock a file that no longer
// has a name.
func (l *bottleLock) release(forget bool) {
	if forget {
		// A lock file left behind by a failed unlink is harmless;
		// gc sweeps it.
		_ = os.Remove(l.fl.Path())
	}
	l.fl.Close()
}

// withBottle runs fn under the lock of a bottle that exists with its
// metadata, handing it the bottle's state directory opened as a root of
// its own (see openBottle), so that every write of the call lands in the
// directory that was checked. It fails with ErrNotFound, creating nothing,
// when there is no such bottle; the lock file of a bottle found absent is
// removed again.
func (r *Root) withBottle(id string, fn func(b *Bottle, br *Root) error) error {
	l, err := r.lock(id)
	if err != nil {
		return err
	}
	br, err := r.openBottle(id)
	var b *Bottle
	if err == nil {
		defer br.Close()
		b, err = br.describe(id)
	}
	if err != nil {
		present, _ := r.exists(bottleRel(id))
		l.release(!present)
		return err
	}
	defer l.release(false)
	return fn(b, br)
}
