package state

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// MaxDockerfileSize bounds a per-bottle Dockerfile.
const MaxDockerfileSize = 1 << 20

// ValidateDockerfile refuses a Dockerfile that is not UTF-8 text, holds a
// NUL byte, or does not start with a FROM instruction (only ARG may come
// before it, as the builder requires). Comments, parser directives and
// line continuations are read as the builder reads them, so a FROM inside
// a heredoc, a quoted value or a continued RUN line does not count.
func ValidateDockerfile(data []byte) error {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if err := textOnly(DockerfileName, data); err != nil {
		return err
	}
	escape := `\`
	directives := true
	var logical strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			if directives {
				if k, v, ok := strings.Cut(strings.TrimSpace(trimmed[1:]), "="); ok &&
					strings.EqualFold(strings.TrimSpace(k), "escape") {
					escape = strings.TrimSpace(v)
				}
			}
			continue
		}
		directives = false
		if trimmed == "" {
			continue
		}
		if cont, ok := strings.CutSuffix(trimmed, escape); ok && escape != "" {
			logical.WriteString(cont + " ")
			continue
		}
		logical.WriteString(trimmed)
		fields := strings.Fields(logical.String())
		logical.Reset()
		switch keyword := strings.ToUpper(fields[0]); {
		case keyword == "ARG":
			continue
		case keyword == "FROM" && len(fields) >= 2:
			return nil
		default:
			return invalidf("%s: starts with %s; it must start with FROM (only ARG may precede it)",
				DockerfileName, fields[0])
		}
	}
	return invalidf("%s: no FROM instruction", DockerfileName)
}

// Capability is an approved capability change: a new per-bottle Dockerfile
// and, optionally, a transcript snapshot to take from a host directory.
type Capability struct {
	Dockerfile    []byte
	TranscriptDir string // "" keeps the current snapshot
}

// ApplyCapability writes the preserve marker, then the per-bottle
// Dockerfile, then replaces the transcript snapshot with a copy of
// TranscriptDir (symlinks are copied as links and never followed). The
// marker comes first so an interruption leaves the bottle preserved rather
// than removed at session end. The copy is made under a hidden name before
// anything visible changes, so a failed copy changes nothing.
func (r *Root) ApplyCapability(id string, c Capability) ([]Change, error) {
	if err := ValidateIdentity(id); err != nil {
		return nil, err
	}
	if err := ValidateDockerfile(c.Dockerfile); err != nil {
		return nil, err
	}
	if c.TranscriptDir != "" {
		if err := r.checkSourceDir(c.TranscriptDir); err != nil {
			return nil, err
		}
	}
	var changes []Change
	err := r.withBottle(id, func(_ *Bottle, br *Root) error {
		var err error
		changes, err = br.applyCapability(c)
		return err
	})
	return changes, err
}

// applyCapability works in r, a bottle's state directory.
func (r *Root) applyCapability(c Capability) ([]Change, error) {
	var staged string
	var err error
	if c.TranscriptDir != "" {
		if staged, err = r.stageTranscript(c.TranscriptDir); err != nil {
			return nil, err
		}
		defer func() {
			if staged != "" {
				r.fs.RemoveAll(staged)
			}
		}()
	}
	crashPoint("capability.staged")
	// The marker means by being there: one already in place is kept.
	marker := Change{Name: PreserveName, Digest: Digest(nil)}
	if ok, err := r.isRegular(PreserveName); err != nil {
		return nil, err
	} else if !ok {
		if err := r.writeFile(PreserveName, nil, fileMode); err != nil {
			return nil, err
		}
		marker.Replaced = true
	}
	crashPoint("capability.marked")
	changes := []Change{marker}
	ch, err := r.replace(DockerfileName, c.Dockerfile)
	if err != nil {
		return changes, err
	}
	ch.Name = DockerfileName
	changes = append(changes, ch)
	if staged != "" {
		if err := r.swapIn(staged, TranscriptName); err != nil {
			return changes, err
		}
		staged = ""
		changes = append(changes, Change{Name: TranscriptName + "/", Replaced: true})
	}
	return changes, nil
}

// checkSourceDir refuses a transcript source that is not a real directory
// (a trailing slash does not make a symlink one), that lies inside the
// state root, or that holds it: a copy would copy itself. Both are
// compared with every symlink on their way resolved.
func (r *Root) checkSourceDir(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return invalidf("transcript %s: %v", dir, err)
	}
	src, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return invalidf("transcript %s: %v", dir, unwrapPath(err))
	}
	root, err := filepath.EvalSymlinks(r.dir)
	if err != nil {
		return fmt.Errorf("state root %s: %w", r.dir, unwrapPath(err))
	}
	within := func(a, b string) bool {
		return a == b || strings.HasPrefix(a, strings.TrimSuffix(b, "/")+"/")
	}
	if within(src, root) {
		return invalidf("transcript %s: inside the state root", dir)
	}
	if within(root, src) {
		return invalidf("transcript %s: holds the state root", dir)
	}
	fi, err := os.Lstat(abs)
	if err != nil {
		return invalidf("transcript %s: %v", dir, unwrapPath(err))
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return invalidf("transcript %s: is a symlink; give the directory itself", dir)
	}
	if !fi.IsDir() {
		return invalidf("transcript %s: not a directory", dir)
	}
	return nil
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// stageTranscript copies src into a hidden directory of the bottle's state
// directory r and returns its name there.
func (r *Root) stageTranscript(src string) (string, error) {
	suffix, err := randomString(8)
	if err != nil {
		return "", err
	}
	staged := "." + TranscriptName + ".new-" + suffix
	if err := r.fs.Mkdir(staged, transcriptMode); err != nil {
		return "", err
	}
	if err := r.fs.Chmod(staged, transcriptMode); err != nil {
		r.fs.RemoveAll(staged)
		return "", err
	}
	if err := r.copyTree(src, staged); err != nil {
		r.fs.RemoveAll(staged)
		return "", err
	}
	return staged, nil
}

// copyTree copies the contents of the host directory src into dst, a
// directory in the root. Regular files keep their permission bits,
// directories and symlinks are recreated; anything else is refused.
func (r *Root) copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("copy transcript: %w", err)
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		target := path.Join(dst, filepath.ToSlash(rel))
		switch t := d.Type(); {
		case t.IsDir():
			if err := r.fs.Mkdir(target, 0o700); err != nil {
				return err
			}
			return r.fs.Chmod(target, 0o700)
		case t&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return fmt.Errorf("copy transcript: %w", err)
			}
			return r.fs.Symlink(link, target)
		case t.IsRegular():
			err := r.copyFile(p, target)
			crashPoint("transcript.file-copied")
			return err
		default:
			return invalidf("transcript %s: not a regular file, directory or symlink", p)
		}
	})
}

func (r *Root) copyFile(src, dst string) error {
	in, err := os.OpenFile(src, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("copy transcript: %w", err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return invalidf("transcript %s: changed while being copied", src)
	}
	out, err := r.fs.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := out.Chmod(fi.Mode().Perm()); err != nil {
		out.Close()
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return r.writeErr(dst, err)
	}
	// One flush per file keeps the snapshot whole after a crash; the
	// directory entries are made durable by the final rename's flush.
	if err := out.Sync(); err != nil {
		out.Close()
		return r.writeErr(dst, err)
	}
	return out.Close()
}

// swapIn puts the staged directory in place of dst in one step: exchanged
// with the old snapshot when there is one, renamed otherwise. The old
// snapshot, now under the staged name, is then deleted.
func (r *Root) swapIn(staged, dst string) error {
	parent, err := r.fs.Open(path.Dir(dst))
	if err != nil {
		return err
	}
	defer parent.Close()
	fd := int(parent.Fd())
	err = unix.Renameat2(fd, path.Base(staged), fd, path.Base(dst), unix.RENAME_EXCHANGE)
	switch {
	case err == nil:
		crashPoint("transcript.swapped")
		if err := r.fs.RemoveAll(staged); err != nil {
			r.log.Warn("old transcript left behind; gc removes it", "path", r.Path(staged), "error", err)
		}
	case errors.Is(err, syscall.ENOENT):
		if err := r.fs.Rename(staged, dst); err != nil {
			return err
		}
	case errors.Is(err, syscall.EINVAL):
		// No exchange on this file system: move the old snapshot aside
		// under a hidden name first. A crash in between leaves no
		// snapshot, never a mixed one; gc removes the hidden one.
		old := staged + ".old"
		if err := r.fs.Rename(dst, old); err != nil {
			return err
		}
		if err := r.fs.Rename(staged, dst); err != nil {
			return err
		}
		r.fs.RemoveAll(old)
	default:
		return fmt.Errorf("replace transcript: %w", err)
	}
	return r.syncDir(path.Dir(dst))
}
