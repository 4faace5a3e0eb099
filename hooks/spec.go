package hooks

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"

	"github.com/bot-bottle/bottle-hook/state"
)

// DefaultImage is the agent image a bottle runs when it has no per-bottle
// Dockerfile.
const DefaultImage = "bot-bottle-claude:latest"

// Format is an output format of a command.
type Format string

// Output formats.
const (
	FormatText Format = "text"
	FormatJSON Format = "json"
	FormatEnv  Format = "env"
)

// ParseFormat checks a --output value against the formats a command offers.
func ParseFormat(s string, allowed ...Format) (Format, error) {
	for _, f := range allowed {
		if s == string(f) {
			return f, nil
		}
	}
	return "", usagef("--output %q: want one of %v", s, allowed)
}

// Dirs are the absolute paths of a bottle's subdirectories.
type Dirs struct {
	Egress     string `json:"egress"`
	GitGate    string `json:"git_gate"`
	Supervise  string `json:"supervise"`
	Agent      string `json:"agent"`
	LiveConfig string `json:"live_config"`
	Transcript string `json:"transcript"`
}

// LaunchSpec is what a launcher needs to start a bottle. Its JSON keys and
// env variable names are a stable contract: keys may be added, none
// renamed.
type LaunchSpec struct {
	Identity       string `json:"identity"`
	AgentName      string `json:"agent_name"`
	ComposeProject string `json:"compose_project"`
	Resumed        bool   `json:"resumed"`
	StateDir       string `json:"state_dir"`
	Dirs           Dirs   `json:"dirs"`
	Image          string `json:"image"`
	Dockerfile     string `json:"dockerfile"`
	Transcript     string `json:"transcript"`
}

// NewLaunchSpec describes how to launch bottle b with baseImage unless b has
// its own Dockerfile.
func NewLaunchSpec(b *state.Bottle, baseImage string, resumed bool) *LaunchSpec {
	s := &LaunchSpec{
		Identity:       b.Identity,
		AgentName:      b.Meta.AgentName,
		ComposeProject: b.Meta.Project(),
		Resumed:        resumed,
		StateDir:       b.Dir,
		Dirs: Dirs{
			Egress:     b.SubdirPath("egress"),
			GitGate:    b.SubdirPath("git-gate"),
			Supervise:  b.SubdirPath("supervise"),
			Agent:      b.SubdirPath("agent"),
			LiveConfig: b.SubdirPath(state.LiveConfigName),
			Transcript: b.SubdirPath(state.TranscriptName),
		},
		Image:      baseImage,
		Dockerfile: b.Dockerfile,
		Transcript: b.Transcript,
	}
	if b.Dockerfile != "" {
		s.Image = state.ImageTag(b.Identity)
	}
	return s
}

// EnvVars returns the spec as environment variables, in a fixed order.
func (s *LaunchSpec) EnvVars() []EnvVar {
	return []EnvVar{
		{"BOTTLE_IDENTITY", s.Identity},
		{"BOTTLE_AGENT_NAME", s.AgentName},
		{"COMPOSE_PROJECT_NAME", s.ComposeProject},
		{"BOTTLE_RESUMED", strconv.FormatBool(s.Resumed)},
		{"BOTTLE_STATE_DIR", s.StateDir},
		{"BOTTLE_EGRESS_DIR", s.Dirs.Egress},
		{"BOTTLE_GIT_GATE_DIR", s.Dirs.GitGate},
		{"BOTTLE_SUPERVISE_DIR", s.Dirs.Supervise},
		{"BOTTLE_AGENT_DIR", s.Dirs.Agent},
		{"BOTTLE_LIVE_CONFIG_DIR", s.Dirs.LiveConfig},
		{"BOTTLE_TRANSCRIPT_DIR", s.Dirs.Transcript},
		{"BOTTLE_AGENT_IMAGE", s.Image},
		{"BOTTLE_DOCKERFILE", s.Dockerfile},
		{"BOTTLE_TRANSCRIPT", s.Transcript},
	}
}

// Write renders the spec in format f.
func (s *LaunchSpec) Write(w io.Writer, f Format) error {
	switch f {
	case FormatJSON:
		return writeJSON(w, s)
	case FormatEnv:
		return WriteEnvFile(w, s.EnvVars())
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, orDash(v)) }
	row("identity", s.Identity)
	row("agent", printable(s.AgentName))
	row("compose project", s.ComposeProject)
	row("resumed", yesNo(s.Resumed))
	row("state dir", s.StateDir)
	row("  egress", s.Dirs.Egress)
	row("  git-gate", s.Dirs.GitGate)
	row("  supervise", s.Dirs.Supervise)
	row("  agent", s.Dirs.Agent)
	row("  live-config", s.Dirs.LiveConfig)
	row("image", s.Image)
	row("dockerfile", s.Dockerfile)
	row("transcript", s.Transcript)
	return tw.Flush()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// printable quotes a value for a text table when it holds characters that
// would break the layout or hide what it says: controls, bidirectional
// overrides, zero-width and other invisible characters.
func printable(s string) string {
	if !utf8.ValidString(s) {
		return strconv.Quote(s)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}
