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
}

// PreStart starts a bottle's session and returns its launch spec. A new
// bottle gets a fresh identity, its directories and its metadata; a resumed
// one must already have metadata, and its preserve marker is cleared. Input
// that cannot be stored, or rendered in the requested output format, is
// refused before anything is created.
func PreStart(env *Env, req PreStartRequest) (*LaunchSpec, error) {
	log := env.logger().Named("pre-start")
	if req.Image == "" {
		req.Image = DefaultImage
	}
	if err := validateImage(req.Image); err != nil {
		return nil, err
	}
	if req.Resume != "" {
		return resume(env, req)
	}
	if err := req.New.Validate(); err != nil {
		return nil, err
	}
	if req.Output == FormatEnv {
		if err := checkEnvRenderable(env.RootDir, req); err != nil {
			return nil, err
		}
	}

	r, err := env.open(true)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := r.Create(req.New, env.now())
	if err != nil {
		return nil, err
	}
	log.Info("bottle created", keyIdentity, b.Identity, "agent", b.Meta.AgentName)
	return NewLaunchSpec(b, req.Image, false), nil
}

func resume(env *Env, req PreStartRequest) (*LaunchSpec, error) {
	log := env.logger().Named("pre-start").With(keyIdentity, req.Resume)
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
	if req.Output == FormatEnv {
		// Check the values against the stored record before anything
		// changes, so a refused rendering leaves the marker in place.
		b, err := r.Load(req.Resume)
		if err != nil {
			return nil, err
		}
		if err := CheckEnvVars(NewLaunchSpec(b, req.Image, true).EnvVars()); err != nil {
			return nil, invalid(err)
		}
	}
	b, err := r.Resume(req.Resume)
	if err != nil {
		return nil, err
	}
	log.Info("bottle resumed", "rebuilt", b.Dockerfile != "")
	return NewLaunchSpec(b, req.Image, true), nil
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
