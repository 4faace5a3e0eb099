package state_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bot-bottle/bottle-hook/state"
)

// goldenDir holds metadata.json files written by the reference's
// write_metadata (scripts/make-compat-fixtures).
const goldenDir = "../testdata/compat/metadata"

const refNow = "2026-12-04T13:22:57Z"

// goldenCases are the values the reference was given for each golden file.
// They are listed here, not parsed from the goldens, so that a golden proves
// what MarshalMetadata writes. Keep in sync with GOLDEN in
// scripts/make-compat-fixtures.
var goldenCases = []struct {
	name string
	m    state.Metadata
}{
	{"plain", state.Metadata{
		Identity: "demo-1t0d4", AgentName: "demo", Cwd: "/srv/project",
		StartedAt: refNow, ComposeProject: "demo-1t0d4", Backend: "docker",
	}},
	{"empty", state.Metadata{Identity: "empty-00000"}},
	{"copy-cwd", state.Metadata{
		Identity: "copy-a1b2c", AgentName: "copy", Cwd: "/home/u/My Projects/x y",
		CopyCwd: true, StartedAt: refNow, ComposeProject: "copy-a1b2c",
		Backend: "smolmachines", Label: "work", Color: "blue",
	}},
	{"unicode", state.Metadata{
		Identity:  "n-c-d-agent-1t0d4",
		AgentName: "Ünïcødé Agent 日本",
		Cwd:       `/srv/dïr "quoted" ✓`,
		CopyCwd:   true, StartedAt: refNow, ComposeProject: "n-c-d-agent-1t0d4",
		Label: "Lâbel", Color: "#ff0000",
	}},
	{"decomposed", state.Metadata{
		Identity: "de-mo-zzzzz", AgentName: "De\u0301mo \u212bngstr\u00f6m",
		Cwd: "/tmp/e\u0301", StartedAt: refNow, ComposeProject: "de-mo-zzzzz",
		Backend: "docker", Label: "\u0130stanbul", Color: "\u00c5",
	}},
	{"astral", state.Metadata{
		Identity: "emoji-bot-99999", AgentName: "emoji 🤖 bot",
		Cwd: "/srv/🚀/\U00010348", StartedAt: refNow, ComposeProject: "emoji-bot-99999",
		Backend: "docker", Label: "🟥🟩", Color: "\U0001F3F3\uFE0F\u200D\U0001F308",
	}},
	{"quotes", state.Metadata{
		Identity: "q-q-0a0a0", AgentName: `say "hi" \ bye`,
		Cwd: `C:\Users\x "y"\`, StartedAt: refNow, ComposeProject: "q-q-0a0a0",
		Backend: "docker", Label: `\"`, Color: `"\\"`,
	}},
	{"html", state.Metadata{
		Identity: "html-abcde", AgentName: "<b>&amp;</b>", Cwd: "/a&b/<c>",
		StartedAt: refNow, ComposeProject: "html-abcde", Backend: "docker",
		Label: "a<b>c", Color: "&",
	}},
	{"control", state.Metadata{
		Identity: "ctl-12345", AgentName: "tab\there\nnewline",
		Cwd: "/srv/cr\r/ff\f/bs\b", CopyCwd: true, StartedAt: refNow,
		ComposeProject: "ctl-12345", Backend: "docker",
		Label: "\x00\x01\x1f\x7f", Color: "\u0080\u009f\u00a0\u2028\u2029\ufeff\uffff",
	}},
	{"slash", state.Metadata{
		Identity: "slash-s1s1s", AgentName: "a/b", Cwd: "/",
		StartedAt: "2026-12-04T13:22:57.123456+00:00", ComposeProject: "slash-s1s1s",
		Backend: "docker", Label: "/", Color: "~",
	}},
}

func readGolden(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(goldenDir, name+".json"))
	if err != nil {
		t.Fatalf("read golden: %v", err)
	}
	return data
}

func TestMarshalMetadataMatchesReference(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			want := readGolden(t, tc.name)
			got := state.MarshalMetadata(&tc.m)
			if !bytes.Equal(got, want) {
				t.Errorf("MarshalMetadata bytes differ from the reference\ngot:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestMetadataGoldenRoundTrip(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			want := readGolden(t, tc.name)
			m, err := state.UnmarshalMetadata(want)
			if err != nil {
				t.Fatalf("UnmarshalMetadata: %v", err)
			}
			if *m != tc.m {
				t.Errorf("UnmarshalMetadata: got %+v, want %+v", *m, tc.m)
			}
			if got := state.MarshalMetadata(m); !bytes.Equal(got, want) {
				t.Errorf("round trip:\ngot:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// TestGoldenCasesCoverEveryGolden fails when a golden file is added without
// a row in goldenCases (or a row loses its file).
func TestGoldenCasesCoverEveryGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, f := range files {
		have[strings.TrimSuffix(filepath.Base(f), ".json")] = true
	}
	for _, tc := range goldenCases {
		if !have[tc.name] {
			t.Errorf("golden %s.json: missing from %s", tc.name, goldenDir)
		}
		delete(have, tc.name)
	}
	for name := range have {
		t.Errorf("golden %s.json: no row in goldenCases", name)
	}
}

func TestMarshalMetadataShape(t *testing.T) {
	m := &state.Metadata{AgentName: "é<>&\U0001F916", CopyCwd: true}
	got := string(state.MarshalMetadata(m))
	checks := []struct {
		what string
		ok   bool
	}{
		{"starts with {\\n", strings.HasPrefix(got, "{\n")},
		{"ends with }\\n, one newline", strings.HasSuffix(got, "\n}\n") && !strings.HasSuffix(got, "\n\n")},
		{"pure ASCII", isASCII(got)},
		{"<>& literal", strings.Contains(got, `"\u00e9<>&\ud83e\udd16"`)},
		{"copy_cwd true", strings.Contains(got, `"copy_cwd": true,`)},
		{"color last without comma", strings.Contains(got, `  "color": ""`+"\n}")},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: not so in\n%s", c.what, got)
		}
	}
	keys := []string{"identity", "agent_name", "cwd", "copy_cwd", "started_at",
		"compose_project", "backend", "label", "color"}
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != len(keys)+2 {
		t.Fatalf("got %d lines, want %d", len(lines), len(keys)+2)
	}
	for i, k := range keys {
		if want := `  "` + k + `": `; !strings.HasPrefix(lines[i+1], want) {
			t.Errorf("line %d: got %q, want prefix %q", i+2, lines[i+1], want)
		}
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func TestUnmarshalMetadataErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantMsg string // a part of the message naming the problem
	}{
		{"number for identity", `{"identity": 1}`, "identity"},
		{"number for agent_name", `{"agent_name": 1.5}`, "agent_name"},
		{"bool for cwd", `{"cwd": true}`, "cwd"},
		{"array for label", `{"label": ["x"]}`, "label"},
		{"object for color", `{"color": {}}`, "color"},
		{"number for backend", `{"backend": 0}`, "backend"},
		{"number for compose_project", `{"compose_project": -1}`, "compose_project"},
		{"string for copy_cwd", `{"copy_cwd": "true"}`, "copy_cwd"},
		{"number for copy_cwd", `{"copy_cwd": 1}`, "copy_cwd"},
		{"number for started_at", `{"started_at": 1733318577}`, "started_at"},
		{"invalid started_at", `{"started_at": "yesterday"}`, "started_at"},
		{"started_at without time", `{"started_at": "2026-12-04"}`, "started_at"},
		{"started_at bad month", `{"started_at": "2026-13-04T13:22:57Z"}`, "started_at"},
		{"invalid JSON truncated", `{"identity": "x"`, "JSON"},
		{"invalid JSON trailing comma", `{"identity": "x",}`, "JSON"},
		{"invalid JSON trailing data", `{} {}`, "JSON"},
		{"invalid JSON single quotes", `{'identity': 'x'}`, "JSON"},
		{"empty file", ``, "empty"},
		{"whitespace only", " \n\t\r\n", "empty"},
		{"BOM only", "\xef\xbb\xbf", "empty"},
		{"BOM and whitespace", "\xef\xbb\xbf \n", "empty"},
		{"JSON array", `[{"identity": "x"}]`, "object"},
		{"empty JSON array", `[]`, "object"},
		{"JSON string", `"demo-1t0d4"`, "object"},
		{"JSON number", `42`, "object"},
		{"JSON true", `true`, "object"},
		{"JSON null", `null`, "object"},
		{"not UTF-8", "{\"agent_name\": \"\xff\xfe\"}", "UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := state.UnmarshalMetadata([]byte(tc.in))
			if err == nil {
				t.Fatalf("UnmarshalMetadata(%q): got %+v, nil; want an error", tc.in, *m)
			}
			if !errors.Is(err, state.ErrCorrupt) {
				t.Errorf("UnmarshalMetadata(%q): got error %v, want one wrapping ErrCorrupt", tc.in, err)
			}
			if m != nil {
				t.Errorf("UnmarshalMetadata(%q): got metadata %+v with the error, want nil", tc.in, *m)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.wantMsg) {
				t.Errorf("error %q: want it to mention %q", msg, tc.wantMsg)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line", msg)
			}
		})
	}
}

func TestUnmarshalMetadataAccepts(t *testing.T) {
	full := state.Metadata{
		Identity: "demo-1t0d4", AgentName: "demo", Cwd: "/srv", CopyCwd: true,
		StartedAt: refNow, ComposeProject: "demo-1t0d4", Backend: "docker",
		Label: "l", Color: "c",
	}
	fullJSON := `"identity": "demo-1t0d4", "agent_name": "demo", "cwd": "/srv",
		"copy_cwd": true, "started_at": "2026-12-04T13:22:57Z",
		"compose_project": "demo-1t0d4", "backend": "docker", "label": "l", "color": "c"`
	tests := []struct {
		name string
		in   string
		want state.Metadata
	}{
		{"empty object", `{}`, state.Metadata{}},
		{"all keys", `{` + fullJSON + `}`, full},
		{"unknown keys ignored", `{"future": {"a": [1, null]}, "n": 3, ` + fullJSON + `, "zz": "x"}`, full},
		{"BOM", "\xef\xbb\xbf{" + fullJSON + "}", full},
		{"surrounding whitespace", "\n\t {" + fullJSON + "} \n\n", full},
		{"keys in another order", `{"color": "c", "copy_cwd": true, "identity": "x"}`,
			state.Metadata{Identity: "x", CopyCwd: true, Color: "c"}},
		{"null takes defaults", `{"identity": null, "agent_name": null, "cwd": null,
			"copy_cwd": null, "started_at": null, "compose_project": null,
			"backend": null, "label": null, "color": null}`, state.Metadata{}},
		{"null with spaces", `{"cwd" :  null  , "copy_cwd":null}`, state.Metadata{}},
		{"missing newer keys", `{"identity": "old-1", "agent_name": "a", "cwd": "/c",
			"copy_cwd": false, "started_at": "2025-01-02T03:04:05Z"}`,
			state.Metadata{Identity: "old-1", AgentName: "a", Cwd: "/c", StartedAt: "2025-01-02T03:04:05Z"}},
		{"escapes decoded", `{"agent_name": "\u00e9\ud83e\udd16\"\\\/\t"}`,
			state.Metadata{AgentName: "é🤖\"\\/\t"}},
		{"raw UTF-8 decoded", `{"agent_name": "é🤖"}`, state.Metadata{AgentName: "é🤖"}},
		{"copy_cwd false", `{"copy_cwd": false}`, state.Metadata{}},
		{"isoformat started_at kept verbatim", `{"started_at": "2026-12-04 13:22:57.5"}`,
			state.Metadata{StartedAt: "2026-12-04 13:22:57.5"}},
		{"empty started_at", `{"started_at": ""}`, state.Metadata{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := state.UnmarshalMetadata([]byte(tc.in))
			if err != nil {
				t.Fatalf("UnmarshalMetadata(%q): %v", tc.in, err)
			}
			if *m != tc.want {
				t.Errorf("UnmarshalMetadata(%q):\ngot  %+v\nwant %+v", tc.in, *m, tc.want)
			}
		})
	}
}

func TestMetadataDefaults(t *testing.T) {
	tests := []struct {
		name        string
		m           state.Metadata
		wantProject string
		wantBackend string
	}{
		{"stored values", state.Metadata{Identity: "demo-1t0d4", ComposeProject: "other", Backend: "smolmachines"},
			"other", "smolmachines"},
		{"old record, minted identity", state.Metadata{Identity: "demo-1t0d4"}, "demo-1t0d4", "docker"},
		{"old record, other identity", state.Metadata{Identity: "UPPER.case_x"},
			state.ComposeProject("UPPER.case_x"), "docker"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.m.Project(); got != tc.wantProject {
				t.Errorf("Project(): got %q, want %q", got, tc.wantProject)
			}
			if got := tc.m.BackendName(); got != tc.wantBackend {
				t.Errorf("BackendName(): got %q, want %q", got, tc.wantBackend)
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	at := func(nsec int) time.Time { return time.Date(2026, 12, 4, 13, 22, 57, nsec, time.UTC) }
	tests := []struct {
		in   string
		want time.Time
	}{
		{"2026-12-04T13:22:57Z", at(0)},
		{"2026-12-04T13:22:57+00:00", at(0)},
		{"2026-12-04T13:22:57-00:00", at(0)},
		{"2026-12-04T13:22:57.123456", at(123456000)},
		{"2026-12-04T13:22:57.123456Z", at(123456000)},
		{"2026-12-04T13:22:57.123456+00:00", at(123456000)},
		{"2026-12-04T13:22:57.123+00:00", at(123000000)},
		{"2026-12-04T13:22:57.123456789Z", at(123456789)},
		{"2026-12-04 13:22:57", at(0)},
		{"2026-12-04 13:22:57.123456", at(123456000)},
		{"2026-12-04 13:22:57+00:00", at(0)},
		{"2026-12-04T13:22:57", at(0)},
		{"2026-12-04T15:22:57+02:00", at(0)},
		{"2026-12-04T08:52:57-04:30", at(0)},
		{"2026-12-04T15:22:57.123456+02:00", at(123456000)},
		{"2026-12-04T18:53:12+05:30:15", at(0)},
		{"2026-12-04t13:22:57z", at(0)},
		{"2026-12-04T13:22:57z", at(0)},
		{"2026-12-04T13:22", time.Date(2026, 12, 4, 13, 22, 0, 0, time.UTC)},
		{"2026-12-04T13:22+00:00", time.Date(2026, 12, 4, 13, 22, 0, 0, time.UTC)},
		{"2026-12-04T13", time.Date(2026, 12, 4, 13, 0, 0, 0, time.UTC)},
		{"2026-12-04T13+00:00", time.Date(2026, 12, 4, 13, 0, 0, 0, time.UTC)},
		{"2026-12-04T15+02:00", time.Date(2026, 12, 4, 13, 0, 0, 0, time.UTC)},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := state.ParseTime(tc.in)
			if err != nil {
				t.Fatalf("ParseTime(%q): %v", tc.in, err)
			}
			if !got.Equal(tc.want) {
				t.Errorf("ParseTime(%q): got %v, want %v", tc.in, got, tc.want)
			}
			if got.Location() != time.UTC {
				t.Errorf("ParseTime(%q): got location %v, want UTC", tc.in, got.Location())
			}
		})
	}
}

func TestParseTimeRejects(t *testing.T) {
	for _, in := range []string{
		"",
		"garbage",
		"yesterday",
		"2026-12-04",
		"2026-12-04T",
		"13:22:57",
		"2026-12-04T13:22:57Zjunk",
		" 2026-12-04T13:22:57Z",
		"2026-12-04T13:22:57Z ",
		"2026-12-04T25:22:57Z",
		"2026-12-32T13:22:57Z",
		"2026-02-30T13:22:57Z",
		"2026-12-04T13:61:57Z",
		"2026/12/04 13:22:57",
		"2026-12-04X13:22:57Z",
		"1733318577",
		"2026-12-04T13:22:57+0000",
	} {
		t.Run(in, func(t *testing.T) {
			if got, err := state.ParseTime(in); err == nil {
				t.Errorf("ParseTime(%q): got %v, want an error", in, got)
			}
		})
	}
}

func TestFormatTime(t *testing.T) {
	in := time.Date(2026, 12, 4, 15, 22, 57, 999999999, time.FixedZone("x", 2*3600))
	const want = "2026-12-04T13:22:57Z"
	if got := state.FormatTime(in); got != want {
		t.Errorf("FormatTime: got %q, want %q", got, want)
	}
	back, err := state.ParseTime(want)
	if err != nil {
		t.Fatalf("ParseTime(FormatTime): %v", err)
	}
	if !back.Equal(in.Truncate(time.Second)) {
		t.Errorf("ParseTime(FormatTime): got %v, want %v", back, in.Truncate(time.Second))
	}
}

// metadataSeeds are every metadata.json and golden in testdata/compat.
func metadataSeeds(f *testing.F) [][]byte {
	f.Helper()
	var seeds [][]byte
	err := filepath.WalkDir("../testdata/compat", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(p) != ".json" {
			return err
		}
		data, err := os.ReadFile(p)
		seeds = append(seeds, data)
		return err
	})
	if err != nil {
		f.Fatalf("read seeds: %v", err)
	}
	if len(seeds) == 0 {
		f.Fatal("no seeds found in ../testdata/compat")
	}
	return seeds
}

func FuzzUnmarshalMetadata(f *testing.F) {
	for _, s := range metadataSeeds(f) {
		f.Add(s)
	}
	for _, s := range []string{"", " ", "[]", `"x"`, "null", "{}", "\xef\xbb\xbf{}",
		`{"copy_cwd": "yes"}`, `{"started_at": "2026-12-04 13:22"}`, `{"cwd": "\ud800"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := state.UnmarshalMetadata(data)
		if err != nil {
			if !errors.Is(err, state.ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		out := state.MarshalMetadata(m)
		if !isASCII(string(out)) {
			t.Fatalf("MarshalMetadata wrote non-ASCII: %q", out)
		}
		back, err := state.UnmarshalMetadata(out)
		if err != nil {
			t.Fatalf("re-parse of %q: %v", out, err)
		}
		if *back != *m {
			t.Fatalf("re-parse: got %+v, want %+v", *back, *m)
		}
		if again := state.MarshalMetadata(back); !bytes.Equal(again, out) {
			t.Fatalf("second marshal: got %q, want %q", again, out)
		}
	})
}
