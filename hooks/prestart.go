package hooks

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/bot-bottle/bottle-hook/state"
)

// PreStartRequest asks for a new bottle, or with Resume for an existing one.
type PreStartRequest struct {
	New    state.NewBottle
	Resume string // identity to resume; "" starts a new bottle
	Image  string // base agent image; "" means DefaultImage
	Output Format

	// session is set by the session wrapper: a new bottle is created
	// with its lease taken, and a resumed one is leased by the wrapper
	// already.
	session bool
}

// PreStart starts a bottle's session and returns its launch spec. A new
// bottle gets a fresh identity, its directories and its metadata; a resumed
// one must already have metadata and no live session, and its preserve
// marker is cleared. Input that cannot be stored, or rendered in the
// requested output format, is refused before anything is created. The
// operator's pre-start hooks run last; if one fails, the start fails and a
// bottle it minted is removed again.
func PreStart(env *Env, req PreStartRequest) (*LaunchSpec, error) {
	spec, _, err := preStart(env, req)
	return spec, err
}

// preStart is PreStart that also returns the lease of a bottle created for
// a session wrapper (req.session).
func preStart(env *Env, req PreStartRequest) (*LaunchSpec, *state.Lease, error) {
	if req.Image == "" {
		req.Image = DefaultImage
	}
	if err := validateImage(req.Image); err != nil {
		return nil, nil, err
	}
	if req.Resume != "" {
		spec, err := resume(env, req)
		return spec, nil, err
	}
	if err := req.New.Validate(); err != nil {
		return nil, nil, err
	}
	if req.Output == FormatEnv {
		if err := checkEnvRenderable(env.RootDir, req); err != nil {
			return nil, nil, err
		}
	}

	r, err := env.open(true)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	c := env.begin(eventPreStart, "")
	var b *state.Bottle
	var lease *state.Lease
	if req.session {
		b, lease, err = r.CreateLeased(req.New, env.now())
	} else {
		b, err = r.Create(req.New, env.now())
	}
	if err != nil {
		return nil, nil, err
	}
	c.ev.Identity, c.ev.Decision, c.known = b.Identity, "created", true
	log := env.logger().Named(eventPreStart).With(keyIdentity, b.Identity)
	spec := NewLaunchSpec(b, req.Image, false)
	if err := env.preStartHooks(c, b, spec); err != nil {
		// The bottle was minted by this call: take it back whole.
		if _, rerr := r.End(b.Identity, true); rerr != nil {
			log.Error("bottle of a failed start not removed; gc removes it", keyError, rerr)
		}
		if lease != nil {
			lease.Release()
		}
		c.ev.Decision = "removed"
		return nil, nil, c.finish(r, fmt.Errorf("%w; bottle %q removed", err, b.Identity))
	}
	log.Info("bottle created", "agent", b.Meta.AgentName)
	return spec, lease, c.finish(r, nil)
}

func resume(env *Env, req PreStartRequest) (*LaunchSpec, error) {
	log := env.logger().Named(eventPreStart).With(keyIdentity, req.Resume)
	if err := state.ValidateIdentity(req.Resume); err != nil {
		return nil, err
	}
	r, err := env.open(false)
	if state.IsNotExist(err) {
		return nil, notFound(req.Resume, env.RootDir)
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := r.Load(req.Resume)
	if err != nil {
		return nil, err
	}
	if req.Output == FormatEnv {
		// Check the values against the stored record before anything
		// changes, so a refused rendering leaves the marker in place.
		if err := CheckEnvVars(NewLaunchSpec(b, req.Image, true).EnvVars()); err != nil {
			return nil, invalid(err)
		}
	}
	if !req.session && r.SessionState(req.Resume) == state.SessionLive {
		return nil, fmt.Errorf("resume %q: %w", req.Resume, state.ErrLeaseHeld)
	}
	c := env.begin(eventPreStart, req.Resume)
	c.ev.Decision = "resumed"
	c.known = true
	if !req.session {
		// Its new launcher holds no lease: a lease file left by an
		// earlier wrapper would make gc take it for an orphan, even
		// while the hooks below run.
		r.ForgetLease(req.Resume)
	}
	if b, err = r.Resume(req.Resume); err != nil {
		return nil, c.finish(r, err)
	}
	spec := NewLaunchSpec(b, req.Image, true)
	// The marker stays until the hooks have passed: a start that fails,
	// or is killed meanwhile, leaves the bottle as it was.
	if err := env.preStartHooks(c, b, spec); err != nil {
		return nil, c.finish(r, err)
	}
	if err := r.ClearPreserved(req.Resume); err != nil {
		return nil, c.finish(r, err)
	}
	log.Info("bottle resumed", "rebuilt", b.Dockerfile != "")
	return spec, c.finish(r, nil)
}

// preStartHooks runs the operator's pre-start hooks for a started bottle.
func (e *Env) preStartHooks(c *call, b *state.Bottle, spec *LaunchSpec) error {
	runs, err := e.extensions(eventPreStart, func() ([]EnvVar, []byte, error) {
		return spec.EnvVars(), state.MarshalMetadata(b.Meta), nil
	})
	c.ev.Hooks = runs
	return err
}

// checkEnvRenderable renders the spec the new bottle will have, with a
// stand-in suffix, so that a value the env format cannot carry is refused
// before the bottle exists. Only the suffix differs from the real spec, and
// it is always [a-z0-9].
func checkEnvRenderable(rootDir string, req PreStartRequest) error {
	abs, err := filepath.Abs(rootDir)
	if err != nil {
		return err
	}
	id := state.Slug(req.New.AgentName) + "-00000"
	b := &state.Bottle{
		Identity: id,
		Dir:      filepath.Join(abs, "state", id),
		Meta:     &state.Metadata{Identity: id, AgentName: req.New.AgentName},
	}
	if err := CheckEnvVars(NewLaunchSpec(b, req.Image, false).EnvVars()); err != nil {
		return invalid(err)
	}
	return nil
}

func validateImage(image string) error {
	if strings.ContainsFunc(image, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return usagef("--image %q: an image reference has no spaces or control characters", image)
	}
	return nil
}

func notFound(id, root string) error {
	return &kindError{state.ErrNotFound, fmt.Errorf("bottle %q: no state under %s", id, root)}
}
