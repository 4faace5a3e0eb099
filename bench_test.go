package main

// Benchmarks of whole command lines, run in process so that they can be
// profiled:
//
//	go test -run '^$' -bench . -benchmem -cpuprofile cpu.out -memprofile mem.out
//
// BenchmarkSessionEnd10kFiles makes 10,000 files, untimed, before every
// call; on a slow disk give it -benchtime 5x.
//
// They time nothing against a goal; scripts/bench measures the ratios that
// have goals. Output goes to /dev/null through a real file, as it does from
// the binary, so that the cost of each write(2) shows.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/bot-bottle/bottle-hook/state"
)

// benchCall runs one command line in process, failing the benchmark on a
// non-zero exit. It returns what the command printed when out is nil.
func benchCall(b *testing.B, out *os.File, args ...string) string {
	b.Helper()
	if out != nil {
		benchCallTo(b, out, args...)
		return ""
	}
	var buf bytes.Buffer
	benchCallTo(b, &buf, args...)
	return buf.String()
}

func benchCallTo(b *testing.B, stdout io.Writer, args ...string) {
	b.Helper()
	var stderr bytes.Buffer
	if code := run(append([]string{progName}, args...), strings.NewReader(""), stdout, &stderr); code != 0 {
		b.Fatalf("%q: exit %d: %s", args, code, stderr.String())
	}
}

func benchDevNull(b *testing.B) *os.File {
	b.Helper()
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return f
}

// benchNewBottle makes a bottle with pre-start and returns its identity.
func benchNewBottle(b *testing.B, root string) string {
	b.Helper()
	env := benchCall(b, nil, "--root", root, "--log-level", "warn", "pre-start",
		"--agent", "bench", "--cwd", "/srv/project", "--output", "env")
	for _, line := range strings.Split(env, "\n") {
		if v, ok := strings.CutPrefix(line, "BOTTLE_IDENTITY="); ok {
			return strings.Trim(v, "'")
		}
	}
	b.Fatalf("no BOTTLE_IDENTITY in %q", env)
	return ""
}

// benchFillRoot makes n bottles: copies of one made by pre-start, each with
// its metadata written by the state package for its identity. The bottle
// made by pre-start is removed again.
func benchFillRoot(b *testing.B, root string, n int) {
	b.Helper()
	tpl := benchNewBottle(b, root)
	stateDir := filepath.Join(root, "state")
	data, err := os.ReadFile(filepath.Join(stateDir, tpl, state.MetadataName))
	if err != nil {
		b.Fatal(err)
	}
	meta, err := state.UnmarshalMetadata(data)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < n; i++ {
		id := "bench-" + fmt.Sprintf("%05s", strconv.FormatInt(int64(i), 36))
		dir := filepath.Join(stateDir, id)
		if err := os.Mkdir(dir, 0o700); err != nil {
			b.Fatal(err)
		}
		for _, sd := range state.Subdirs {
			if err := os.Mkdir(filepath.Join(dir, sd.Name), sd.Mode); err != nil {
				b.Fatal(err)
			}
			if err := os.Chmod(filepath.Join(dir, sd.Name), sd.Mode); err != nil {
				b.Fatal(err)
			}
		}
		m := *meta
		m.Identity, m.ComposeProject = id, state.ComposeProject(id)
		if err := os.WriteFile(filepath.Join(dir, state.MetadataName), state.MarshalMetadata(&m), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	benchCall(b, nil, "--root", root, "--log-level", "warn", "session-end", "--force", tpl)
}

// benchRoutes is a valid routes.yaml of exactly size bytes whose first line
// holds nonce.
func benchRoutes(size int, nonce string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# generation %s\nroutes:\n", nonce)
	for i := 0; ; i++ {
		r := fmt.Sprintf("  - host: api-%05d.example.com\n    port: 443\n    methods: [GET, POST]\n"+
			"    paths:\n      - /v1/items/%d\n      - /v1/users\n    headers: {x-bottle: \"route-%d\"}\n", i, i, i)
		if b.Len()+len(r)+2 > size {
			break
		}
		b.WriteString(r)
	}
	if pad := size - b.Len(); pad >= 2 {
		b.WriteString("#" + strings.Repeat("-", pad-2) + "\n")
	}
	return b.Bytes()
}

func BenchmarkVersion(b *testing.B) {
	null := benchDevNull(b)
	for b.Loop() {
		benchCall(b, null, "version")
	}
}

func BenchmarkPreStart(b *testing.B) {
	root := filepath.Join(b.TempDir(), "root")
	null := benchDevNull(b)
	for b.Loop() {
		benchCall(b, null, "--root", root, "pre-start", "--agent", "bench", "--cwd", "/srv/project")
	}
}

func BenchmarkSessionEnd10kFiles(b *testing.B) {
	root := filepath.Join(b.TempDir(), "root")
	null := benchDevNull(b)
	content := bytes.Repeat([]byte("x"), 64)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		id := benchNewBottle(b, root)
		tr := filepath.Join(root, "state", id, state.TranscriptName)
		if err := os.Mkdir(tr, 0o700); err != nil {
			b.Fatal(err)
		}
		for d := 0; d < 100; d++ {
			sub := filepath.Join(tr, fmt.Sprintf("s%03d", d))
			if err := os.Mkdir(sub, 0o700); err != nil {
				b.Fatal(err)
			}
			for f := 0; f < 100; f++ {
				if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("t%03d.json", f)), content, 0o644); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.StartTimer()
		benchCall(b, null, "--root", root, "session-end", id)
	}
}

// benchList lists n bottles, its output going to /dev/null as the binary's
// does (stdout=file), or through a buffer (stdout=buffered): the difference
// is the cost of the text table's many small writes.
func benchList(b *testing.B, n int) {
	root := filepath.Join(b.TempDir(), "root")
	benchFillRoot(b, root, n)
	null := benchDevNull(b)
	b.Run("stdout=file", func(b *testing.B) {
		for b.Loop() {
			benchCall(b, null, "--root", root, "list")
		}
	})
	b.Run("stdout=buffered", func(b *testing.B) {
		for b.Loop() {
			w := bufio.NewWriterSize(null, 64<<10)
			benchCallTo(b, w, "--root", root, "list")
			if err := w.Flush(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkList1k(b *testing.B)  { benchList(b, 1000) }
func BenchmarkList10k(b *testing.B) { benchList(b, 10000) }

func BenchmarkPostApproval64KiB(b *testing.B) {
	dir := b.TempDir()
	root := filepath.Join(dir, "root")
	id := benchNewBottle(b, root)
	// Two versions, applied in turn, so that every call replaces the file.
	var files [2]string
	for i := range files {
		files[i] = filepath.Join(dir, fmt.Sprintf("routes-%d.yaml", i))
		if err := os.WriteFile(files[i], benchRoutes(64<<10, strconv.Itoa(i)), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	null := benchDevNull(b)
	i := 0
	for b.Loop() {
		benchCall(b, null, "--root", root, "post-approval", id, "--routes", files[i%2])
		i++
	}
}

func BenchmarkValidateRoutes64KiB(b *testing.B) {
	data := benchRoutes(64<<10, "0")
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := state.ValidateRoutes(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkYAMLNodeParse64KiB is the floor of any YAML check: parsing the
// routes into nodes, without building Go values.
func BenchmarkYAMLNodeParse64KiB(b *testing.B) {
	data := benchRoutes(64<<10, "0")
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var n yaml.Node
			err := dec.Decode(&n)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}
