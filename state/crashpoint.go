//go:build !crashtest

package state

// crashPoint names a step of a write after which a crash must still leave
// the state consistent: every file old or new and whole, no bottle half
// created or half removed where a reader can see it, and whatever was
// interrupted finished or cleared by the next call or gc. The points are
// part of the design: they document where the on-disk state changes.
//
// In a normal build it does nothing and compiles away. A build with the
// crashtest tag kills the process there on request, so that tests can
// prove the claim at each point.
func crashPoint(string) {}
