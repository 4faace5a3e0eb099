package hooks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/bot-bottle/bottle-hook/state"
)

// BottleInfo is one bottle as list and inspect show it. A broken entry has
// Error set and only its identity besides.
type BottleInfo struct {
	Identity       string `json:"identity"`
	AgentName      string `json:"agent_name"`
	StartedAt      string `json:"started_at"`
	Backend        string `json:"backend"`
	Label          string `json:"label"`
	Color          string `json:"color"`
	ComposeProject string `json:"compose_project"`
	Preserved      bool   `json:"preserved"`
	Rebuilt        bool   `json:"rebuilt"`
	// Session is "live" while a session wrapper holds the bottle, "dead"
	// once that wrapper is gone, "unknown" for a bottle never run under
	// one.
	Session  string `json:"session"`
	StateDir string `json:"state_dir"`
	Broken   bool   `json:"broken"`
	Error    string `json:"error"`
}

func infoOf(r *state.Root, b *state.Bottle) BottleInfo {
	return BottleInfo{
		Session:        string(r.SessionState(b.Identity)),
		Identity:       b.Identity,
		AgentName:      b.Meta.AgentName,
		StartedAt:      b.Meta.StartedAt,
		Backend:        b.Meta.BackendName(),
		Label:          b.Meta.Label,
		Color:          b.Meta.Color,
		ComposeProject: b.Meta.Project(),
		Preserved:      b.Preserved,
		Rebuilt:        b.Dockerfile != "",
		StateDir:       b.Dir,
	}
}

// List reads every bottle without locking and passes each to fn, in
// identity order, before reading the next. A broken entry is passed with
// its reason; an absent root has no bottles. It returns the first error
// of fn, or one opening the root.
func List(env *Env, fn func(*BottleInfo) error) error {
	r, err := env.open(false)
	if state.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer r.Close()
	return r.Walk(func(e state.Entry) error {
		if e.Err != nil {
			return fn(&BottleInfo{
				Identity: e.Identity, StateDir: r.StateDir(e.Identity),
				Broken: true, Error: e.Err.Error(),
			})
		}
		info := infoOf(r, e.Bottle)
		return fn(&info)
	})
}

// ListWriter renders a listing as List produces it. JSON goes out one
// bottle at a time; the text table keeps only its cells until Close, since
// its columns are as wide as their widest cell.
type ListWriter struct {
	w     io.Writer
	f     Format
	n     int
	table table
	buf   bytes.Buffer
	enc   *json.Encoder
}

// NewListWriter returns a ListWriter writing f to w.
func NewListWriter(w io.Writer, f Format) *ListWriter {
	lw := &ListWriter{w: w, f: f}
	if f == FormatJSON {
		// Indented as one element of the "bottles" array.
		lw.enc = json.NewEncoder(&lw.buf)
		lw.enc.SetIndent("    ", "  ")
		lw.enc.SetEscapeHTML(false)
	} else {
		lw.table.row("IDENTITY", "AGENT", "STARTED", "BACKEND", "LABEL", "PRESERVED",
			"IMAGE", "SESSION")
	}
	return lw
}

// Add renders one bottle.
func (lw *ListWriter) Add(b *BottleInfo) error {
	lw.n++
	if lw.f != FormatJSON {
		if b.Broken {
			lw.table.row(printable(b.Identity), "broken: "+printable(b.Error))
			return nil
		}
		image := "base"
		if b.Rebuilt {
			image = "rebuilt"
		}
		lw.table.row(b.Identity, orDash(printable(b.AgentName)), orDash(b.StartedAt),
			printable(b.Backend), orDash(printable(b.Label)), yesNo(b.Preserved), image,
			b.Session)
		return nil
	}
	lw.buf.Reset()
	if lw.n == 1 {
		lw.buf.WriteString("{\n  \"bottles\": [\n    ")
	} else {
		lw.buf.WriteString(",\n    ")
	}
	if err := lw.enc.Encode(b); err != nil {
		return err
	}
	lw.buf.Truncate(lw.buf.Len() - 1) // the encoder's newline
	_, err := lw.w.Write(lw.buf.Bytes())
	return err
}

// Close ends the listing: it closes the JSON document, or writes the
// table, which is nothing at all when there are no bottles.
func (lw *ListWriter) Close() error {
	if lw.f == FormatJSON {
		end := "\n  ]\n}\n"
		if lw.n == 0 {
			end = "{\n  \"bottles\": []\n}\n"
		}
		_, err := io.WriteString(lw.w, end)
		return err
	}
	if lw.n == 0 {
		return nil
	}
	return lw.table.write(lw.w)
}

// InspectResult is one bottle in full.
type InspectResult struct {
	BottleInfo
	Cwd        string           `json:"cwd"`
	CopyCwd    bool             `json:"copy_cwd"`
	Image      string           `json:"image"`
	Dockerfile string           `json:"dockerfile"`
	Transcript string           `json:"transcript"`
	Dirs       Dirs             `json:"dirs"`
	LiveConfig []LiveConfigFile `json:"live_config"`
	// Events are the last records of the bottle's events log, oldest
	// first.
	Events []json.RawMessage `json:"events"`
}

// LiveConfigFile describes one live-config file.
type LiveConfigFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	Digest string `json:"digest"`
}

// Inspect reads one bottle in full, without locking. It fails with
// state.ErrNotFound for a bottle without state.
func Inspect(env *Env, id, baseImage string) (*InspectResult, error) {
	if err := state.ValidateIdentity(id); err != nil {
		return nil, err
	}
	r, err := env.open(false)
	if state.IsNotExist(err) {
		return nil, notFound(id, env.RootDir)
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := r.Load(id)
	if err != nil {
		return nil, err
	}
	if baseImage == "" {
		baseImage = DefaultImage
	}
	spec := NewLaunchSpec(b, baseImage, false)
	res := &InspectResult{
		BottleInfo: infoOf(r, b),
		Cwd:        b.Meta.Cwd,
		CopyCwd:    b.Meta.CopyCwd,
		Image:      spec.Image,
		Dockerfile: spec.Dockerfile,
		Transcript: spec.Transcript,
		Dirs:       spec.Dirs,
		LiveConfig: []LiveConfigFile{},
	}
	files, err := r.LiveFiles(id)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		res.LiveConfig = append(res.LiveConfig, LiveConfigFile(f))
	}
	// A broken log is worth a warning, not the loss of the rest.
	lines, err := r.EventsTail(id, eventsTail)
	if err != nil {
		env.logger().Named("inspect").Warn("events log not shown", keyIdentity, id, keyError, err)
	}
	res.Events = make([]json.RawMessage, 0, len(lines))
	for _, l := range lines {
		if json.Valid(l) {
			res.Events = append(res.Events, l)
		}
	}
	return res, nil
}

// Write renders the bottle as "key: value" lines in text.
func (res *InspectResult) Write(w io.Writer, f Format) error {
	if f == FormatJSON {
		return writeJSON(w, res)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, orDash(v)) }
	row("identity", res.Identity)
	row("agent", printable(res.AgentName))
	row("started", res.StartedAt)
	row("backend", res.Backend)
	row("label", printable(res.Label))
	row("color", printable(res.Color))
	row("compose project", res.ComposeProject)
	row("cwd", printable(res.Cwd))
	row("copy cwd", yesNo(res.CopyCwd))
	row("preserved", yesNo(res.Preserved))
	row("session", res.Session)
	row("state dir", res.StateDir)
	row("image", res.Image)
	row("dockerfile", res.Dockerfile)
	row("transcript", res.Transcript)
	for _, lc := range res.LiveConfig {
		row(lc.Name, fmt.Sprintf("%d bytes, %s", lc.Size, lc.Digest))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(res.Events) > 0 {
		fmt.Fprintln(w, "events:")
	}
	for _, raw := range res.Events {
		var ev Event
		if json.Unmarshal(raw, &ev) != nil {
			continue
		}
		when := printable(ev.Time)
		if t, err := time.Parse(time.RFC3339Nano, ev.Time); err == nil {
			// Fixed width, so that the columns line up.
			when = t.UTC().Format("2006-01-02T15:04:05.000Z")
		}
		line := fmt.Sprintf("  %s  %-13s %-6s", when, ev.Event, printable(ev.Outcome))
		if ev.Decision != "" {
			line += " " + ev.Decision
		}
		if ev.Error != "" {
			line += ": " + printable(ev.Error)
		}
		fmt.Fprintln(w, line)
	}
	return nil
}

// GCResult lists what gc did, or would do on a dry run.
type GCResult struct {
	DryRun  bool       `json:"dry_run"`
	Actions []GCAction `json:"actions"`
}

// GCAction is one collected item.
type GCAction struct {
	Kind     string `json:"kind"`
	Identity string `json:"identity"`
	Path     string `json:"path"`
}

// GC collects what interrupted calls left behind; see state.Root.GC.
func GC(env *Env, dryRun bool, olderThan time.Duration) (*GCResult, error) {
	log := env.logger().Named("gc")
	res := &GCResult{DryRun: dryRun, Actions: []GCAction{}}
	r, err := env.open(false)
	if state.IsNotExist(err) {
		return res, nil
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()
	actions, err := r.GC(state.GCOptions{DryRun: dryRun, OlderThan: olderThan, Now: env.now()})
	for _, a := range actions {
		res.Actions = append(res.Actions, GCAction(a))
		if !dryRun {
			log.Warn("collected", "kind", a.Kind, keyIdentity, a.Identity, keyPath, a.Path)
		}
	}
	if err != nil {
		return res, err
	}
	log.Info("gc done", "actions", len(actions), "dry_run", dryRun)
	return res, nil
}

// Write renders one "<kind> <path>" line per action, each prefixed by
// "would " on a dry run.
func (res *GCResult) Write(w io.Writer, f Format) error {
	if f == FormatJSON {
		return writeJSON(w, res)
	}
	prefix := ""
	if res.DryRun {
		prefix = "would "
	}
	for _, a := range res.Actions {
		if _, err := fmt.Fprintf(w, "%s%s %s\n", prefix, a.Kind, a.Path); err != nil {
			return err
		}
	}
	return nil
}
