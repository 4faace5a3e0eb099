package state

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

const (
	// MaxIdentityLen is the longest identity accepted from outside, in bytes.
	MaxIdentityLen = 128

	maxSlugLen   = 40
	suffixLen    = 5
	suffixChars  = "abcdefghijklmnopqrstuvwxyz0123456789"
	fallbackSlug = "bottle"

	// maxProjectLen keeps "<project>-supervise-<n>", the longest container
	// name compose derives, inside a 63-byte DNS label for n up to 99999.
	maxProjectLen = 63 - len("-supervise-") - 5
)

// Services are the compose services of a bottle, in start order.
var Services = []string{"egress", "git-gate", "supervise", "agent"}

// ValidateIdentity reports whether id is safe to use as one path component:
// [A-Za-z0-9][A-Za-z0-9_.-]*, at most MaxIdentityLen bytes. The error wraps
// ErrInvalid and names the identity.
func ValidateIdentity(id string) error {
	if id == "" {
		return invalidf("identity is empty")
	}
	if len(id) > MaxIdentityLen {
		return invalidf("identity %.20q...: longer than %d bytes", id, MaxIdentityLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := isAlnum(c) || (i > 0 && (c == '_' || c == '.' || c == '-'))
		if !ok {
			return invalidf("identity %q: not a single safe path component "+
				"(letters, digits, then also _ . -)", id)
		}
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// Slug derives the readable prefix of an identity from an agent name: letters
// folded to ASCII by Unicode compatibility decomposition, lowercased, every
// run of other characters replaced by one "-", trimmed of "-", and cut to 40
// bytes. It returns "bottle" when nothing is left. Bytes that are not UTF-8
// count as other characters; they are replaced before decomposition, which
// would otherwise leave the text after them undecomposed.
func Slug(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range norm.NFKD.String(strings.ToValidUTF8(name, "\uFFFD")) {
		if r >= 'A' && r <= 'Z' {
			r += 'a' - 'A'
		}
		if r < utf8.RuneSelf && isAlnum(byte(r)) {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
			continue
		}
		// A combining mark left by decomposition belongs to the letter
		// before it (é is e + U+0301) and must not split the word.
		if unicode.Is(unicode.Mn, r) {
			continue
		}
		dash = true
	}
	slug := b.String()
	if len(slug) > maxSlugLen {
		slug = strings.TrimRight(slug[:maxSlugLen], "-")
	}
	if slug == "" {
		return fallbackSlug
	}
	return slug
}

// NewIdentity mints "<slug>-<suffix>" with a suffix of five characters drawn
// uniformly from [a-z0-9] by a cryptographic source.
func NewIdentity(agentName string) (string, error) {
	suffix, err := randomString(suffixLen)
	if err != nil {
		return "", err
	}
	return Slug(agentName) + "-" + suffix, nil
}

// randomString draws n characters of suffixChars without modulo bias: bytes
// at or above the largest multiple of the alphabet size are rejected.
func randomString(n int) (string, error) {
	const limit = 256 - 256%len(suffixChars)
	out := make([]byte, 0, n)
	buf := make([]byte, 2*n)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			return "", err
		}
		for _, c := range buf {
			if int(c) < limit && len(out) < n {
				out = append(out, suffixChars[int(c)%len(suffixChars)])
			}
		}
	}
	return string(out), nil
}

// ComposeProject returns the compose project name of a bottle, a pure
// function of its identity. A minted identity is already a valid project
// name and is returned unchanged. Any other identity is lowercased, its
// characters outside [a-z0-9_-] become "-", and when that changed it or it
// is too long for container names to fit a DNS label, it is cut and given a
// digest of the identity so that distinct identities keep distinct projects.
func ComposeProject(id string) string {
	mapped := []byte(strings.ToLower(id))
	for i, c := range mapped {
		if !isAlnum(c) && c != '_' && c != '-' {
			mapped[i] = '-'
		}
	}
	p := string(mapped)
	if p == id && len(p) <= maxProjectLen {
		return p
	}
	sum := sha256.Sum256([]byte(id))
	tag := hex.EncodeToString(sum[:4])
	cut := maxProjectLen - len(tag) - 1
	if len(p) > cut {
		p = p[:cut]
	}
	return strings.TrimRight(p, "-_") + "-" + tag
}

// ContainerName is the name compose gives the n-th container of service in
// project.
func ContainerName(project, service string, n int) string {
	return project + "-" + service + "-" + strconv.Itoa(n)
}
