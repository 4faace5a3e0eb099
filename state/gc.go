package state

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// GC action kinds.
const (
	GCFinishRemoval = "finish-removal" // a session end was interrupted
	GCRemoveStaging = "remove-staging" // a pre-start was interrupted
	GCRemoveTemp    = "remove-temp"    // a write was interrupted
	GCRemoveDebris  = "remove-debris"  // a state dir with no metadata and no marker
	GCRemoveLock    = "remove-lock"    // a lock file of a bottle that is gone
	GCRemoveOrphan  = "remove-orphan"  // a bottle whose session wrapper died
)

// GCAction is one thing gc did, or would do on a dry run.
type GCAction struct {
	Kind     string
	Identity string
	Path     string
}

// GCOptions tune a collection.
type GCOptions struct {
	DryRun bool
	// OlderThan is the age a state directory without metadata must reach
	// before it counts as debris rather than a start in progress.
	OlderThan time.Duration
	Now       time.Time
}

// GC finishes interrupted removals, deletes what interrupted starts and
// writes left behind, and removes debris (state directories with neither
// metadata nor a preserve marker) and orphans (bottles run under a session
// wrapper whose lease nobody holds any more, with no preserve marker), each
// only when older than OlderThan. It never touches a bottle whose lock or
// lease is held, a preserved bottle, or a bottle that never had a lease.
// With DryRun it only reports.
func (r *Root) GC(opts GCOptions) ([]GCAction, error) {
	g := &collector{r: r, opts: opts}
	if opts.Now.IsZero() {
		g.opts.Now = time.Now()
	}
	steps := []func() error{g.tmp, g.bottles, g.locks, g.leases}
	for _, step := range steps {
		g.skip(step())
	}
	if len(g.errs) > 0 {
		return g.done, fmt.Errorf("gc: %d item(s) not collected; first: %w", len(g.errs), g.errs[0])
	}
	return g.done, nil
}

type collector struct {
	r    *Root
	opts GCOptions
	done []GCAction
	errs []error
}

// skip notes an item that could not be collected and lets the collection
// go on: one odd entry must not shield every other from gc.
func (g *collector) skip(err error) {
	if err != nil {
		g.r.log.Warn("gc skipped an item", "error", err)
		g.errs = append(g.errs, err)
	}
}

func (g *collector) record(kind, id, rel string) {
	g.done = append(g.done, GCAction{Kind: kind, Identity: id, Path: g.r.Path(rel)})
}

// removeAll deletes rel unless this is a dry run.
func (g *collector) removeAll(kind, id, rel string) error {
	g.record(kind, id, rel)
	if g.opts.DryRun {
		return nil
	}
	return g.r.fs.RemoveAll(rel)
}

func (g *collector) tmp() error {
	names, err := g.r.readNames(tmpDirName)
	if err != nil {
		return err
	}
	for _, name := range names {
		rel := path.Join(tmpDirName, name)
		switch {
		case strings.HasPrefix(name, trashPrefix):
			// A session end still deleting holds the bottle's lock.
			id := tempIdentity(name, trashPrefix)
			if ValidateIdentity(id) != nil {
				g.r.log.Warn("unknown entry left alone", "path", g.r.Path(rel))
				continue
			}
			g.skip(g.withFreeLock(id, func() error {
				return g.removeAll(GCFinishRemoval, id, rel)
			}))
		case strings.HasPrefix(name, stagingPrefix):
			id := tempIdentity(name, stagingPrefix)
			if ValidateIdentity(id) != nil {
				g.r.log.Warn("unknown entry left alone", "path", g.r.Path(rel))
				continue
			}
			g.skip(g.withFreeLock(id, func() error {
				return g.removeAll(GCRemoveStaging, id, rel)
			}))
		}
	}
	return nil
}

// tempIdentity recovers the identity from "<prefix><identity>-<suffix>".
func tempIdentity(name, prefix string) string {
	s := strings.TrimPrefix(name, prefix)
	if i := strings.LastIndexByte(s, '-'); i > 0 {
		return s[:i]
	}
	return s
}

func (g *collector) bottles() error {
	names, err := g.r.stateNames()
	if err != nil {
		return err
	}
	for _, id := range names {
		if ValidateIdentity(id) != nil || g.r.checkDir(bottleRel(id)) != nil {
			continue
		}
		g.skip(g.withFreeLock(id, func() error { return g.bottle(id) }))
	}
	return nil
}

// bottle sweeps one unlocked bottle: its leftover temporary files, and the
// whole directory if it is debris.
func (g *collector) bottle(id string) error {
	rel := bottleRel(id)
	for _, dir := range []string{rel, path.Join(rel, LiveConfigName)} {
		names, err := g.r.readNames(dir)
		if err != nil {
			g.skip(err)
			continue
		}
		for _, name := range names {
			if isTempName(name) {
				g.skip(g.removeAll(GCRemoveTemp, id, path.Join(dir, name)))
			}
		}
	}
	debris, err := g.isDebris(rel)
	if err != nil {
		return err
	}
	if debris {
		return g.removeBottle(GCRemoveDebris, id)
	}
	return g.orphan(id)
}

// orphan removes a bottle whose session wrapper died: it holds the lease
// itself while removing, so a session starting at that moment is refused
// rather than handed a bottle that is going away.
func (g *collector) orphan(id string) error {
	if g.r.SessionState(id) != SessionDead {
		return nil
	}
	b, err := g.r.load(id)
	if err != nil || b.Preserved || !g.oldEnough(b) {
		return nil
	}
	if g.opts.DryRun {
		g.record(GCRemoveOrphan, id, bottleRel(id))
		return nil
	}
	lease, err := g.r.tryLease(id)
	if err != nil {
		return nil
	}
	defer lease.Release()
	if err := g.removeBottle(GCRemoveOrphan, id); err != nil {
		return err
	}
	g.r.forgetLease(id)
	return nil
}

func (g *collector) oldEnough(b *Bottle) bool {
	started, err := b.Meta.Started()
	if err != nil {
		fi, err := g.r.fs.Lstat(bottleRel(b.Identity))
		if err != nil {
			return false
		}
		started = fi.ModTime()
	}
	return g.opts.Now.Sub(started) >= g.opts.OlderThan
}

func (g *collector) removeBottle(kind, id string) error {
	rel := bottleRel(id)
	g.record(kind, id, rel)
	if g.opts.DryRun {
		return nil
	}
	trash, err := g.r.moveToTrash(rel, id)
	if err != nil {
		return err
	}
	return g.r.fs.RemoveAll(trash)
}

func isTempName(name string) bool {
	return strings.HasPrefix(name, ".") &&
		(strings.Contains(name, ".tmp-") || strings.HasPrefix(name, "."+TranscriptName+".new-"))
}

func (g *collector) isDebris(rel string) (bool, error) {
	for _, name := range []string{MetadataName, PreserveName} {
		if ok, err := g.r.exists(path.Join(rel, name)); err != nil || ok {
			return false, err
		}
	}
	fi, err := g.r.fs.Lstat(rel)
	if err != nil {
		return false, err
	}
	return g.opts.Now.Sub(fi.ModTime()) >= g.opts.OlderThan, nil
}

// gone lists the identities named in a housekeeping directory whose
// bottle no longer exists.
func (g *collector) gone(dir string) ([]string, error) {
	names, err := g.r.readNames(dir)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, id := range names {
		if ValidateIdentity(id) != nil {
			continue
		}
		if ok, err := g.r.exists(bottleRel(id)); err == nil && !ok {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

func (g *collector) locks() error {
	ids, err := g.gone(locksDirName)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if g.odd(locksDirName, id) {
			continue
		}
		if g.opts.DryRun {
			if !g.r.lockHeld(id) {
				g.record(GCRemoveLock, id, path.Join(locksDirName, id))
			}
			continue
		}
		l, ok, err := g.r.tryLock(id)
		if err != nil || !ok {
			g.skip(err)
			continue
		}
		// Checked again under the lock: a start may have won the race.
		if present, _ := g.r.exists(bottleRel(id)); !present {
			g.record(GCRemoveLock, id, path.Join(locksDirName, id))
			l.release(true)
			continue
		}
		l.release(false)
	}
	return nil
}

// leases removes the lease files of bottles that are gone, unless a live
// session still holds one.
func (g *collector) leases() error {
	ids, err := g.gone(leasesDirName)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if g.odd(leasesDirName, id) {
			continue
		}
		if g.r.SessionState(id) == SessionLive {
			continue
		}
		g.record(GCRemoveLock, id, path.Join(leasesDirName, id))
		if !g.opts.DryRun {
			g.r.forgetLease(id)
		}
	}
	return nil
}

// odd handles a name in a housekeeping directory (.locks, .leases) that is
// not a regular file, and so none of ours and nothing to lock: a symlink,
// a FIFO or an empty directory is removed by its name, never followed; a
// directory with something in it is left alone with a warning. It reports
// whether the name was odd.
func (g *collector) odd(dir, id string) bool {
	rel := path.Join(dir, id)
	fi, err := g.r.fs.Lstat(rel)
	if err != nil || fi.Mode().IsRegular() {
		return false
	}
	if fi.IsDir() && !g.r.emptyDir(rel) {
		g.r.log.Warn("gc left a directory that is not its own", "path", g.r.Path(rel))
		return true
	}
	g.record(GCRemoveLock, id, rel)
	if !g.opts.DryRun {
		if err := g.r.fs.Remove(rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
			g.skip(fmt.Errorf("remove %s: %w", g.r.Path(rel), err))
		}
	}
	return true
}

// emptyDir reports whether rel is a directory with nothing in it.
func (r *Root) emptyDir(rel string) bool {
	d, err := r.fs.Open(rel)
	if err != nil {
		return false
	}
	defer d.Close()
	names, err := d.Readdirnames(1)
	return len(names) == 0 && errors.Is(err, io.EOF)
}

// withFreeLock runs fn under the bottle's lock if nobody holds it, and skips
// the bottle otherwise. A dry run only probes the lock, creating nothing.
func (g *collector) withFreeLock(id string, fn func() error) error {
	if g.opts.DryRun {
		if g.r.lockHeld(id) {
			return nil
		}
		return fn()
	}
	l, ok, err := g.r.tryLock(id)
	if err != nil {
		return err
	}
	if !ok {
		g.r.log.Debug("bottle busy, skipped", "identity", id)
		return nil
	}
	err = fn()
	present, _ := g.r.exists(bottleRel(id))
	l.release(!present)
	return err
}

// lockHeld reports whether another process holds the bottle's lock, without
// creating a lock file.
func (r *Root) lockHeld(id string) bool {
	f, err := r.openRegular(path.Join(locksDirName, id), os.O_RDONLY, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return true
	}
	unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return false
}

// readNames lists a directory of the root, sorted; a missing directory is
// empty.
func (r *Root) readNames(rel string) ([]string, error) {
	if err := r.checkDir(rel); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	d, err := r.fs.Open(rel)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	sort.Strings(names)
	return names, err
}
