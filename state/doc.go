// Package state owns a bottle's state on the host disk: the state root, the
// per-bottle directories, the launch record and the live configuration that
// sidecars read through bind mounts.
//
// Every file is replaced atomically (a hidden temporary file in the same
// directory, given its final mode, flushed, renamed over the old file, and
// the directory flushed), so a reader in another process or container sees
// the old content or the new, never a mix. A bottle appears in state/ and
// leaves it by a single rename, so no reader sees half a bottle. Calls that
// change one bottle are serialized by a kernel file lock; readers take none.
//
// All access goes through an os.Root opened on the state root: no name,
// symlink or ".." can reach a file outside it. Directories that bottle-hook
// writes into are also checked to be real directories, not symlinks.
//
// The package does not guarantee atomicity where the kernel does not: on
// network file systems rename and flock may not be atomic across hosts, and
// a state root shared between hosts is not supported.
package state
