package state

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"runtime"
	"sync"
)

// Outcome is what session-end did with a bottle.
type Outcome string

// Outcomes of End.
const (
	Kept    Outcome = "kept"
	Removed Outcome = "removed"
	Absent  Outcome = "absent"
)

// End closes a bottle's session: a preserved bottle is kept (unless force),
// any other is removed, and a bottle with no state is reported absent. The
// state directory leaves state/ by one rename into a hidden directory of
// the root and is deleted from there, so no reader sees half a bottle; if
// the deletion is interrupted, gc finishes it. Symlinks are never followed:
// a state directory that is a symlink is refused and left alone.
func (r *Root) End(id string, force bool) (Outcome, error) {
	if err := ValidateIdentity(id); err != nil {
		return "", err
	}
	l, err := r.lock(id)
	if err != nil {
		return "", err
	}
	rel := bottleRel(id)
	err = r.checkDir(rel)
	if errors.Is(err, fs.ErrNotExist) {
		l.release(true)
		return Absent, nil
	}
	if err != nil {
		l.release(false)
		return "", err
	}
	preserved, err := r.exists(path.Join(rel, PreserveName))
	if err != nil {
		l.release(false)
		return "", err
	}
	if preserved && !force {
		l.release(false)
		return Kept, nil
	}
	trash, err := r.moveToTrash(rel, id)
	if err != nil {
		l.release(false)
		return "", err
	}
	crashPoint("remove.renamed")
	r.forgetLease(id)
	// The lock is held until the deletion is over, so that gc does not
	// race it to the same tree; then the lock file goes too, while still
	// held.
	if err := r.removeTree(trash); err != nil {
		r.log.Warn("removal interrupted; gc finishes it", "path", r.Path(trash), "error", err)
	}
	l.release(true)
	return Removed, nil
}

// removeTree deletes a directory that is already out of every reader's
// sight, never following a symlink. The entries of the tree's first two
// levels are deleted by as many workers as there are CPUs: a bottle's bulk
// is its transcript, whose subdirectories then go in parallel.
func (r *Root) removeTree(rel string) error {
	items, err := r.removalItems(rel)
	if err != nil {
		return err
	}
	work := make(chan string)
	errs := make(chan error, len(items))
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(items)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for item := range work {
				errs <- r.fs.RemoveAll(item)
				crashPoint("remove.entry")
			}
		}()
	}
	for _, item := range items {
		work <- item
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return r.fs.RemoveAll(rel)
}

// removalItems lists the entries of rel and of its real subdirectories.
func (r *Root) removalItems(rel string) ([]string, error) {
	names, err := r.readNames(rel)
	if err != nil {
		return nil, err
	}
	var items []string
	for _, name := range names {
		child := path.Join(rel, name)
		fi, err := r.fs.Lstat(child)
		if err != nil || !fi.IsDir() {
			items = append(items, child)
			continue
		}
		grand, err := r.readNames(child)
		if err != nil {
			return nil, err
		}
		for _, g := range grand {
			items = append(items, path.Join(child, g))
		}
	}
	return items, nil
}

// moveToTrash renames a state directory out of state/ and returns its new
// name relative to the root.
func (r *Root) moveToTrash(rel, id string) (string, error) {
	if err := r.ensureDir(tmpDirName, rootMode); err != nil {
		return "", err
	}
	suffix, err := randomString(8)
	if err != nil {
		return "", err
	}
	trash := path.Join(tmpDirName, trashPrefix+id+"-"+suffix)
	if err := r.fs.Rename(rel, trash); err != nil {
		return "", fmt.Errorf("remove bottle %q: %w", id, err)
	}
	if err := r.syncDir(stateDirName); err != nil {
		return "", err
	}
	return trash, nil
}
