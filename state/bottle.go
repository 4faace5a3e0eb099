package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"syscall"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// maxCreateAttempts bounds the draws of a fresh suffix when a minted
// identity is taken; with 36^5 suffixes a second draw is already rare.
const maxCreateAttempts = 16

// Bottle is what is known of one bottle's state directory.
type Bottle struct {
	Identity  string
	Dir       string // absolute path of the state directory
	Meta      *Metadata
	Preserved bool
	// Dockerfile is the path of the per-bottle Dockerfile, "" when the
	// bottle runs the base image.
	Dockerfile string
	// Transcript is the path of the transcript snapshot, "" when none.
	Transcript string
}

// ImageTag returns the per-bottle image tag of a bottle with a Dockerfile.
func ImageTag(id string) string { return "bot-bottle-rebuilt-" + id + ":latest" }

// SubdirPath returns the absolute path of a bottle's subdirectory.
func (b *Bottle) SubdirPath(name string) string { return path.Join(b.Dir, name) }

// NewBottle describes the bottle that pre-start creates. Identity and
// StartedAt are filled in by Create.
type NewBottle struct {
	AgentName string
	Cwd       string
	CopyCwd   bool
	Backend   string
	Label     string
	Color     string
}

// Validate refuses values that cannot be stored and read back faithfully.
// The error wraps ErrInvalid.
func (n *NewBottle) Validate() error {
	if n.AgentName == "" {
		return invalidf("agent name is empty")
	}
	fields := []struct {
		name, value string
		max         int
	}{
		{"agent name", n.AgentName, 256},
		{"cwd", n.Cwd, 4096},
		{"label", n.Label, 256},
		{"color", n.Color, 64},
	}
	for _, f := range fields {
		if err := ValidateText(f.name, f.value, f.max); err != nil {
			return err
		}
	}
	switch n.Backend {
	case "", BackendDocker, BackendSmolmachines:
	default:
		return invalidf("backend %q: want %q or %q", n.Backend, BackendDocker, BackendSmolmachines)
	}
	return nil
}

// ValidateText refuses a value that is not UTF-8, holds a control
// character, or is longer than max bytes. The error wraps ErrInvalid.
func ValidateText(name, v string, max int) error {
	if len(v) > max {
		return invalidf("%s: longer than %d bytes", name, max)
	}
	if !utf8.ValidString(v) {
		return invalidf("%s %q: not valid UTF-8", name, v)
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return invalidf("%s %q: control characters are not allowed", name, v)
		}
	}
	return nil
}

// Create mints an identity and creates the bottle: its directory, the
// per-sidecar subdirectories with their modes, and metadata.json. The
// bottle is assembled under a hidden name and moved into state/ by one
// rename that fails if the name is taken, so parallel starts never share
// an identity and no reader sees a bottle without its metadata.
func (r *Root) Create(n NewBottle, now time.Time) (*Bottle, error) {
	b, _, err := r.create(n, now, false)
	return b, err
}

// CreateLeased is Create for a session wrapper: the bottle's lease is
// taken before the bottle becomes visible, so no other session can resume
// it in between.
func (r *Root) CreateLeased(n NewBottle, now time.Time) (*Bottle, *Lease, error) {
	return r.create(n, now, true)
}

func (r *Root) create(n NewBottle, now time.Time, leased bool) (*Bottle, *Lease, error) {
	if err := n.Validate(); err != nil {
		return nil, nil, err
	}
	if err := r.ensureDir(tmpDirName, rootMode); err != nil {
		return nil, nil, err
	}
	for attempt := 0; attempt < maxCreateAttempts; attempt++ {
		id, err := NewIdentity(n.AgentName)
		if err != nil {
			return nil, nil, err
		}
		b, lease, err := r.createAs(id, n, now, leased)
		if errors.Is(err, fs.ErrExist) {
			r.log.Debug("identity taken, drawing another", "identity", id)
			continue
		}
		return b, lease, err
	}
	return nil, nil, fmt.Errorf("mint identity for %q: %d draws were all taken",
		n.AgentName, maxCreateAttempts)
}

func (r *Root) createAs(id string, n NewBottle, now time.Time,
	leased bool) (_ *Bottle, _ *Lease, err error) {
	l, err := r.lock(id)
	if err != nil {
		return nil, nil, err
	}
	defer l.release(false)

	if ok, err := r.exists(bottleRel(id)); err != nil || ok {
		if ok {
			err = fs.ErrExist
		}
		return nil, nil, err
	}
	suffix, err := randomString(8)
	if err != nil {
		return nil, nil, err
	}
	staging := path.Join(tmpDirName, stagingPrefix+id+"-"+suffix)
	if err := r.ensureDir(staging, bottleMode); err != nil {
		return nil, nil, err
	}
	var lease *Lease
	defer func() {
		if err != nil {
			r.fs.RemoveAll(staging)
			if lease != nil {
				r.forgetLease(id)
				lease.Release()
			}
		}
	}()
	if err := r.populate(staging, id, n, now); err != nil {
		return nil, nil, err
	}
	if leased {
		if lease, err = r.tryLease(id); err != nil {
			return nil, nil, err
		}
	}
	crashPoint("create.staged")
	if err := r.publish(staging, id); err != nil {
		return nil, nil, err
	}
	crashPoint("create.published")
	b, err := r.load(id)
	return b, lease, err
}

func (r *Root) populate(dir, id string, n NewBottle, now time.Time) error {
	for _, sd := range Subdirs {
		if err := r.ensureDir(path.Join(dir, sd.Name), sd.Mode); err != nil {
			return err
		}
	}
	m := &Metadata{
		Identity:       id,
		AgentName:      n.AgentName,
		Cwd:            n.Cwd,
		CopyCwd:        n.CopyCwd,
		StartedAt:      FormatTime(now),
		ComposeProject: ComposeProject(id),
		Backend:        n.Backend,
		Label:          n.Label,
		Color:          n.Color,
	}
	// The staging directory is private until published, so the record is
	// written in place: no reader can see it half written, and the
	// flushes of the file and of both directories make it durable.
	return r.createFile(path.Join(dir, MetadataName), MarshalMetadata(m), fileMode)
}

// publish moves an assembled bottle into state/ under its identity, failing
// with fs.ErrExist if that name is taken.
func (r *Root) publish(staging, id string) error {
	from, err := r.fs.Open(path.Dir(staging))
	if err != nil {
		return err
	}
	defer from.Close()
	to, err := r.fs.Open(stateDirName)
	if err != nil {
		return err
	}
	defer to.Close()
	err = unix.Renameat2(int(from.Fd()), path.Base(staging), int(to.Fd()), id, unix.RENAME_NOREPLACE)
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOSYS) {
		// The file system cannot refuse to replace. The lock and the
		// check in createAs already ruled out another bottle-hook;
		// rename(2) still refuses to replace a non-empty directory.
		err = unix.Renameat(int(from.Fd()), path.Base(staging), int(to.Fd()), id)
	}
	if errors.Is(err, syscall.EEXIST) || errors.Is(err, syscall.ENOTEMPTY) {
		return fs.ErrExist
	}
	if err != nil {
		return fmt.Errorf("publish bottle %q: %w", id, err)
	}
	return r.syncDir(stateDirName)
}

// Resume loads an existing bottle for a new session: its metadata must
// exist and parse. It recreates any missing subdirectory. The preserve
// marker is left in place: ClearPreserved takes it away once the start has
// succeeded, so that a start that fails or is killed on the way keeps the
// bottle as safe as it was.
func (r *Root) Resume(id string) (*Bottle, error) {
	if err := ValidateIdentity(id); err != nil {
		return nil, err
	}
	var resumed *Bottle
	err := r.withBottle(id, func(b *Bottle, br *Root) error {
		for _, sd := range Subdirs {
			if err := br.ensureDir(sd.Name, sd.Mode); err != nil {
				return err
			}
		}
		resumed = b
		return nil
	})
	return resumed, err
}

// ClearPreserved removes a bottle's preserve marker, so that the next
// session end removes the state again unless something marks it anew.
func (r *Root) ClearPreserved(id string) error {
	if err := ValidateIdentity(id); err != nil {
		return err
	}
	return r.withBottle(id, func(b *Bottle, br *Root) error {
		if !b.Preserved {
			return nil
		}
		err := br.fs.Remove(PreserveName)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("clear preserve marker of %q: %w", id, err)
		}
		return br.syncDir(".")
	})
}

// Load reads one bottle without taking its lock. It fails with ErrNotFound
// when the bottle has no state directory or no metadata, and with
// ErrCorrupt when the directory is a symlink or the metadata is broken.
func (r *Root) Load(id string) (*Bottle, error) {
	if err := ValidateIdentity(id); err != nil {
		return nil, err
	}
	return r.load(id)
}

func (r *Root) load(id string) (*Bottle, error) {
	br, err := r.openBottle(id)
	if err != nil {
		return nil, err
	}
	defer br.Close()
	return br.describe(id)
}

// openBottle opens a bottle's state directory as a root of its own, after
// checking that it is a real directory. Everything done through it stays
// in that directory, even if the name is swapped for a symlink meanwhile:
// the handle, not the name, says where reads and writes go.
func (r *Root) openBottle(id string) (*Root, error) {
	rel := bottleRel(id)
	fi, err := r.fs.Lstat(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, notFoundf("bottle %q: no state in %s", id, r.Path(stateDirName))
	}
	if err != nil {
		return nil, err
	}
	if err := realDir(r.Path(rel), fi); err != nil {
		return nil, err
	}
	sub, err := r.fs.OpenRoot(rel)
	if err != nil {
		return nil, fmt.Errorf("open bottle %q: %w", id, err)
	}
	got, err := sub.Stat(".")
	if err != nil || !os.SameFile(fi, got) {
		sub.Close()
		return nil, corruptf("refusing %s: it changed while being opened", r.Path(rel))
	}
	return &Root{dir: r.Path(rel), fs: sub, log: r.log, lockWait: r.lockWait}, nil
}

// describe reads the bottle whose state directory is r.
func (r *Root) describe(id string) (*Bottle, error) {
	data, err := r.readFile(MetadataName, maxMetadataSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, notFoundf("bottle %q: no %s", id, MetadataName)
	}
	if err != nil {
		return nil, err
	}
	m, err := UnmarshalMetadata(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.Path(MetadataName), err)
	}
	if m.Identity == "" {
		m.Identity = id
	}
	if m.Identity != id {
		return nil, corruptf("%s: identity %q does not match its directory",
			r.Path(MetadataName), m.Identity)
	}
	b := &Bottle{Identity: id, Dir: r.dir, Meta: m}
	if b.Preserved, err = r.exists(PreserveName); err != nil {
		return nil, err
	}
	if ok, err := r.isRegular(DockerfileName); err != nil {
		return nil, err
	} else if ok {
		b.Dockerfile = r.Path(DockerfileName)
	}
	if err := r.checkDir(TranscriptName); err == nil {
		b.Transcript = r.Path(TranscriptName)
	}
	return b, nil
}

func (r *Root) isRegular(rel string) (bool, error) {
	fi, err := r.fs.Lstat(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return fi.Mode().IsRegular(), nil
}

// MarkPreserved writes a bottle's preserve marker, so that session end and
// gc keep it. It fails with ErrNotFound, creating nothing, when there is
// no such bottle.
func (r *Root) MarkPreserved(id string) error {
	if err := ValidateIdentity(id); err != nil {
		return err
	}
	return r.withBottle(id, func(_ *Bottle, br *Root) error {
		return br.writeFile(PreserveName, nil, fileMode)
	})
}
