package hooks

import (
	"encoding/json"
	"time"

	"github.com/bot-bottle/bottle-hook/state"
)

// Event is one record of a bottle's events log: one per hook call.
type Event struct {
	Time       string       `json:"time"`
	Event      string       `json:"event"`
	Identity   string       `json:"identity"`
	Outcome    string       `json:"outcome"` // "ok" or "failed"
	DurationMS float64      `json:"duration_ms"`
	Decision   string       `json:"decision,omitempty"`
	Files      []FileResult `json:"files,omitempty"`
	Hooks      []HookRun    `json:"hooks,omitempty"`
	Container  string       `json:"container,omitempty"`
	Error      string       `json:"error,omitempty"`
}

// eventsTail is how many records inspect shows.
const eventsTail = 10

// call times one hook call and records it in the bottle's events log.
type call struct {
	env   *Env
	start time.Time
	ev    Event
	// known is set once the bottle is known to exist (or to have
	// existed), so that its log may be created.
	known bool
}

func (e *Env) begin(event, id string) *call {
	ev := Event{Event: event, Identity: id, Container: e.Container}
	return &call{env: e, start: e.now(), ev: ev}
}

// finish records the call with the outcome of err, and returns err. A log
// that cannot be written is a warning, never the call's failure: the state
// change it describes has already happened.
func (c *call) finish(r *state.Root, err error) error {
	c.ev.Time = c.start.UTC().Format(time.RFC3339Nano)
	c.ev.DurationMS = millis(c.env.now().Sub(c.start))
	c.ev.Outcome = "ok"
	if err != nil {
		c.ev.Outcome = "failed"
		c.ev.Error = err.Error()
	}
	if r == nil || c.ev.Identity == "" {
		return err
	}
	line, merr := json.Marshal(c.ev)
	if merr == nil {
		merr = r.AppendEvent(c.ev.Identity, line, c.known)
	}
	if merr != nil {
		c.env.logger().Warn("events log not written", keyIdentity, c.ev.Identity, keyError, merr)
	}
	return err
}
