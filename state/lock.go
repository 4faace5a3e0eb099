package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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

// lock takes the bottle's lock, waiting at most r.lockWait. Lock files live
// in a hidden directory of the root, one per bottle, and are unlinked by the
// call that removes the bottle; a waiter that then wins the lock on the
// unlinked file notices that the path names another file and starts over.
func (r *Root) lock(id string) (*bottleLock, error) {
	if err := r.ensureDir(locksDirName, rootMode); err != nil {
		return nil, err
	}
	p := filepath.Join(r.dir, locksDirName, id)
	ctx, cancel := context.WithTimeout(context.Background(), r.lockWait)
	defer cancel()
	for {
		fl := flock.New(p)
		ok, err := fl.TryLockContext(ctx, lockPoll)
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("lock bottle %q: %w", id, err)
		}
		if !ok {
			return nil, classed(ErrLocked, "bottle %q is busy: another call "+
				"held its lock for over %s", id, r.lockWait)
		}
		if sameFile(fl, p) {
			return &bottleLock{fl: fl}, nil
		}
		fl.Close()
	}
}

// tryLock takes the bottle's lock only if it is free at once; it reports
// false when another process holds it.
func (r *Root) tryLock(id string) (*bottleLock, bool, error) {
	if err := r.ensureDir(locksDirName, rootMode); err != nil {
		return nil, false, err
	}
	p := filepath.Join(r.dir, locksDirName, id)
	for {
		fl := flock.New(p)
		ok, err := fl.TryLock()
		if err != nil || !ok {
			return nil, false, err
		}
		if sameFile(fl, p) {
			return &bottleLock{fl: fl}, true, nil
		}
		fl.Close()
	}
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
// metadata; it fails with ErrNotFound, creating nothing, otherwise. The
// lock file of a bottle found absent is removed again.
func (r *Root) withBottle(id string, fn func(b *Bottle) error) error {
	l, err := r.lock(id)
	if err != nil {
		return err
	}
	b, err := r.load(id)
	if err != nil {
		present, _ := r.exists(bottleRel(id))
		l.release(!present)
		return err
	}
	defer l.release(false)
	return fn(b)
}
