package state_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/bot-bottle/bottle-hook/state"
)

// The trees under testdata/compat/tree-*/ were written by the Python
// reference (scripts/make-compat-fixtures says which parts by hand). A git
// checkout lacks their empty directories (the reference's empty
// live-config/, for one), so the trees are read without them.

// copyTree copies testdata/compat/<name> into a fresh temporary root,
// leaving out empty directories whether or not the checkout has them, and
// returns the root's path.
func copyTree(t *testing.T, name string) string {
	t.Helper()
	src := filepath.Join("..", "testdata", "compat", name)
	dst := filepath.Join(t.TempDir(), "root")
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatalf("copy fixture %s: %v", name, err)
	}
	var dirs []string
	err := filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && p != dst {
			dirs = append(dirs, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(dirs))) // children first
	for _, d := range dirs {
		if entries, err := os.ReadDir(d); err == nil && len(entries) == 0 {
			if err := os.Remove(d); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dst
}

func openTree(t *testing.T, name string) (*state.Root, string) {
	t.Helper()
	dir := copyTree(t, name)
	r, err := state.Open(dir, state.Options{})
	if err != nil {
		t.Fatalf("Open(%s): %v", name, err)
	}
	t.Cleanup(func() { r.Close() })
	return r, dir
}

type wantBottle struct {
	id         string
	meta       state.Metadata
	started    time.Time
	project    string // Metadata.Project()
	backend    string // Metadata.BackendName()
	preserved  bool
	dockerfile bool
	transcript bool
}

var refStarted = time.Date(2026, 12, 4, 13, 22, 57, 0, time.UTC)

// minted fills in what every bottle started by refhook.py has.
func minted(id string, m state.Metadata) wantBottle {
	m.Identity, m.ComposeProject = id, id
	if m.StartedAt == "" {
		m.StartedAt = refNow
	}
	backend := m.Backend
	if backend == "" {
		backend = "docker"
	}
	return wantBottle{id: id, meta: m, started: refStarted, project: id, backend: backend}
}

func treeValues() []wantBottle {
	return []wantBottle{
		minted("d-mo-n-c-d-tn1tb", state.Metadata{
			AgentName: "Démo Ünïcødé 日本", Cwd: "/srv/dïr with spaces/项目",
			Backend: "docker", Label: "Lâbel", Color: "#ff0000",
		}),
		minted("de-mo-0o9bg", state.Metadata{
			AgentName: "De\u0301mo", Cwd: "/home/u/My Projects", CopyCwd: true,
		}),
		minted("emoji-bot-a3kx9", state.Metadata{
			AgentName: "emoji 🤖 bot", Cwd: "/srv/🚀", Backend: "smolmachines",
			Label: "🚀 launch", Color: "🟥",
		}),
		minted("plain-9piy1", state.Metadata{AgentName: "plain"}),
		minted("say-hi-bye-veufc", state.Metadata{
			AgentName: `say "hi" \ bye`, Cwd: `/srv/a \ b/"c"`,
			Label: "<b>&amp;</b>", Color: `\`,
		}),
		minted("tab-and-newline-2g7mc", state.Metadata{
			AgentName: "tab\tand\nnewline", Label: "line1\nline2\tend",
		}),
	}
}

func treeLifecycle() []wantBottle {
	alpha := minted("alpha-sodpc", state.Metadata{AgentName: "alpha", Cwd: "/srv/a"})
	alpha.preserved, alpha.dockerfile, alpha.transcript = true, true, true
	beta := minted("beta-32azi", state.Metadata{AgentName: "beta", Backend: "docker"})
	beta.dockerfile = true
	return []wantBottle{alpha, beta}
}

func treeLegacy() []wantBottle {
	iso := func(id, agent, startedAt string, started time.Time) wantBottle {
		w := minted(id, state.Metadata{AgentName: agent, StartedAt: startedAt})
		w.started = started
		return w
	}
	micro := refStarted.Add(123456 * time.Microsecond)
	bom := minted("b-m-015nk", state.Metadata{AgentName: "böm", Label: "été"})
	extra := minted("extra-zcl1j", state.Metadata{AgentName: "extra", Color: "teal"})
	return []wantBottle{
		bom,
		extra,
		iso("iso-east-oyysx", "iso-east", "2026-12-04T15:22:57+02:00", refStarted),
		iso("iso-hours-dtc9p", "iso-hours", "2026-12-04T13+00:00", refStarted.Truncate(time.Hour)),
		iso("iso-micro-offset-1tw7n", "iso-micro-offset", "2026-12-04T13:22:57.123456+00:00", micro),
		iso("iso-millis-3pmwk", "iso-millis", "2026-12-04T13:22:57.123+00:00", refStarted.Add(123*time.Millisecond)),
		iso("iso-minutes-78ssq", "iso-minutes", "2026-12-04T13:22+00:00", refStarted.Truncate(time.Minute)),
		iso("iso-naive-3158m", "iso-naive", "2026-12-04T13:22:57", refStarted),
		iso("iso-naive-micro-48j1m", "iso-naive-micro", "2026-12-04T13:22:57.123456", micro),
		iso("iso-offset-qznk3", "iso-offset", "2026-12-04T13:22:57+00:00", refStarted),
		iso("iso-space-838n3", "iso-space", "2026-12-04 13:22:57", refStarted),
		{
			// Every value null: the identity comes from the directory.
			id:      "nulls-bbbbb",
			meta:    state.Metadata{Identity: "nulls-bbbbb"},
			project: "nulls-bbbbb", backend: "docker",
		},
		{
			// The old shape: no compose_project, backend, label, color.
			id: "old-shape-aaaaa",
			meta: state.Metadata{
				Identity: "old-shape-aaaaa", AgentName: "Old Shäpe",
				Cwd: "/srv/old project", CopyCwd: true, StartedAt: "2025-01-02T03:04:05Z",
			},
			started: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
			project: "old-shape-aaaaa", backend: "docker",
		},
	}
}

// brokenLegacy is the entry of tree-legacy whose copy_cwd is a string.
const brokenLegacy = "zz-broken-ccccc"

func checkBottle(t *testing.T, root string, b *state.Bottle, want wantBottle) {
	t.Helper()
	if b.Identity != want.id {
		t.Errorf("Identity: got %q, want %q", b.Identity, want.id)
	}
	if wantDir := filepath.Join(root, "state", want.id); b.Dir != wantDir {
		t.Errorf("Dir: got %q, want %q", b.Dir, wantDir)
	}
	if b.Meta == nil {
		t.Fatal("Meta: got nil")
	}
	if *b.Meta != want.meta {
		t.Errorf("Meta:\ngot  %+v\nwant %+v", *b.Meta, want.meta)
	}
	if got := b.Meta.Project(); got != want.project {
		t.Errorf("Project(): got %q, want %q", got, want.project)
	}
	if got := b.Meta.BackendName(); got != want.backend {
		t.Errorf("BackendName(): got %q, want %q", got, want.backend)
	}
	started, err := b.Meta.Started()
	switch {
	case want.started.IsZero() && err == nil:
		t.Errorf("Started(): got %v, want an error for an empty started_at", started)
	case !want.started.IsZero() && err != nil:
		t.Errorf("Started(): %v", err)
	case !want.started.IsZero() && !started.Equal(want.started):
		t.Errorf("Started(): got %v, want %v", started, want.started)
	}
	if b.Preserved != want.preserved {
		t.Errorf("Preserved: got %v, want %v", b.Preserved, want.preserved)
	}
	wantPath := func(ok bool, name string) string {
		if !ok {
			return ""
		}
		return filepath.Join(root, "state", want.id, name)
	}
	if got, w := b.Dockerfile, wantPath(want.dockerfile, "Dockerfile"); got != w {
		t.Errorf("Dockerfile: got %q, want %q", got, w)
	}
	if got, w := b.Transcript, wantPath(want.transcript, "transcript"); got != w {
		t.Errorf("Transcript: got %q, want %q", got, w)
	}
}

var compatTrees = []struct {
	name    string
	bottles func() []wantBottle
	broken  []string // identities listed with an ErrCorrupt error
}{
	{"tree-values", treeValues, nil},
	{"tree-lifecycle", treeLifecycle, nil},
	{"tree-legacy", treeLegacy, []string{brokenLegacy}},
}

func TestCompatLoad(t *testing.T) {
	for _, tree := range compatTrees {
		t.Run(tree.name, func(t *testing.T) {
			r, root := openTree(t, tree.name)
			for _, want := range tree.bottles() {
				t.Run(want.id, func(t *testing.T) {
					b, err := r.Load(want.id)
					if err != nil {
						t.Fatalf("Load(%q): %v", want.id, err)
					}
					checkBottle(t, root, b, want)
				})
			}
		})
	}
}

func TestCompatList(t *testing.T) {
	for _, tree := range compatTrees {
		t.Run(tree.name, func(t *testing.T) {
			r, root := openTree(t, tree.name)
			wants := map[string]wantBottle{}
			var wantIDs []string
			for _, w := range tree.bottles() {
				wants[w.id] = w
				wantIDs = append(wantIDs, w.id)
			}
			wantIDs = append(wantIDs, tree.broken...)
			sort.Strings(wantIDs)

			var entries []state.Entry
			err := r.Walk(func(e state.Entry) error {
				entries = append(entries, e)
				return nil
			})
			if err != nil {
				t.Fatalf("Walk: %v", err)
			}
			var gotIDs []string
			for _, e := range entries {
				gotIDs = append(gotIDs, e.Identity)
			}
			if len(gotIDs) != len(wantIDs) {
				t.Fatalf("List identities: got %q, want %q", gotIDs, wantIDs)
			}
			for i := range gotIDs {
				if gotIDs[i] != wantIDs[i] {
					t.Fatalf("List identities: got %q, want %q", gotIDs, wantIDs)
				}
			}
			for _, e := range entries {
				t.Run(e.Identity, func(t *testing.T) {
					w, ok := wants[e.Identity]
					if !ok { // one of tree.broken
						if !errors.Is(e.Err, state.ErrCorrupt) || e.Bottle != nil {
							t.Errorf("entry: got bottle %v, error %v; want no bottle and an ErrCorrupt error", e.Bottle, e.Err)
						}
						return
					}
					if e.Err != nil {
						t.Fatalf("entry error: %v", e.Err)
					}
					checkBottle(t, root, e.Bottle, w)
				})
			}
		})
	}
}

func TestCompatBrokenEntry(t *testing.T) {
	r, root := openTree(t, "tree-legacy")
	_, err := r.Load(brokenLegacy)
	if !errors.Is(err, state.ErrCorrupt) {
		t.Fatalf("Load(%q): got %v, want an error wrapping ErrCorrupt", brokenLegacy, err)
	}
	// The error names the file; nothing is deleted.
	p := filepath.Join(root, "state", brokenLegacy, "metadata.json")
	if msg := err.Error(); !strings.Contains(msg, p) || !strings.Contains(msg, "copy_cwd") {
		t.Errorf("Load error %q: want it to name %s and copy_cwd", msg, p)
	}
	if _, err := os.Stat(p); err != nil {
		t.Errorf("after Load: %v, want the broken file left alone", err)
	}
}

// TestCompatRemovedBottle checks a bottle that the reference started and
// then ended: it is gone, and Load says so without creating anything.
func TestCompatRemovedBottle(t *testing.T) {
	r, root := openTree(t, "tree-lifecycle")
	const id = "gamma-q1dg9"
	_, err := r.Load(id)
	if !errors.Is(err, state.ErrNotFound) || !state.IsNotExist(err) {
		t.Fatalf("Load(%q): got %v, want an error wrapping ErrNotFound", id, err)
	}
	if _, err := os.Lstat(filepath.Join(root, "state", id)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("state dir of %q after Load: got %v, want it absent", id, err)
	}
}

// TestCompatLiveFiles checks that the live-config files the reference wrote
// are read, and that a bottle without a live-config dir (git drops the
// reference's empty one) simply has none.
func TestCompatLiveFiles(t *testing.T) {
	r, _ := openTree(t, "tree-lifecycle")
	routes := "routes:\n  - host: api.example.com\n    action: allow\n"
	allow := "api.example.com\n*.pypi.org\n"
	tests := []struct {
		id   string
		want []state.FileInfo
	}{
		{"alpha-sodpc", []state.FileInfo{
			{Name: "live-config/routes.yaml", Size: int64(len(routes)), Digest: state.Digest([]byte(routes))},
			{Name: "live-config/allowlist", Size: int64(len(allow)), Digest: state.Digest([]byte(allow))},
		}},
		{"beta-32azi", nil},
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			got, err := r.LiveFiles(tc.id)
			if err != nil {
				t.Fatalf("LiveFiles(%q): %v", tc.id, err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("LiveFiles(%q): got %+v, want %+v", tc.id, got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("LiveFiles(%q)[%d]: got %+v, want %+v", tc.id, i, got[i], tc.want[i])
				}
			}
		})
	}
}

// TestCompatResume resumes a preserved bottle the reference wrote: the
// subdirectories it never made are created with their modes, the marker is
// cleared by ClearPreserved, and the metadata is left byte for byte as the reference wrote it.
func TestCompatResume(t *testing.T) {
	r, root := openTree(t, "tree-lifecycle")
	const id = "alpha-sodpc"
	mdPath := filepath.Join(root, "state", id, "metadata.json")
	before, err := os.ReadFile(mdPath)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Resume(id)
	if err != nil {
		t.Fatalf("Resume(%q): %v", id, err)
	}
	// The marker stays until the start has passed its hooks.
	if !b.Preserved {
		t.Errorf("Resume: got Preserved false, want the marker still in place")
	}
	if err := r.ClearPreserved(id); err != nil {
		t.Fatalf("ClearPreserved(%q): %v", id, err)
	}
	if _, err := os.Lstat(filepath.Join(root, "state", id, ".preserve")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf(".preserve after ClearPreserved: got %v, want it removed", err)
	}
	for _, sd := range state.Subdirs {
		fi, err := os.Lstat(filepath.Join(root, "state", id, sd.Name))
		if err != nil {
			t.Errorf("subdir %s after Resume: %v", sd.Name, err)
			continue
		}
		if !fi.IsDir() || fi.Mode().Perm() != sd.Mode {
			t.Errorf("subdir %s after Resume: got %v, want a directory with mode %v", sd.Name, fi.Mode(), sd.Mode)
		}
	}
	after, err := os.ReadFile(mdPath)
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) {
		t.Errorf("metadata.json after Resume:\ngot:\n%s\nwant:\n%s", after, before)
	}
}

// TestCompatReferenceRecordsAreCanonical checks that every record refhook.py
// wrote untouched is byte for byte what MarshalMetadata writes for the same
// values, so a tree rewritten by bottle-hook stays identical.
func TestCompatReferenceRecordsAreCanonical(t *testing.T) {
	for _, tree := range []string{"tree-values", "tree-lifecycle"} {
		files, err := filepath.Glob(filepath.Join("..", "testdata", "compat", tree, "state", "*", "metadata.json"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no metadata files (%v)", tree, err)
		}
		for _, f := range files {
			t.Run(tree+"/"+filepath.Base(filepath.Dir(f)), func(t *testing.T) {
				data, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				m, err := state.UnmarshalMetadata(data)
				if err != nil {
					t.Fatalf("UnmarshalMetadata: %v", err)
				}
				if got := state.MarshalMetadata(m); string(got) != string(data) {
					t.Errorf("MarshalMetadata:\ngot:\n%s\nwant:\n%s", got, data)
				}
			})
		}
	}
}
