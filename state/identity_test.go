package state_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/text/unicode/norm"

	"github.com/bot-bottle/bottle-hook/state"
)

var (
	mintedRE  = regexp.MustCompile(`^[a-z0-9-]+-[a-z0-9]{5}$`)
	slugRE    = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	projectRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
)

const suffixAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

func TestValidateIdentity(t *testing.T) {
	tests := []struct {
		name string
		id   string
		ok   bool
	}{
		{"minted", "demo-1t0d4", true},
		{"mixed", "A.b_c-1", true},
		{"one letter", "a", true},
		{"one digit", "0", true},
		{"upper", "UPPER.case_x", true},
		{"inner dots", "a..b", true},
		{"trailing dot", "x.", true},
		{"trailing dash", "x-", true},
		{"128 bytes", strings.Repeat("a", 128), true},
		{"128 bytes mixed", "Z" + strings.Repeat("._-9", 31) + "abc", true},
		{"empty", "", false},
		{"dot", ".", false},
		{"dotdot", "..", false},
		{"slash inside", "a/b", false},
		{"parent", "../x", false},
		{"absolute", "/x", false},
		{"trailing slash", "x/", false},
		{"backslash", `a\b`, false},
		{"leading dash", "-x", false},
		{"leading underscore", "_x", false},
		{"leading dot", ".x", false},
		{"space", "x y", false},
		{"NUL", "x\x00", false},
		{"newline", "x\n", false},
		{"colon", "x:y", false},
		{"129 bytes", strings.Repeat("a", 129), false},
		{"composed unicode", "démo", false},
		{"CJK", "日本", false},
		{"emoji", "bot-🤖", false},
		{"fullwidth letter", "ａ", false},
		{"invalid UTF-8", "a\xff", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := state.ValidateIdentity(tc.id)
			switch {
			case tc.ok && err != nil:
				t.Errorf("ValidateIdentity(%q): got %v, want nil", tc.id, err)
			case !tc.ok && err == nil:
				t.Errorf("ValidateIdentity(%q): got nil, want an error", tc.id)
			case !tc.ok && !errors.Is(err, state.ErrInvalid):
				t.Errorf("ValidateIdentity(%q): got %v, want an error wrapping ErrInvalid", tc.id, err)
			}
		})
	}
}

func TestSlug(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"demo", "demo"},
		{"Démo", "demo"},                   // composed é
		{"De\u0301mo", "demo"},             // e + combining acute
		{"İstanbul", "istanbul"},           // I + combining dot above
		{"ÅNGSTRÖM", "angstrom"},           // composed
		{"\u212bngstr\u00f6m", "angstrom"}, // ANGSTROM SIGN
		{"Ünïcødé Agent 日本", "unic-de-agent"},
		{"日本", "bottle"},
		{"", "bottle"},
		{"---", "bottle"},
		{"🤖", "bottle"},
		{"--a--b--", "a-b"},
		{"  My  Agent!! ", "my-agent"},
		{"emoji 🤖 bot", "emoji-bot"},
		{"ﬁsh", "fish"},  // ligature, compatibility decomposition
		{"Ｆｕｌｌ", "full"}, // fullwidth
		{"a_b.c", "a-b-c"},
		{"UPPER", "upper"},
		{"v2.0", "v2-0"},
		{"\xf5\u00c1", "a"}, // an invalid byte does not stop the folding after it
		{"x\xffy", "x-y"},   // an invalid byte separates like any other character
		{strings.Repeat("a", 60), strings.Repeat("a", 40)},
		{strings.Repeat("abcdefghi ", 6), "abcdefghi-abcdefghi-abcdefghi-abcdefghi"},
		{strings.Repeat("é", 45), strings.Repeat("e", 40)},
		{strings.Repeat("a", 39) + "!!!b", strings.Repeat("a", 39)},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got := state.Slug(tc.in)
			if got != tc.want {
				t.Errorf("Slug(%q): got %q, want %q", tc.in, got, tc.want)
			}
			if !slugRE.MatchString(got) || len(got) > 40 {
				t.Errorf("Slug(%q) = %q: want %s and at most 40 bytes", tc.in, got, slugRE)
			}
		})
	}
}

func TestSlugComposedEqualsDecomposed(t *testing.T) {
	for _, name := range []string{"Démo", "ÅNGSTRÖM", "İstanbul", "Crème Brûlée", "Ωmega ñandú", "ḱṓṡ"} {
		nfc, nfd := norm.NFC.String(name), norm.NFD.String(name)
		t.Run(name, func(t *testing.T) {
			if nfc == nfd {
				t.Fatalf("%q: NFC and NFD are the same; the case tests nothing", name)
			}
			if a, b := state.Slug(nfc), state.Slug(nfd); a != b {
				t.Errorf("Slug(NFC %q) = %q, Slug(NFD %q) = %q: want the same", nfc, a, nfd, b)
			}
		})
	}
}

func TestNewIdentity(t *testing.T) {
	for _, name := range []string{"demo", "Démo", "日本", strings.Repeat("x", 60), "--a--b--", "A.b_c-1"} {
		t.Run(name, func(t *testing.T) {
			id, err := state.NewIdentity(name)
			if err != nil {
				t.Fatalf("NewIdentity(%q): %v", name, err)
			}
			if !mintedRE.MatchString(id) {
				t.Errorf("NewIdentity(%q) = %q: want %s", name, id, mintedRE)
			}
			if want := state.Slug(name) + "-"; !strings.HasPrefix(id, want) || len(id) != len(want)+5 {
				t.Errorf("NewIdentity(%q) = %q: want %q and 5 characters", name, id, want)
			}
			if err := state.ValidateIdentity(id); err != nil {
				t.Errorf("ValidateIdentity(NewIdentity(%q) = %q): %v", name, id, err)
			}
			if got := state.ComposeProject(id); got != id {
				t.Errorf("ComposeProject(%q): got %q, want the identity unchanged", id, got)
			}
		})
	}
}

// TestNewIdentitySuffixUniform draws many suffixes and checks that every
// character of [a-z0-9] turns up at every position and that the counts pass
// a chi-square test against a bound so generous (p below 1e-20 under a
// uniform source) that it cannot flake, yet one that a modulo bias
// (byte % 36: a-d drawn 8/7 as often) exceeds several times over.
func TestNewIdentitySuffixUniform(t *testing.T) {
	const perChar = 10000
	const draws = len(suffixAlphabet) * perChar / 5
	var total [256]int
	var perPos [5][256]int
	for i := 0; i < draws; i++ {
		id, err := state.NewIdentity("a")
		if err != nil {
			t.Fatalf("NewIdentity: %v", err)
		}
		suffix := strings.TrimPrefix(id, "a-")
		if len(suffix) != 5 {
			t.Fatalf("NewIdentity(%q) = %q: want a 5-character suffix", "a", id)
		}
		for pos := 0; pos < 5; pos++ {
			total[suffix[pos]]++
			perPos[pos][suffix[pos]]++
		}
	}
	for c := 0; c < 256; c++ {
		if total[c] > 0 && !strings.ContainsRune(suffixAlphabet, rune(c)) {
			t.Errorf("suffix character %q is outside [a-z0-9]", rune(c))
		}
	}
	for pos := range perPos {
		for _, c := range []byte(suffixAlphabet) {
			if perPos[pos][c] == 0 {
				t.Errorf("suffix position %d: %q never drawn in %d draws", pos, c, draws)
			}
		}
	}
	expected := float64(perChar)
	chi2 := 0.0
	for _, c := range []byte(suffixAlphabet) {
		d := float64(total[c]) - expected
		chi2 += d * d / expected
	}
	// 35 degrees of freedom: mean 35, sd about 8.4. A modulo bias would give
	// about 700 here.
	if chi2 > 200 {
		t.Errorf("suffix characters are not uniform: chi-square %.1f over 35 degrees of freedom, want < 200", chi2)
	}
}

func TestComposeProject(t *testing.T) {
	ids := []string{
		"UPPER.case_x",
		strings.Repeat("a", 128),
		strings.Repeat("A", 128),
		"Z" + strings.Repeat("._-9", 31) + "abc",
		strings.Repeat("ab-", 42) + "xy",
		"a.b", "a-b", "A-b", "a_b", "a..b", "x.", "x-", "x_",
		"0", "Z", "demo-1t0d4", "Demo-1t0d4", "demo.1t0d4",
		strings.Repeat("a", 47), strings.Repeat("a", 48),
		strings.Repeat("a", 38) + "-x", strings.Repeat("a", 38) + "_y",
	}
	seen := map[string]string{}
	for _, id := range ids {
		t.Run(id, func(t *testing.T) {
			if err := state.ValidateIdentity(id); err != nil {
				t.Fatalf("test identity %q is not valid: %v", id, err)
			}
			p := state.ComposeProject(id)
			if !projectRE.MatchString(p) {
				t.Errorf("ComposeProject(%q) = %q: want %s", id, p, projectRE)
			}
			if again := state.ComposeProject(id); again != p {
				t.Errorf("ComposeProject(%q): got %q then %q, want a pure function", id, p, again)
			}
			checkContainerNames(t, p)
			if other, dup := seen[p]; dup {
				t.Errorf("ComposeProject(%q) = ComposeProject(%q) = %q: want distinct", id, other, p)
			}
			seen[p] = id
		})
	}
}

func TestComposeProjectKeepsValidShortNames(t *testing.T) {
	for _, id := range []string{"demo-1t0d4", "a_b", "x-", "0", strings.Repeat("a", 46)} {
		if got := state.ComposeProject(id); got != id {
			t.Errorf("ComposeProject(%q): got %q, want it unchanged", id, got)
		}
	}
}

func TestComposeProjectMinted(t *testing.T) {
	names := []string{"demo", "Démo", "日本", strings.Repeat("x", 60),
		strings.Repeat("abcdefghi ", 6), "emoji 🤖 bot", "A.b_c-1"}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			for i := 0; i < 20; i++ {
				id, err := state.NewIdentity(name)
				if err != nil {
					t.Fatalf("NewIdentity(%q): %v", name, err)
				}
				if got := state.ComposeProject(id); got != id {
					t.Fatalf("ComposeProject(%q): got %q, want the identity unchanged", id, got)
				}
				checkContainerNames(t, id)
			}
		})
	}
}

// checkContainerNames checks that every container compose would name in
// project fits a 63-byte DNS label.
func checkContainerNames(t *testing.T, project string) {
	t.Helper()
	if len(state.Services) == 0 {
		t.Fatal("state.Services is empty")
	}
	for _, svc := range append([]string{"supervise"}, state.Services...) {
		for _, n := range []int{1, 99999} {
			if name := state.ContainerName(project, svc, n); len(name) > 63 {
				t.Errorf("ContainerName(%q, %q, %d) = %q: %d bytes, want at most 63",
					project, svc, n, name, len(name))
			}
		}
	}
}

func TestContainerName(t *testing.T) {
	if got, want := state.ContainerName("demo-1t0d4", "git-gate", 2), "demo-1t0d4-git-gate-2"; got != want {
		t.Errorf("ContainerName: got %q, want %q", got, want)
	}
	want := []string{"egress", "git-gate", "supervise", "agent"}
	if fmt.Sprint(state.Services) != fmt.Sprint(want) {
		t.Errorf("Services: got %q, want %q", state.Services, want)
	}
}

// fixtureIdentities are the bottle directory names in the compat trees.
func fixtureIdentities(f *testing.F) []string {
	f.Helper()
	dirs, err := filepath.Glob("../testdata/compat/tree-*/state/*")
	if err != nil || len(dirs) == 0 {
		f.Fatalf("no fixture identities found: %v", err)
	}
	ids := make([]string, 0, len(dirs))
	for _, d := range dirs {
		ids = append(ids, filepath.Base(d))
	}
	return ids
}

func FuzzValidateIdentity(f *testing.F) {
	for _, id := range fixtureIdentities(f) {
		f.Add(id)
	}
	for _, s := range []string{"", ".", "..", "a/b", "../x", "-x", "A.b_c-1", "x\x00",
		strings.Repeat("a", 128), strings.Repeat("a", 129), "démo"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		err := state.ValidateIdentity(id)
		if err != nil {
			if !errors.Is(err, state.ErrInvalid) {
				t.Fatalf("ValidateIdentity(%q): error %v does not wrap ErrInvalid", id, err)
			}
			return
		}
		if strings.ContainsAny(id, "/\\\x00") || id == "." || id == ".." || len(id) > 128 || id == "" {
			t.Fatalf("ValidateIdentity(%q) accepted an unsafe path component", id)
		}
		if filepath.Base(id) != id || filepath.Clean(id) != id {
			t.Fatalf("ValidateIdentity(%q) accepted a name that is not one clean path component", id)
		}
		p := state.ComposeProject(id)
		if !projectRE.MatchString(p) {
			t.Fatalf("ComposeProject(%q) = %q: want %s", id, p, projectRE)
		}
		for _, svc := range state.Services {
			if name := state.ContainerName(p, svc, 1); len(name) > 63 {
				t.Fatalf("ContainerName(%q, %q, 1) = %q: over 63 bytes", p, svc, name)
			}
		}
	})
}

func FuzzSlug(f *testing.F) {
	for _, s := range []string{"Démo", "De\u0301mo", "İstanbul", "ÅNGSTRÖM", "日本",
		"--a--b--", strings.Repeat("abcdefghi ", 6), "\xff", "a\u0301\u0301"} {
		f.Add(s)
	}
	// The agent names recorded in the fixtures.
	for _, p := range fixtureMetadataFiles(f) {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if m, err := state.UnmarshalMetadata(data); err == nil {
			f.Add(m.AgentName)
		}
	}
	f.Fuzz(func(t *testing.T, name string) {
		s := state.Slug(name)
		if !slugRE.MatchString(s) || len(s) > 40 {
			t.Fatalf("Slug(%q) = %q: want %s and at most 40 bytes", name, s, slugRE)
		}
		if a, b := state.Slug(norm.NFC.String(name)), state.Slug(norm.NFD.String(name)); a != b {
			t.Fatalf("Slug of NFC and NFD of %q: got %q and %q, want the same", name, a, b)
		}
		id := s + "-abc12"
		if err := state.ValidateIdentity(id); err != nil {
			t.Fatalf("ValidateIdentity(%q): %v", id, err)
		}
		if p := state.ComposeProject(id); p != id {
			t.Fatalf("ComposeProject(%q) = %q: want it unchanged", id, p)
		}

		// An agent name pre-start accepts is stored and read back
		// exactly; a refused one gets a one-line ErrInvalid.
		n := state.NewBottle{AgentName: name}
		if err := n.Validate(); err != nil {
			if !errors.Is(err, state.ErrInvalid) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("Validate(%q): %v: want one line wrapping ErrInvalid", name, err)
			}
			return
		}
		m, err := state.UnmarshalMetadata(state.MarshalMetadata(&state.Metadata{Identity: id, AgentName: name}))
		if err != nil || m.AgentName != name {
			t.Fatalf("agent name %q read back as %q (%v)", name, m.AgentName, err)
		}
	})
}

func fixtureMetadataFiles(f *testing.F) []string {
	f.Helper()
	files, err := filepath.Glob("../testdata/compat/tree-*/state/*/metadata.json")
	if err != nil || len(files) == 0 {
		f.Fatalf("no fixture metadata found: %v", err)
	}
	return files
}
