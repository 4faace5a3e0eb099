// Package hooks implements the events that bottle-hook is called for around
// a bottle's lifecycle (pre-start, post-approval, session-end) and the
// operator commands over the same state, one file per event. It turns
// requests into calls on package state and results into the text, JSON and
// env renderings that callers print.
//
// Every function here is safe to call again with the same request: a
// repeated session end reports the bottle absent, a repeated approval with
// the same content changes nothing.
package hooks
