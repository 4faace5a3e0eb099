package hooks

import (
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/bot-bottle/bottle-hook/state"
)

// Events a bottle-hook call handles, as named in logs, the events log and
// the hooks.d directory.
const (
	eventPreStart     = "pre-start"
	eventPostApproval = "post-approval"
	eventSessionEnd   = "session-end"
)

// Log keys shared by every event.
const (
	keyIdentity = "identity"
	keyEvent    = "event"
	keyOutcome  = "outcome"
	keyError    = "error"
	keyPath     = "path"
)

// Env is what every event needs: where the state root is and where to log.
type Env struct {
	// RootDir is the state root, already resolved from flags and
	// environment.
	RootDir string
	Log     hclog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// LockWait overrides state.DefaultLockWait when set.
	LockWait time.Duration
	// HookTimeout bounds each extension hook; zero means
	// DefaultHookTimeout.
	HookTimeout time.Duration
	// Container is the OCI container the call is made for, if any; it is
	// recorded in the events log.
	Container string
	// Interrupt, when closed, stops extension hooks: the one running is
	// killed as at its timeout, and no further one starts. Nil never
	// interrupts.
	Interrupt <-chan struct{}
}

func (e *Env) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Env) logger() hclog.Logger {
	if e.Log == nil {
		return hclog.NewNullLogger()
	}
	return e.Log
}

// open opens the state root, creating it only when create is set.
func (e *Env) open(create bool) (*state.Root, error) {
	return state.Open(e.RootDir, state.Options{
		Create:   create,
		Logger:   e.logger(),
		LockWait: e.LockWait,
	})
}
