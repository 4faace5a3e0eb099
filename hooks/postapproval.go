package hooks

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/bot-bottle/bottle-hook/state"
)

// ApprovalRequest is what an operator approved for one bottle. A path of
// "-" reads standard input; an empty path means the flag was not given.
type ApprovalRequest struct {
	Identity      string
	Routes        string
	Allowlist     string
	Dockerfile    string
	TranscriptDir string
	Stdin         io.Reader
}

// FileResult is what became of one file.
type FileResult struct {
	Name    string `json:"name"`
	Outcome string `json:"outcome"` // "replaced" or "unchanged"
	Digest  string `json:"digest"`
}

// ApprovalResult reports an applied approval.
type ApprovalResult struct {
	Identity string       `json:"identity"`
	Files    []FileResult `json:"files"`
	// Image is the per-bottle image tag to rebuild after a capability
	// change, "" otherwise.
	Image string `json:"image"`
}

// PostApproval applies an approval to an existing bottle: a capability
// change (marker, Dockerfile, transcript) first, then the live-config
// files. Every input is read and validated before anything is written; a
// bottle without state gets state.ErrNotFound and nothing is created.
func PostApproval(env *Env, req ApprovalRequest) (*ApprovalResult, error) {
	log := env.logger().Named(eventPostApproval).With(keyIdentity, req.Identity)
	if err := state.ValidateIdentity(req.Identity); err != nil {
		return nil, err
	}
	if req.TranscriptDir != "" && req.Dockerfile == "" {
		return nil, usagef("--transcript goes with --dockerfile")
	}
	if req.Routes == "" && req.Allowlist == "" && req.Dockerfile == "" {
		return nil, usagef("nothing to apply: give --routes, --allowlist or --dockerfile")
	}
	in, err := readInputs(req)
	if err != nil {
		return nil, err
	}

	r, err := env.open(false)
	if state.IsNotExist(err) {
		return nil, notFound(req.Identity, env.RootDir)
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()

	c := env.begin(eventPostApproval, req.Identity)
	res := &ApprovalResult{Identity: req.Identity, Files: []FileResult{}}
	err = res.apply(r, req, in)
	c.ev.Files = res.Files
	if err != nil {
		c.known = len(res.Files) > 0
		return nil, c.finish(r, err)
	}
	c.known, c.ev.Decision = true, "applied"
	for _, f := range res.Files {
		log.Debug("file applied", keyPath, f.Name, keyOutcome, f.Outcome, "digest", f.Digest)
	}
	if err := env.approvalHooks(c, r, req.Identity); err != nil {
		return nil, c.finish(r, fmt.Errorf("approval applied, but %w", err))
	}
	log.Info("approval applied", "files", len(res.Files), "rebuild", res.Image != "")
	return res, c.finish(r, nil)
}

// apply makes the changes: the capability change first, then live config.
func (res *ApprovalResult) apply(r *state.Root, req ApprovalRequest, in *approvalInputs) error {
	if in.dockerfile != nil {
		changes, err := r.ApplyCapability(req.Identity, state.Capability{
			Dockerfile:    in.dockerfile,
			TranscriptDir: req.TranscriptDir,
		})
		res.add(changes)
		if err != nil {
			return err
		}
		res.Image = state.ImageTag(req.Identity)
	}
	if in.live != nil {
		changes, err := r.ApplyLiveConfig(req.Identity, in.live)
		res.add(changes)
		if err != nil {
			return err
		}
	}
	return nil
}

// approvalHooks runs the operator's post-approval hooks.
func (e *Env) approvalHooks(c *call, r *state.Root, id string) error {
	runs, err := e.extensions(eventPostApproval, func() ([]EnvVar, []byte, error) {
		// Read again only when there are hooks: the approval changed it.
		b, err := r.Load(id)
		if err != nil {
			return nil, nil, err
		}
		return bottleInput(b)()
	})
	c.ev.Hooks = runs
	return err
}

func (res *ApprovalResult) add(changes []state.Change) {
	for _, c := range changes {
		outcome := "unchanged"
		if c.Replaced {
			outcome = "replaced"
		}
		res.Files = append(res.Files, FileResult{Name: c.Name, Outcome: outcome, Digest: c.Digest})
	}
}

// Write renders the result. Text is one "<file> <outcome>" line per
// live-config file, then the image tag to rebuild, if any, alone on the
// last line.
func (res *ApprovalResult) Write(w io.Writer, f Format) error {
	if f == FormatJSON {
		return writeJSON(w, res)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, file := range res.Files {
		if res.Image != "" && !isLiveConfig(file.Name) {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\n", file.Name, file.Outcome)
	}
	if res.Image != "" {
		fmt.Fprintln(tw, res.Image)
	}
	return tw.Flush()
}

func isLiveConfig(name string) bool {
	return strings.HasPrefix(name, state.LiveConfigName+"/")
}

type approvalInputs struct {
	live       *state.CheckedLiveConfig // nil: no live-config file given
	dockerfile []byte
}

// readInputs reads every input file and validates it, so that nothing is
// written when any of them is refused.
func readInputs(req ApprovalRequest) (*approvalInputs, error) {
	stdinUsers := 0
	for _, p := range []string{req.Routes, req.Allowlist, req.Dockerfile} {
		if p == "-" {
			stdinUsers++
		}
	}
	if stdinUsers > 1 {
		return nil, usagef("only one input can be read from standard input (-)")
	}
	in := &approvalInputs{}
	var live state.LiveConfig
	var err error
	if req.Routes != "" {
		if live.Routes, err = readInput(req.Routes, req.Stdin, state.MaxLiveConfigSize); err != nil {
			return nil, fmt.Errorf("--routes %w", err)
		}
	}
	if req.Allowlist != "" {
		if live.Allowlist, err = readInput(req.Allowlist, req.Stdin, state.MaxLiveConfigSize); err != nil {
			return nil, fmt.Errorf("--allowlist %w", err)
		}
	}
	if live.Routes != nil || live.Allowlist != nil {
		var fe *state.FileError
		in.live, err = state.CheckLiveConfig(live)
		if errors.As(err, &fe) {
			flag, p := "--routes", req.Routes
			if fe.Name == state.AllowlistName {
				flag, p = "--allowlist", req.Allowlist
			}
			return nil, fmt.Errorf("%s %s: %w", flag, p, err)
		}
	}
	if req.Dockerfile != "" {
		if in.dockerfile, err = readInput(req.Dockerfile, req.Stdin, state.MaxDockerfileSize); err != nil {
			return nil, fmt.Errorf("--dockerfile %w", err)
		}
		if err := state.ValidateDockerfile(in.dockerfile); err != nil {
			return nil, fmt.Errorf("--dockerfile %s: %w", req.Dockerfile, err)
		}
	}
	return in, nil
}

// readInput reads an operator's input file, or stdin for "-". The result is
// never nil, so an empty file reads as "empty it", not "leave it alone".
func readInput(p string, stdin io.Reader, limit int64) ([]byte, error) {
	name := p
	var rd io.Reader = stdin
	if p == "-" {
		name = "standard input"
		if stdin == nil {
			stdin = os.Stdin
			rd = stdin
		}
	} else {
		f, err := os.Open(p)
		if err != nil {
			return nil, invalid(fmt.Errorf("%s: %v", p, unwrapExec(err)))
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil && fi.IsDir() {
			return nil, invalid(fmt.Errorf("%s: is a directory", p))
		}
		rd = f
	}
	data, err := state.ReadInput(rd, limit, name)
	if err != nil {
		return nil, err
	}
	if data == nil {
		data = []byte{}
	}
	return data, nil
}
