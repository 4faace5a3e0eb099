package state

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
)

// EventsName is the events log of a bottle, under queue/<identity>/. It
// survives the bottle's removal.
const EventsName = "events.jsonl"

// maxEventLine bounds one record, so that a single write(2) with O_APPEND
// keeps concurrent appends from interleaving.
const maxEventLine = 64 << 10

// AppendEvent appends one JSON line to the bottle's events log in a single
// write. With create, the log and its directory are made when missing;
// without, a missing log is left missing, so that a call about an unknown
// identity leaves nothing behind.
func (r *Root) AppendEvent(id string, line []byte, create bool) error {
	if err := ValidateIdentity(id); err != nil {
		return err
	}
	if len(line) == 0 || bytes.IndexByte(line, '\n') >= 0 || len(line) >= maxEventLine {
		return fmt.Errorf("event record for %q: not one line under %d bytes", id, maxEventLine)
	}
	dir := path.Join(queueDirName, id)
	flags := os.O_WRONLY | os.O_APPEND
	if create {
		if err := r.ensureDir(queueDirName, rootMode); err != nil {
			return err
		}
		if err := r.ensureDir(dir, rootMode); err != nil {
			return err
		}
		flags |= os.O_CREATE
	} else if err := r.checkDir(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	f, err := r.openEvents(path.Join(dir, EventsName), flags)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Write(append(line, '\n')); err != nil {
		return r.writeErr(path.Join(dir, EventsName), err)
	}
	return f.Close()
}

// EventsTail returns up to n of the last records of the bottle's events
// log, oldest first; none when there is no log.
func (r *Root) EventsTail(id string, n int) ([][]byte, error) {
	if err := ValidateIdentity(id); err != nil {
		return nil, err
	}
	if err := r.checkDir(path.Join(queueDirName, id)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	f, err := r.openEvents(path.Join(queueDirName, id, EventsName), os.O_RDONLY)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	// Only the end of a long log is read.
	start := max(0, fi.Size()-int64(n)*maxEventLine)
	data, err := io.ReadAll(io.NewSectionReader(f, start, fi.Size()-start))
	if err != nil {
		return nil, err
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if start > 0 && len(lines) > 0 {
		lines = lines[1:] // the first line may be cut
	}
	if len(lines) == 1 && len(lines[0]) == 0 {
		return nil, nil
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines, nil
}

// openEvents opens an events log, which must be a regular file reached
// without a symlink: the log must never become a way to append to some
// other file of the root.
func (r *Root) openEvents(rel string, flag int) (*os.File, error) {
	f, err := r.openRegular(rel, flag, fileMode)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("events log: %w", err)
	}
	return f, err
}
