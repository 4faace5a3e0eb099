package state

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestValidateRoutes(t *testing.T) {
	cases := []struct {
		in   string
		want string // "" for valid, else a substring of the error
	}{
		{"", ""},
		{"# only a comment\n", ""},
		{"routes: []\n---\nmore: 1\n", ""},
		{"routes: [unclosed\n", "not valid YAML"},
		{"a: 1\na: 2\n", "already defined"},
		{"a: 1\x00\n", "NUL byte at offset 4"},
		{"caf\xe9: 1\n", "not UTF-8 text"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			err := ValidateRoutes([]byte(c.in))
			switch {
			case c.want == "" && err != nil:
				t.Errorf("got %v, want valid", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("got %v, want an error with %q", err, c.want)
			case err != nil && !errors.Is(err, ErrInvalid):
				t.Errorf("got %v, want it to wrap ErrInvalid", err)
			}
		})
	}
}

// FuzzValidateRoutes: the routes check never panics, refuses with one line
// wrapping ErrInvalid, and never accepts a NUL byte or invalid UTF-8.
func FuzzValidateRoutes(f *testing.F) {
	f.Add([]byte("routes:\n  - host: api.example.com\n"))
	f.Add([]byte("a: &a [x]\nb: [*a, *a]\n"))
	f.Add([]byte("---\n---\n"))
	if data, err := os.ReadFile(filepath.Join("..", "testdata", "compat", "tree-lifecycle", "state", "alpha-sodpc", "live-config", "routes.yaml")); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, check := range []func([]byte) error{ValidateRoutes, ValidateAllowlist} {
			err := check(data)
			if err == nil {
				if strings.IndexByte(string(data), 0) >= 0 || !utf8.Valid(data) {
					t.Fatalf("accepted %q", data)
				}
				continue
			}
			if !errors.Is(err, ErrInvalid) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("refusal %q: want one line wrapping ErrInvalid", err)
			}
		}
	})
}
