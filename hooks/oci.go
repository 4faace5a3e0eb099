package hooks

import (
	"fmt"
	"io"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bot-bottle/bottle-hook/state"
)

// Stage is an OCI lifecycle stage at which a runtime calls bottle-hook.
type Stage string

// Stages that bottle-hook acts on. prestart is the older name of the point
// where createRuntime hooks run; both only check the bottle.
const (
	StageCreateRuntime Stage = "createRuntime"
	StagePrestart      Stage = "prestart"
	StagePoststop      Stage = "poststop"
)

// Bounds of a runtime hook call, well below those of the other commands:
// a container start or stop must not hang behind another call on the same
// bottle, nor behind a slow extension hook at session end.
const (
	// OCILockWait is the longest wait for a bottle's lock.
	OCILockWait = 3 * time.Second
	// OCIHookTimeout bounds each session-end extension hook at poststop,
	// unless the registration passes --hook-timeout.
	OCIHookTimeout = 5 * time.Second
)

// Outcomes of an OCI hook call, besides those of session-end (kept,
// removed, absent) at poststop.
const (
	// OutcomeIgnored: the container carries no bottle annotation.
	OutcomeIgnored = "ignored"
	// OutcomeFound: the bottle exists; the container may start.
	OutcomeFound = "found"
)

const (
	keyStage     = "stage"
	keyContainer = "container"

	// eventOCIPrefix names the events-log record of a container start:
	// "oci-createRuntime" or "oci-prestart". At poststop the record is
	// session-end's.
	eventOCIPrefix = "oci-"
)

// OCIRequest is one call of bottle-hook by an OCI runtime.
type OCIRequest struct {
	// Stage is the stage the registration passed; "" infers it from the
	// state's status.
	Stage string
	// State is the runtime's state JSON as read from stdin.
	State []byte
	// Root is the state root given to the hook (--root or
	// BOT_BOTTLE_ROOT); "" when none was.
	Root string
	// Home is $HOME as the runtime passed it, usually "".
	Home string
}

// OCIResult reports what an OCI hook call did.
type OCIResult struct {
	Container string `json:"container_id"`
	Stage     Stage  `json:"stage"`
	Identity  string `json:"identity"`
	Outcome   string `json:"outcome"`
}

// OCI handles one runtime hook call. A container without the
// bot-bottle.identity annotation is not a bottle's: the result is
// "ignored" and nothing is touched. Otherwise the identity must be a safe
// path component and the state root must be found (see ociRoot), or the
// call is refused before any file is touched. At createRuntime and
// prestart the bottle must exist with its metadata: a missing one fails
// with an error wrapping state.ErrNotFound, creating nothing, so that the
// runtime refuses to start the container. At poststop the bottle's
// session ends as with SessionEnd (without force), for a stopped container
// only. The lock wait is at most OCILockWait; each session-end extension
// hook gets env.HookTimeout, else OCIHookTimeout.
func OCI(env *Env, req OCIRequest) (*OCIResult, error) {
	log := env.logger().Named("oci")
	stage, err := parseStage(req.Stage)
	if err != nil {
		return nil, err
	}
	st, err := ParseOCIState(req.State)
	if err != nil {
		return nil, err
	}
	log = log.With(keyContainer, st.ID)
	res := &OCIResult{Container: st.ID, Stage: stage}
	id, ours := st.Annotations[AnnotationIdentity]
	if !ours {
		res.Outcome = OutcomeIgnored
		log.Debug("no bottle annotation; container ignored")
		return res, nil
	}

	if stage == "" {
		if stage, err = inferStage(st); err != nil {
			return nil, err
		}
		res.Stage = stage
	}
	res.Identity = id
	log = log.With(keyIdentity, id, keyStage, stage)
	if err := state.ValidateIdentity(id); err != nil {
		return nil, fmt.Errorf("container %q: annotation %s: %w", st.ID, AnnotationIdentity, err)
	}
	root, err := ociRoot(st, req.Root, req.Home)
	if err != nil {
		return nil, err
	}
	sub := ociEnv(env, root, st.ID)

	switch stage {
	case StageCreateRuntime, StagePrestart:
		err = checkBottle(sub, st, stage, id)
		res.Outcome = OutcomeFound
	case StagePoststop:
		res.Outcome, err = endContainer(sub, st, id)
	}
	if err != nil {
		return nil, err
	}
	log.Info("container hook handled", keyOutcome, res.Outcome)
	return res, nil
}

// ociEnv is env for a runtime hook call for container on root: the lock
// wait is at most OCILockWait, extension hooks get OCIHookTimeout unless a
// timeout was chosen, and events-log records name the container.
func ociEnv(env *Env, root, container string) *Env {
	sub := *env
	sub.RootDir = root
	sub.Container = container
	if sub.LockWait <= 0 || sub.LockWait > OCILockWait {
		sub.LockWait = OCILockWait
	}
	if sub.HookTimeout <= 0 {
		sub.HookTimeout = OCIHookTimeout
	}
	return &sub
}

func parseStage(s string) (Stage, error) {
	switch st := Stage(s); st {
	case "", StageCreateRuntime, StagePrestart, StagePoststop:
		return st, nil
	}
	return "", usagef("stage %q: want %s, %s or %s",
		s, StageCreateRuntime, StagePrestart, StagePoststop)
}

// inferStage maps the state's status to the stage a runtime calls hooks
// at: creating at createRuntime, stopped at poststop.
func inferStage(st *specs.State) (Stage, error) {
	switch st.Status {
	case specs.StateCreating:
		return StageCreateRuntime, nil
	case specs.StateStopped:
		return StagePoststop, nil
	}
	return "", usagef("container %q: status %q names no stage; pass one: %s, %s or %s",
		st.ID, st.Status, StageCreateRuntime, StagePrestart, StagePoststop)
}

// checkBottle fails with ErrNotFound unless the bottle exists with
// readable metadata, and records the container's start in the bottle's
// events log. It creates nothing for a bottle that does not exist: no lock
// file, no directory, no log.
func checkBottle(env *Env, st *specs.State, stage Stage, id string) error {
	r, err := env.open(false)
	if state.IsNotExist(err) {
		return notFound(id, env.RootDir)
	}
	if err != nil {
		return err
	}
	defer r.Close()

	c := env.begin(eventOCIPrefix+string(stage), id)
	if _, err := r.Load(id); err != nil {
		return c.finish(r, err)
	}
	c.known, c.ev.Decision = true, OutcomeFound
	return c.finish(r, nil)
}

// endContainer runs session-end for a stopped container. A container that
// is not stopped is refused: a poststop registration called at the wrong
// stage would otherwise remove a bottle whose container is starting.
func endContainer(env *Env, st *specs.State, id string) (string, error) {
	if st.Status != specs.StateStopped {
		return "", invalid(fmt.Errorf("container %q is %q, not %q: refusing to end bottle %q",
			st.ID, st.Status, specs.StateStopped, id))
	}
	end, err := SessionEnd(env, id, false)
	if err != nil {
		return "", err
	}
	return string(end.Outcome), nil
}

// Write renders the result: the outcome word alone in text.
func (res *OCIResult) Write(w io.Writer, f Format) error {
	if f == FormatJSON {
		return writeJSON(w, res)
	}
	_, err := fmt.Fprintln(w, res.Outcome)
	return err
}
