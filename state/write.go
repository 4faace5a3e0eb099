package state

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
)

// writeFile replaces rel with data, atomically for every reader: the data
// goes to a hidden temporary file in the same directory, which gets its
// final mode, is flushed, and is renamed over rel; then the directory is
// flushed so the rename survives a crash. On error the old file is left as
// it was and the temporary file is removed.
func (r *Root) writeFile(rel string, data []byte, mode fs.FileMode) (err error) {
	dir, name := path.Split(rel)
	suffix, err := randomString(8)
	if err != nil {
		return err
	}
	tmp := dir + "." + name + ".tmp-" + suffix
	f, err := r.fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return r.writeErr(rel, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			r.fs.Remove(tmp)
		}
	}()
	// The mode is set on the open file, before the rename makes it
	// visible, so no reader ever finds a 0600 file.
	if err = f.Chmod(mode); err != nil {
		return r.writeErr(rel, err)
	}
	if _, err = f.Write(data); err != nil {
		return r.writeErr(rel, err)
	}
	crashPoint("write.temp-written")
	// Without this flush a crash after the rename could leave a
	// zero-length file under the final name.
	if err = f.Sync(); err != nil {
		return r.writeErr(rel, err)
	}
	if err = f.Close(); err != nil {
		return r.writeErr(rel, err)
	}
	crashPoint("write.temp-synced")
	if err = r.fs.Rename(tmp, rel); err != nil {
		return r.writeErr(rel, err)
	}
	crashPoint("write.renamed")
	return r.syncDir(dir)
}

// createFile writes data to a new file rel, which must not exist, with
// its mode set before the data and the data flushed. It is for files in a
// directory no reader can see yet; on error the file is removed.
func (r *Root) createFile(rel string, data []byte, mode fs.FileMode) error {
	f, err := r.fs.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return r.writeErr(rel, err)
	}
	err = f.Chmod(mode)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		r.fs.Remove(rel)
		return r.writeErr(rel, err)
	}
	return r.syncDir(path.Dir(rel))
}

// writeErr names the file and says plainly when the disk is full, the one
// failure an operator can act on without reading errno tables.
func (r *Root) writeErr(rel string, err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("write %s: disk is full", r.Path(rel))
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("write %s: %w", r.Path(rel), err)
}

// syncDir flushes a directory so that renames and removals in it are
// durable.
func (r *Root) syncDir(dir string) error {
	if dir == "" {
		dir = "."
	}
	d, err := r.fs.Open(path.Clean(dir))
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("flush directory %s: %w", r.Path(dir), err)
	}
	return nil
}

// readFile reads rel, refusing anything but a regular file and anything
// larger than limit. A missing file is reported with fs.ErrNotExist.
func (r *Root) readFile(rel string, limit int64) ([]byte, error) {
	f, err := r.openRegular(rel, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > limit {
		return nil, corruptf("refusing %s: larger than %d bytes", r.Path(rel), limit)
	}
	data, err := readLimited(f, limit, r.Path(rel))
	if errors.Is(err, ErrInvalid) {
		return nil, corruptf("refusing %s: grew past %d bytes while read", r.Path(rel), limit)
	}
	return data, err
}

// openRegular opens rel as os.Root.OpenFile does, except that a symlink in
// the last place is refused instead of followed (os.Root follows links
// that stay inside the root), and so is anything but a regular file; a
// FIFO never blocks the open. With os.O_CREATE a missing file is created,
// exclusively, with perm. A missing file is reported with fs.ErrNotExist.
func (r *Root) openRegular(rel string, flag int, perm fs.FileMode) (*os.File, error) {
	const attempts = 8
	for range attempts {
		fi, err := r.fs.Lstat(rel)
		if errors.Is(err, fs.ErrNotExist) && flag&os.O_CREATE != 0 {
			f, err := r.fs.OpenFile(rel, flag|os.O_EXCL|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, perm)
			if errors.Is(err, fs.ErrExist) {
				continue // created meanwhile: check it like any other
			}
			if err != nil {
				return nil, r.openErr(rel, err)
			}
			return f, nil
		}
		if err != nil {
			return nil, r.openErr(rel, err)
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			return nil, corruptf("refusing %s: it is a symlink", r.Path(rel))
		case !fi.Mode().IsRegular():
			return nil, corruptf("refusing %s: not a regular file", r.Path(rel))
		}
		f, err := r.fs.OpenFile(rel, flag&^os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
		if err != nil {
			return nil, r.openErr(rel, err)
		}
		// The name may have been swapped between the check and the
		// open; only the file that was checked is used.
		if got, err := f.Stat(); err == nil && os.SameFile(fi, got) {
			return f, nil
		}
		f.Close()
	}
	return nil, fmt.Errorf("open %s: it keeps changing", r.Path(rel))
}

// readLimited reads all of rd, failing with ErrInvalid past limit bytes.
func readLimited(rd io.Reader, limit int64, name string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(rd, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(data)) > limit {
		return nil, invalidf("%s: larger than %d bytes", name, limit)
	}
	return data, nil
}

// openErr turns the errors of opening through a symlink into one refusal
// that names the file.
func (r *Root) openErr(rel string, err error) error {
	switch {
	case errors.Is(err, syscall.ELOOP):
		return corruptf("refusing %s: it is a symlink", r.Path(rel))
	case strings.Contains(err.Error(), "path escapes from parent"):
		// os.Root's refusal to follow a link out of the root.
		return corruptf("refusing %s: a symlink on its path leads out of the state root", r.Path(rel))
	}
	return err
}
