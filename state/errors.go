package state

import (
	"errors"
	"fmt"
)

// Errors that callers classify with errors.Is. Every error returned by this
// package that refuses input wraps ErrInvalid; one that finds no bottle wraps
// ErrNotFound.
var (
	// ErrNotFound reports that a bottle has no state (or no metadata).
	ErrNotFound = errors.New("no such bottle")

	// ErrInvalid reports input that was refused before anything changed:
	// an unsafe identity, malformed routes, a Dockerfile without FROM.
	ErrInvalid = errors.New("invalid input")

	// ErrCorrupt reports state on disk that cannot be trusted: metadata
	// that does not parse, a state directory that is a symlink.
	ErrCorrupt = errors.New("corrupt state")

	// ErrLocked reports that another call holds the bottle's lock for
	// longer than the wait allowed.
	ErrLocked = errors.New("bottle is locked")
)

// kindError gives an error a class (one of the sentinels above) without
// adding the sentinel's text to the message: the message stays one readable
// line while errors.Is still finds the class and any wrapped cause.
type kindError struct {
	kind error
	err  error
}

func (e *kindError) Error() string        { return e.err.Error() }
func (e *kindError) Unwrap() error        { return e.err }
func (e *kindError) Is(target error) bool { return target == e.kind }

func classed(kind error, format string, args ...any) error {
	return &kindError{kind: kind, err: fmt.Errorf(format, args...)}
}

func invalidf(format string, args ...any) error {
	return classed(ErrInvalid, format, args...)
}

func corruptf(format string, args ...any) error {
	return classed(ErrCorrupt, format, args...)
}

func notFoundf(format string, args ...any) error {
	return classed(ErrNotFound, format, args...)
}
