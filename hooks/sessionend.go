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
// removed otherwise, absent if it has no state. The operator's session-end
// hooks run first, while the state is still there; if one fails, the state
// is kept and the call fails, unless force. Repeating it is safe: the
// second call reports absent.
func SessionEnd(env *Env, id string, force bool) (*EndResult, error) {
	log := env.logger().Named(eventSessionEnd).With(keyIdentity, id)
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

	c := env.begin(eventSessionEnd, id)
	if b, err := r.Load(id); err == nil {
		c.known = true
		if err := env.endHooks(c, b, force); err != nil {
			if !force {
				// Marked preserved, so that neither a later session
				// end nor gc removes what the hook failed to archive.
				c.ev.Decision = string(state.Kept)
				if perr := r.MarkPreserved(id); perr != nil {
					log.Error("preserve marker not written", keyError, perr)
				}
				return nil, c.finish(r, fmt.Errorf("%w; state kept and marked preserved "+
					"(session-end --force removes it)", err))
			}
			log.Warn("session-end hook failed; removing anyway (--force)", keyError, err)
		}
	}
	if res.Outcome, err = r.End(id, force); err != nil {
		return nil, c.finish(r, err)
	}
	c.ev.Decision = string(res.Outcome)
	log.Info("session ended", keyOutcome, res.Outcome, "force", force)
	return res, c.finish(r, nil)
}

// endHooks runs the operator's session-end hooks, telling them what will
// become of the state in BOTTLE_DECISION.
func (e *Env) endHooks(c *call, b *state.Bottle, force bool) error {
	decision := state.Removed
	if b.Preserved && !force {
		decision = state.Kept
	}
	runs, err := e.extensions(eventSessionEnd, bottleInput(b, EnvVar{"BOTTLE_DECISION", string(decision)}))
	c.ev.Hooks = runs
	return err
}

// Write renders the result: the outcome word alone in text.
func (res *EndResult) Write(w io.Writer, f Format) error {
	if f == FormatJSON {
		return writeJSON(w, res)
	}
	_, err := fmt.Fprintln(w, res.Outcome)
	return err
}
