package state

import (
	"errors"
	"io/fs"
	"sort"
	"strings"
)

// Entry is one name found in state/: a bottle, or the reason it could not
// be read.
type Entry struct {
	Identity string
	Bottle   *Bottle // nil when Err is set
	Err      error
}

// Walk reads every bottle in state/ without taking any lock, in identity
// order: it reads the names, then reads each bottle and passes it to fn
// before reading the next, so that only one bottle is in memory at once.
// An entry that cannot be read is passed with its error; one that is gone
// by the time it is read (a session ended meanwhile) is left out. Hidden
// names are housekeeping and skipped. Walk returns the first error of fn,
// or one reading state/ itself.
func (r *Root) Walk(fn func(Entry) error) error {
	names, err := r.stateNames()
	if err != nil {
		return err
	}
	for _, name := range names {
		e := Entry{Identity: name}
		if err := ValidateIdentity(name); err != nil {
			e.Err = err
		} else {
			e.Bottle, e.Err = r.load(name)
		}
		if e.Err != nil && r.vanished(name) {
			continue // ended since the names were read
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// vanished reports whether name is no longer in state/.
func (r *Root) vanished(name string) bool {
	_, err := r.fs.Lstat(bottleRel(name))
	return errors.Is(err, fs.ErrNotExist)
}

// stateNames returns the non-hidden names in state/, sorted.
func (r *Root) stateNames() ([]string, error) {
	d, err := r.fs.Open(stateDirName)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	kept := names[:0]
	for _, n := range names {
		if !strings.HasPrefix(n, ".") {
			kept = append(kept, n)
		}
	}
	sort.Strings(kept)
	return kept, nil
}

// IsNotExist reports whether err means a missing root or bottle.
func IsNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrNotFound)
}
