package hooks

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gofrs/flock"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bot-bottle/bottle-hook/state"
)

func TestParseOCIState(t *testing.T) {
	valid := []string{
		`{"ociVersion":"1.0.2","id":"c1","status":"creating","pid":42,"bundle":"/b"}`,
		"  \n{}\n",
		`{"id":"c1","annotations":{"a":"b"},"unknown":[1,2]}`,
	}
	for _, in := range valid {
		t.Run(in, func(t *testing.T) {
			if _, err := ParseOCIState([]byte(in)); err != nil {
				t.Errorf("got %v, want no error", err)
			}
		})
	}
	invalid := map[string]string{
		"":                                    "stdin is empty",
		" \n":                                 "stdin is empty",
		"null":                                "not a JSON object",
		`["id"]`:                              "not a JSON object",
		`"c1"`:                                "not a JSON object",
		`{"id":"c1"`:                          "unexpected EOF",
		`{"id":"c1"} {}`:                      "data after the JSON object",
		`{"id":"c1"}x`:                        "data after the JSON object",
		`{"id":1}`:                            "cannot unmarshal",
		`{"annotations":{"a":1}}`:             "cannot unmarshal",
		`{"annotations":["a"]}`:               "cannot unmarshal",
		`{"pid":"x"}`:                         "cannot unmarshal",
		"{\"id\":\"c1\",\"status\":\"\x00\"}": "invalid character",
	}
	for in, want := range invalid {
		t.Run(in, func(t *testing.T) {
			_, err := ParseOCIState([]byte(in))
			if !errors.Is(err, state.ErrInvalid) || !strings.Contains(err.Error(), want) {
				t.Errorf("got %v, want ErrInvalid mentioning %q", err, want)
			}
		})
	}
}

func FuzzParseOCIState(f *testing.F) {
	f.Add([]byte(`{"ociVersion":"1.0.2","id":"c1","status":"stopped","bundle":"/b",` +
		`"annotations":{"bot-bottle.identity":"demo-abcde","bot-bottle.root":"/r"}}`))
	f.Add([]byte(`{"id":"c1"} {}`))
	f.Add([]byte("null"))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := ParseOCIState(data)
		if err != nil {
			if !errors.Is(err, state.ErrInvalid) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q: want one line wrapping ErrInvalid", err)
			}
			return
		}
		// What was accepted survives a round trip.
		out, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseOCIState(out)
		if err != nil || again.ID != st.ID || again.Status != st.Status ||
			len(again.Annotations) != len(st.Annotations) {
			t.Fatalf("round trip of %q: got %+v, %v", data, again, err)
		}
	})
}

func TestReadOCIInputWithinLimit(t *testing.T) {
	data, err := ReadOCIInput(strings.NewReader("{}"), 2, time.Second)
	if err != nil || string(data) != "{}" {
		t.Errorf("got %q, %v; want {}", data, err)
	}
}

func TestReadOCIInputOversizedIsDrained(t *testing.T) {
	pr, pw := io.Pipe()
	written := make(chan error, 1)
	go func() {
		_, err := pw.Write(bytes.Repeat([]byte("a"), 3<<20))
		pw.Close()
		written <- err
	}()
	_, err := ReadOCIInput(pr, 1<<20, 5*time.Second)
	if !errors.Is(err, state.ErrInvalid) || !strings.Contains(err.Error(), "3145728 bytes") {
		t.Errorf("got %v, want ErrInvalid naming the size", err)
	}
	// The writer saw its whole input taken, not a closed pipe.
	if err := <-written; err != nil {
		t.Errorf("writer: %v", err)
	}
}

func TestReadOCIInputTimesOut(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	start := time.Now()
	_, err := ReadOCIInput(pr, 1<<20, 50*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "stdin still open after 50ms") {
		t.Errorf("got %v, want a timeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("returned after %s", d)
	}
}

func TestOCIRoot(t *testing.T) {
	tests := []struct {
		name       string
		annotation *string
		flag, home string
		want       string
		wantErr    error
	}{
		{name: "annotation", annotation: ptr("/srv/bb/"), want: "/srv/bb"},
		{name: "flag", flag: "/srv/flag", home: "/home/op", want: "/srv/flag"},
		{name: "flag and same annotation", annotation: ptr("/srv/bb/."), flag: "/srv/bb", want: "/srv/bb"},
		{name: "home", home: "/home/op", want: "/home/op/.bot-bottle"},
		{name: "annotation before home", annotation: ptr("/srv/bb"), home: "/home/op", want: "/srv/bb"},
		{name: "relative annotation", annotation: ptr("root"), wantErr: state.ErrInvalid},
		{name: "empty annotation", annotation: ptr(""), home: "/home/op", wantErr: state.ErrInvalid},
		{name: "dot annotation", annotation: ptr("."), wantErr: state.ErrInvalid},
		{name: "relative flag", flag: "root", wantErr: ErrUsage},
		{name: "annotation differs from flag", annotation: ptr("/srv/a"), flag: "/srv/b",
			wantErr: state.ErrInvalid},
		{name: "relative home", home: "home", wantErr: ErrUsage},
		{name: "nothing", wantErr: ErrUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &specs.State{ID: "c1", Annotations: map[string]string{}}
			if tt.annotation != nil {
				st.Annotations[AnnotationRoot] = *tt.annotation
			}
			got, err := ociRoot(st, tt.flag, tt.home)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("got %q, %v; want %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func ptr(s string) *string { return &s }

func TestOCIEnvBoundsWaits(t *testing.T) {
	tests := []struct {
		lock, hook         time.Duration
		wantLock, wantHook time.Duration
	}{
		{0, 0, OCILockWait, OCIHookTimeout},
		{state.DefaultLockWait, time.Minute, OCILockWait, time.Minute},
		{100 * time.Millisecond, time.Second, 100 * time.Millisecond, time.Second},
	}
	for _, tt := range tests {
		got := ociEnv(&Env{LockWait: tt.lock, HookTimeout: tt.hook}, "/r", "ctr")
		if got.LockWait != tt.wantLock || got.HookTimeout != tt.wantHook || got.RootDir != "/r" || got.Container != "ctr" {
			t.Errorf("ociEnv(lock %s, hook %s): got lock %s, hook %s, root %q, container %q; want %s, %s, /r, ctr",
				tt.lock, tt.hook, got.LockWait, got.HookTimeout, got.RootDir, got.Container, tt.wantLock, tt.wantHook)
		}
	}
}

// ociFixture is a state root with one bottle.
type ociFixture struct {
	env  *Env
	root string
	id   string
}

func newOCIFixture(t *testing.T) *ociFixture {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	env := &Env{RootDir: root}
	spec, err := PreStart(env, PreStartRequest{New: state.NewBottle{AgentName: "oci"}})
	if err != nil {
		t.Fatal(err)
	}
	return &ociFixture{env: &Env{}, root: root, id: spec.Identity}
}

// state renders a runtime state for the fixture's bottle.
func (fx *ociFixture) state(status specs.ContainerState, annotations map[string]string) []byte {
	data, err := json.Marshal(specs.State{
		Version: specs.Version, ID: "ctr-1", Status: status, Bundle: "/bundle",
		Annotations: annotations,
	})
	if err != nil {
		panic(err)
	}
	return data
}

func (fx *ociFixture) ours() map[string]string {
	return map[string]string{AnnotationIdentity: fx.id, AnnotationRoot: fx.root}
}

func (fx *ociFixture) exists(t *testing.T) bool {
	t.Helper()
	_, err := os.Lstat(filepath.Join(fx.root, "state", fx.id))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return err == nil
}

func TestOCIStages(t *testing.T) {
	tests := []struct {
		stage   string
		status  specs.ContainerState
		outcome string
		kept    bool
	}{
		{"createRuntime", specs.StateCreating, OutcomeFound, true},
		{"prestart", specs.StateCreated, OutcomeFound, true},
		{"", specs.StateCreating, OutcomeFound, true},
		{"poststop", specs.StateStopped, string(state.Removed), false},
		{"", specs.StateStopped, string(state.Removed), false},
	}
	for _, tt := range tests {
		t.Run(tt.stage+"/"+string(tt.status), func(t *testing.T) {
			fx := newOCIFixture(t)
			res, err := OCI(fx.env, OCIRequest{Stage: tt.stage, State: fx.state(tt.status, fx.ours())})
			if err != nil {
				t.Fatal(err)
			}
			if res.Outcome != tt.outcome || res.Identity != fx.id ||
				res.Container != "ctr-1" || res.Stage == "" {
				t.Errorf("got %+v, want outcome %s", res, tt.outcome)
			}
			if got := fx.exists(t); got != tt.kept {
				t.Errorf("bottle exists: got %v, want %v", got, tt.kept)
			}
		})
	}
}

func TestOCIStartRecordsContainer(t *testing.T) {
	fx := newOCIFixture(t)
	req := OCIRequest{Stage: "createRuntime", State: fx.state(specs.StateCreating, fx.ours())}
	if _, err := OCI(fx.env, req); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(fx.root, "queue", fx.id, state.EventsName))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	var ev Event
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Event != "oci-createRuntime" || ev.Container != "ctr-1" ||
		ev.Outcome != "ok" || ev.Decision != OutcomeFound {
		t.Errorf("last event %+v, want oci-createRuntime of ctr-1, ok, found", ev)
	}
}

func TestOCIRefusals(t *testing.T) {
	tests := []struct {
		name    string
		stage   string
		status  specs.ContainerState
		ann     func(fx *ociFixture) map[string]string
		wantErr error
	}{
		{"missing bottle", "createRuntime", specs.StateCreating, func(fx *ociFixture) map[string]string {
			return map[string]string{AnnotationIdentity: "gone-abcde", AnnotationRoot: fx.root}
		}, state.ErrNotFound},
		{"missing root", "createRuntime", specs.StateCreating, func(fx *ociFixture) map[string]string {
			return map[string]string{AnnotationIdentity: fx.id, AnnotationRoot: fx.root + "-nowhere"}
		}, state.ErrNotFound},
		{"unsafe identity", "poststop", specs.StateStopped, func(fx *ociFixture) map[string]string {
			return map[string]string{AnnotationIdentity: "../" + fx.id, AnnotationRoot: fx.root}
		}, state.ErrInvalid},
		{"relative root", "poststop", specs.StateStopped, func(fx *ociFixture) map[string]string {
			return map[string]string{AnnotationIdentity: fx.id, AnnotationRoot: "root"}
		}, state.ErrInvalid},
		{"poststop while running", "poststop", specs.StateRunning, (*ociFixture).ours, state.ErrInvalid},
		{"no stage from running", "", specs.StateRunning, (*ociFixture).ours, ErrUsage},
		{"unknown stage", "poststart", specs.StateRunning, (*ociFixture).ours, ErrUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newOCIFixture(t)
			res, err := OCI(fx.env, OCIRequest{Stage: tt.stage, State: fx.state(tt.status, tt.ann(fx))})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got %+v, %v; want %v", res, err, tt.wantErr)
			}
			if !fx.exists(t) {
				t.Errorf("the bottle was removed")
			}
		})
	}
}

func TestOCIForeignContainerTouchesNothing(t *testing.T) {
	// No root anywhere: a foreign container must not even need one.
	in := []byte(`{"ociVersion":"1.0.2","id":"other","status":"running","annotations":{"x":"y"}}`)
	for _, stage := range []string{"", "createRuntime", "poststop"} {
		res, err := OCI(&Env{}, OCIRequest{Stage: stage, State: in})
		if err != nil || res.Outcome != OutcomeIgnored || res.Identity != "" {
			t.Errorf("stage %q: got %+v, %v; want ignored", stage, res, err)
		}
	}
}

func TestOCIPoststopLockWaitIsBounded(t *testing.T) {
	fx := newOCIFixture(t)
	// Hold the bottle's lock as another call would.
	if err := os.MkdirAll(filepath.Join(fx.root, ".locks"), 0o700); err != nil {
		t.Fatal(err)
	}
	fl := flock.New(filepath.Join(fx.root, ".locks", fx.id))
	if ok, err := fl.TryLock(); !ok || err != nil {
		t.Fatalf("take lock: %v %v", ok, err)
	}
	defer fl.Close()

	fx.env.LockWait = 100 * time.Millisecond
	start := time.Now()
	_, err := OCI(fx.env, OCIRequest{Stage: "poststop", State: fx.state(specs.StateStopped, fx.ours())})
	if !errors.Is(err, state.ErrLocked) {
		t.Fatalf("got %v, want ErrLocked", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("gave up after %s, want about 100ms", d)
	}
	if !fx.exists(t) {
		t.Errorf("the bottle was removed while locked")
	}
}
