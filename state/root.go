package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Names inside the state root. They are part of the on-disk contract shared
// with other implementations, except the hidden housekeeping directories.
const (
	stateDirName = "state"
	queueDirName = "queue"

	// tmpDirName holds bottles being assembled by pre-start and bottles
	// being deleted by session-end; both are moved by rename, so state/
	// only ever holds whole bottles.
	tmpDirName = ".tmp"
	// locksDirName holds one lock file per bottle; a lock file outlives
	// nothing but the call holding it.
	locksDirName = ".locks"

	MetadataName   = "metadata.json"
	DockerfileName = "Dockerfile"
	PreserveName   = ".preserve"
	TranscriptName = "transcript"
	LiveConfigName = "live-config"
	RoutesName     = "routes.yaml"
	AllowlistName  = "allowlist"

	stagingPrefix = "new-"
	trashPrefix   = "del-"
)

// Subdir is one per-sidecar directory of a bottle.
type Subdir struct {
	Key  string      // key in the launch spec ("git_gate")
	Name string      // directory name ("git-gate")
	Mode fs.FileMode // permission bits, set whatever the umask
}

// Subdirs are the directories pre-start creates in every bottle. The
// transcript directory is not among them: it exists only once a snapshot
// has been taken.
var Subdirs = []Subdir{
	{"egress", "egress", 0o700},
	{"git_gate", "git-gate", 0o700},
	{"supervise", "supervise", 0o755},
	{"agent", "agent", 0o700},
	{"live_config", LiveConfigName, 0o755},
}

const (
	rootMode       = 0o700
	bottleMode     = 0o700
	fileMode       = 0o644
	transcriptMode = 0o700

	// DefaultLockWait bounds how long a call waits for another call on the
	// same bottle before giving up with ErrLocked.
	DefaultLockWait = 10 * time.Second
)

// Root is an opened state root. Its methods are safe for concurrent use by
// several processes; one Root is not meant to be shared by goroutines that
// change the same bottle.
type Root struct {
	dir      string
	fs       *os.Root
	log      hclog.Logger
	lockWait time.Duration
}

// Options tune how a root is opened.
type Options struct {
	// Create makes the root (mode 0700) and its state/ directory when
	// absent. Without it, an absent root is an error wrapping
	// fs.ErrNotExist.
	Create bool
	// Logger receives warnings about recovered oddities; nil discards.
	Logger hclog.Logger
	// LockWait overrides DefaultLockWait.
	LockWait time.Duration
}

// Open opens the state root at dir. It refuses a root whose state/
// directory is a symlink or not a directory.
func Open(dir string, opts Options) (*Root, error) {
	if dir == "" {
		return nil, invalidf("state root is empty")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("state root %q: %w", dir, err)
	}
	if opts.Create {
		if err := makeRoot(abs); err != nil {
			return nil, err
		}
	}
	fsys, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("open state root: %w", err)
	}
	r := &Root{dir: abs, fs: fsys, log: opts.Logger, lockWait: opts.LockWait}
	if r.log == nil {
		r.log = hclog.NewNullLogger()
	}
	if r.lockWait == 0 {
		r.lockWait = DefaultLockWait
	}
	if opts.Create {
		err = r.ensureDir(stateDirName, rootMode)
	} else {
		err = r.checkDir(stateDirName)
	}
	if err != nil {
		fsys.Close()
		return nil, err
	}
	return r, nil
}

// makeRoot creates the root directory with mode 0700. Its parent must
// exist: nothing outside the root is ever created.
func makeRoot(abs string) error {
	if _, err := os.Lstat(abs); err == nil {
		return nil
	}
	if err := os.Mkdir(abs, rootMode); errors.Is(err, fs.ErrNotExist) {
		return invalidf("create state root %s: its parent directory does not exist", abs)
	} else if err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create state root: %w", err)
	}
	// MkdirAll honours the umask; the root holds credentials.
	if err := os.Chmod(abs, rootMode); err != nil {
		return fmt.Errorf("create state root: %w", err)
	}
	return nil
}

// Close releases the root's directory handle.
func (r *Root) Close() error { return r.fs.Close() }

// Dir returns the absolute path of the state root.
func (r *Root) Dir() string { return r.dir }

// Path returns the absolute path of a name relative to the root.
func (r *Root) Path(rel string) string { return filepath.Join(r.dir, filepath.FromSlash(rel)) }

// StateDir returns the absolute path of a bottle's state directory.
func (r *Root) StateDir(id string) string { return r.Path(bottleRel(id)) }

func bottleRel(id string) string { return path.Join(stateDirName, id) }

// checkDir verifies that rel is a real directory. A missing directory is
// reported with fs.ErrNotExist; a symlink or a file with ErrCorrupt.
func (r *Root) checkDir(rel string) error {
	fi, err := r.fs.Lstat(rel)
	if err != nil {
		return err
	}
	return realDir(r.Path(rel), fi)
}

func realDir(p string, fi fs.FileInfo) error {
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return corruptf("refusing %s: it is a symlink", p)
	case !fi.IsDir():
		return corruptf("refusing %s: not a directory", p)
	}
	return nil
}

// ensureDir makes rel a directory with mode unless it already is one. An
// existing directory keeps its mode; a symlink is refused.
func (r *Root) ensureDir(rel string, mode fs.FileMode) error {
	err := r.checkDir(rel)
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := r.fs.Mkdir(rel, mode); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create %s: %w", r.Path(rel), err)
	}
	// Mkdir honours the umask; modes are part of the contract.
	return r.fs.Chmod(rel, mode)
}

func (r *Root) exists(rel string) (bool, error) {
	_, err := r.fs.Lstat(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}
