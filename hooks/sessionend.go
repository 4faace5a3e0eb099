package hooks

import (
	"fmt"
	"io"

	"github.com/bot-bottle/bottle-hook/state"
)

// EndResult reports what session-end did.
type EndResult struct {
	Identity string        `json:"identity"`
	Outcome  state.Outcome `json:"outcome"`
}

// SessionEnd closes a bottle's session: kept if preserved (unless force),
// removed otherwise, absent if it has no state. Repeating it is safe: the
// second call reports absent.
func SessionEnd(env *Env, id string, force bool) (*EndResult, error) {
	log := env.logger().Named("session-end").With(keyIdentity, id)
	if err := state.ValidateIdentity(id); err != nil {
		return nil, err
	}
	res := &EndResult{Identity: id, Outcome: state.Absent}
	r, err := env.open(false)
	if state.IsNotExist(err) {
		log.Info("no state root; nothing to end", keyOutcome, res.Outcome)
		return res, nil
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if res.Outcome, err = r.End(id, force); err != nil {
		return nil, err
	}
	log.Info("session ended", keyOutcome, res.Outcome, "force", force)
	return res, nil
}

// Write renders the result: the outcome word alone in text.
func (res *EndResult) Write(w io.Writer, f Format) error {
	if f == FormatJSON {
		return writeJSON(w, res)
	}
	_, err := fmt.Fprintln(w, res.Outcome)
	return err
}
