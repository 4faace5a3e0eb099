package hooks

import (
	"errors"
	"fmt"

	"github.com/bot-bottle/bottle-hook/state"
)

// ErrUsage marks a command line that cannot be acted on: a bad flag value,
// a missing or surplus argument. Callers exit 2 for it, as for
// state.ErrInvalid.
var ErrUsage = errors.New("usage error")

// kindError classes an error without changing its message.
type kindError struct {
	kind error
	err  error
}

func (e *kindError) Error() string        { return e.err.Error() }
func (e *kindError) Unwrap() error        { return e.err }
func (e *kindError) Is(target error) bool { return target == e.kind }

func usagef(format string, args ...any) error {
	return &kindError{ErrUsage, fmt.Errorf(format, args...)}
}

// Usage classes err as a usage error.
func Usage(err error) error { return &kindError{ErrUsage, err} }

// invalid classes err as refused input.
func invalid(err error) error { return &kindError{state.ErrInvalid, err} }
