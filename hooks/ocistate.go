package hooks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Annotations that tie an OCI container to a bottle. A container without
// AnnotationIdentity is not a bottle's and is left alone.
const (
	AnnotationIdentity = "bot-bottle.identity"
	AnnotationRoot     = "bot-bottle.root"
)

// Bounds on the state a runtime writes on a hook's stdin. A real state is a
// few hundred bytes and written at once; the bounds only keep a broken
// writer from holding a container start.
const (
	MaxOCIStateSize = 1 << 20
	OCIReadTimeout  = 5 * time.Second
)

// ReadOCIInput reads r to its end and returns what it read, at most limit
// bytes. Input over the limit is still read to its end and discarded, so
// that the writer never sees a broken pipe, then refused with an error
// wrapping state.ErrInvalid. If r has not ended after timeout, it fails;
// the read started on r is then abandoned, still blocked, which is only
// acceptable in a process about to exit (a runtime hook).
func ReadOCIInput(r io.Reader, limit int64, timeout time.Duration) ([]byte, error) {
	type result struct {
		data []byte
		size int64
		err  error
	}
	done := make(chan result, 1)
	go func() {
		data, err := io.ReadAll(io.LimitReader(r, limit+1))
		size := int64(len(data))
		if err == nil && size > limit {
			var rest int64
			rest, err = io.Copy(io.Discard, r)
			size += rest
		}
		done <- result{data, size, err}
	}()

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case res := <-done:
		if res.err != nil {
			return nil, fmt.Errorf("read container state: %w", res.err)
		}
		if res.size > limit {
			return nil, invalid(fmt.Errorf("container state: %d bytes on stdin, "+
				"over the limit of %d", res.size, limit))
		}
		return res.data, nil
	case <-timer.C:
		return nil, fmt.Errorf("read container state: stdin still open after %s", timeout)
	}
}

// ParseOCIState decodes the state JSON of the OCI runtime specification:
// exactly one JSON object, of the specification's types, and nothing after
// it. Unknown keys are ignored, missing keys take their zero value. Any
// other input is refused with an error wrapping state.ErrInvalid.
func ParseOCIState(data []byte) (*specs.State, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, invalid(errors.New("container state: stdin is empty"))
	}
	if trimmed[0] != '{' {
		return nil, invalid(errors.New("container state: not a JSON object"))
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	var st specs.State
	if err := dec.Decode(&st); err != nil {
		return nil, invalid(fmt.Errorf("container state: %w", err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, invalid(errors.New("container state: data after the JSON object"))
	}
	return &st, nil
}

// ociRoot picks the state root of a container's bottle: the root given to
// the hook (--root or BOT_BOTTLE_ROOT, set by whoever registered it), else
// the container's bot-bottle.root annotation, else $HOME/.bot-bottle. Each
// must be an absolute path: a runtime runs hooks in the bundle directory,
// which must never become a state root. When the registration and the
// annotation both name a root, they must agree: the registration is the
// operator's, while annotations may come from whoever creates containers.
func ociRoot(st *specs.State, flag, home string) (string, error) {
	ann, annotated := st.Annotations[AnnotationRoot]
	if annotated && !filepath.IsAbs(ann) {
		return "", invalid(fmt.Errorf("container %q: annotation %s %q is not an absolute path",
			st.ID, AnnotationRoot, ann))
	}
	switch {
	case flag != "":
		if !filepath.IsAbs(flag) {
			return "", usagef("--root %q: a hook's state root must be an absolute path", flag)
		}
		if annotated && filepath.Clean(ann) != filepath.Clean(flag) {
			return "", invalid(fmt.Errorf("container %q: annotation %s %q differs from --root %q",
				st.ID, AnnotationRoot, ann, flag))
		}
		return filepath.Clean(flag), nil
	case annotated:
		return filepath.Clean(ann), nil
	case home != "" && filepath.IsAbs(home):
		return filepath.Join(home, ".bot-bottle"), nil
	}
	return "", usagef("container %q: no state root: set the %s annotation, --root or "+
		"BOT_BOTTLE_ROOT (HOME is not set or not an absolute path)", st.ID, AnnotationRoot)
}
