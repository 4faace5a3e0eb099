// Command benchtool is the helper of scripts/bench: it times commands side
// by side, builds the state trees the benchmarks need, and prints the
// result table. It is not part of bottle-hook.
//
//	benchtool compare -out FILE -name NAME -goal G [-runs N] [-warmup W] [-scale S]
//	                  [-a-prep SH] (-a CMD | -a-sh SH) [-b-prep SH] (-b CMD | -b-sh SH)
//	                  [-mem LABEL] [-mem-ref]
//	benchtool note    -out FILE -name NAME -reason TEXT
//	benchtool report  [-strip DIR] FILE
//	benchtool clone   -root ROOT -src STATEDIR -count N [-prefix P]
//	benchtool mktree  -dir DIR [-dirs 100] [-files 100] [-size 64]
//	benchtool routes  -out FILE -size BYTES -nonce TEXT
//
// compare runs the two commands alternately (A B, then B A, ...), so that
// machine noise hits both alike, and records the median wall time of each
// and their ratio A/B, divided by -scale. A command given with -a or -b is
// split on blanks and executed directly; one given with -a-sh or -b-sh is
// run by /bin/sh -c. A prep script, run by bash before every timed run and
// never timed, may print one word that replaces "{prep}" in the command. Every
// timed command runs with stdin and stdout on /dev/null and its stderr in a
// scratch file, shown if it fails. Its peak memory is the ru_maxrss that
// wait4 reports; -mem asks for a memory row comparing side A against the
// side B of the comparison marked -mem-ref.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/bot-bottle/bottle-hook/state"
)

func main() {
	if len(os.Args) < 2 {
		fatalf("usage: benchtool compare|note|report|clone|mktree|routes ...")
	}
	cmds := map[string]func([]string) error{
		"compare": compare,
		"note":    note,
		"report":  report,
		"clone":   clone,
		"mktree":  mktree,
		"routes":  routes,
	}
	fn, ok := cmds[os.Args[1]]
	if !ok {
		fatalf("unknown subcommand %q", os.Args[1])
	}
	if err := fn(os.Args[2:]); err != nil {
		fatalf("%s: %v", os.Args[1], err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "benchtool: "+format+"\n", args...)
	os.Exit(1)
}

// Result is one line of the results file.
type Result struct {
	Name    string  `json:"name"`
	Skipped string  `json:"skipped,omitempty"`
	A       string  `json:"a"`
	B       string  `json:"b"`
	Runs    int     `json:"runs"`
	AMedMS  float64 `json:"a_med_ms"`
	BMedMS  float64 `json:"b_med_ms"`
	AMinMS  float64 `json:"a_min_ms"`
	BMinMS  float64 `json:"b_min_ms"`
	Scale   float64 `json:"scale"`
	Ratio   float64 `json:"ratio"`
	Goal    float64 `json:"goal"`
	ARSSKiB int64   `json:"a_rss_kib"`
	BRSSKiB int64   `json:"b_rss_kib"`
	Mem     string  `json:"mem,omitempty"`
	MemRef  bool    `json:"mem_ref,omitempty"`
}

type side struct {
	prep string
	argv []string // executed directly, or ["/bin/sh", "-c", script]
	desc string
}

type sample struct {
	d   time.Duration
	rss int64 // KiB
}

func compare(args []string) error {
	fl := flag.NewFlagSet("compare", flag.ContinueOnError)
	out := fl.String("out", "", "results file to append to")
	name := fl.String("name", "", "name of the comparison")
	goal := fl.Float64("goal", 1, "highest acceptable ratio")
	runs := fl.Int("runs", 11, "timed runs of each side")
	warmup := fl.Int("warmup", 1, "untimed runs of each side first")
	scale := fl.Float64("scale", 1, "divide the ratio by this")
	aPrep := fl.String("a-prep", "", "bash script run before each run of A")
	aCmd := fl.String("a", "", "command A, split on blanks")
	aSh := fl.String("a-sh", "", "command A, a /bin/sh script")
	bPrep := fl.String("b-prep", "", "bash script run before each run of B")
	bCmd := fl.String("b", "", "command B, split on blanks")
	bSh := fl.String("b-sh", "", "command B, a /bin/sh script")
	mem := fl.String("mem", "", "label of a memory row for A")
	memRef := fl.Bool("mem-ref", false, "B is the memory reference")
	scratch := fl.String("scratch", os.TempDir(), "directory for stderr captures")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *out == "" || *name == "" || *runs < 1 {
		return errors.New("need -out, -name and -runs >= 1")
	}
	a, err := newSide(*aPrep, *aCmd, *aSh)
	if err != nil {
		return fmt.Errorf("side A: %w", err)
	}
	b, err := newSide(*bPrep, *bCmd, *bSh)
	if err != nil {
		return fmt.Errorf("side B: %w", err)
	}
	errFile := filepath.Join(*scratch, "benchtool-stderr")
	defer os.Remove(errFile)

	fmt.Fprintf(os.Stderr, "bench: %s (%d+%d runs each side)\n", *name, *warmup, *runs)
	began := time.Now()
	var as, bs []sample
	for i := 0; i < *warmup+*runs; i++ {
		order := []*side{a, b}
		if i%2 == 1 {
			order = []*side{b, a}
		}
		for _, s := range order {
			sm, err := s.run(i, errFile)
			if err != nil {
				return fmt.Errorf("%s: %w", *name, err)
			}
			if i < *warmup {
				continue
			}
			if s == a {
				as = append(as, sm)
			} else {
				bs = append(bs, sm)
			}
		}
	}
	res := Result{
		Name: *name, A: a.desc, B: b.desc, Runs: *runs,
		AMedMS: ms(median(as)), BMedMS: ms(median(bs)),
		AMinMS: ms(minimum(as)), BMinMS: ms(minimum(bs)),
		Scale: *scale, Goal: *goal,
		ARSSKiB: maxRSS(as), BRSSKiB: maxRSS(bs),
		Mem: *mem, MemRef: *memRef,
	}
	res.Ratio = res.AMedMS / res.BMedMS / res.Scale
	fmt.Fprintf(os.Stderr, "bench:   A %s: median %.2f ms, min %.2f ms, max RSS %d KiB\n",
		a.desc, res.AMedMS, res.AMinMS, res.ARSSKiB)
	fmt.Fprintf(os.Stderr, "bench:   B %s: median %.2f ms, min %.2f ms, max RSS %d KiB\n",
		b.desc, res.BMedMS, res.BMinMS, res.BRSSKiB)
	fmt.Fprintf(os.Stderr, "bench:   took %.1f s with preps\n", time.Since(began).Seconds())
	return appendResult(*out, res)
}

func newSide(prep, cmd, sh string) (*side, error) {
	s := &side{prep: prep}
	switch {
	case cmd != "" && sh != "":
		return nil, errors.New("give a command or a shell script, not both")
	case cmd != "":
		s.argv = strings.Fields(cmd)
		s.desc = cmd
	case sh != "":
		s.argv = []string{"/bin/sh", "-c", sh}
		s.desc = sh
	default:
		return nil, errors.New("no command")
	}
	return s, nil
}

// run preps and times one run of the side.
func (s *side) run(i int, errFile string) (sample, error) {
	word := ""
	if s.prep != "" {
		cmd := exec.Command("/bin/bash", "-c", s.prep)
		cmd.Env = append(os.Environ(), "BENCH_RUN="+strconv.Itoa(i))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		outb, err := cmd.Output()
		if err != nil {
			return sample{}, fmt.Errorf("prep %q: %w; stderr: %s", s.prep, err, bytes.TrimSpace(stderr.Bytes()))
		}
		word = strings.TrimSpace(string(outb))
	}
	argv := make([]string, len(s.argv))
	for j, a := range s.argv {
		argv[j] = strings.ReplaceAll(a, "{prep}", word)
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return sample{}, err
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return sample{}, err
	}
	defer null.Close()
	ef, err := os.Create(errFile)
	if err != nil {
		return sample{}, err
	}
	defer ef.Close()
	attr := &os.ProcAttr{Env: os.Environ(), Files: []*os.File{null, null, ef}}

	start := time.Now()
	p, err := os.StartProcess(path, argv, attr)
	if err != nil {
		return sample{}, err
	}
	st, err := p.Wait()
	d := time.Since(start)
	if err != nil {
		return sample{}, err
	}
	if !st.Success() {
		msg, _ := os.ReadFile(errFile)
		return sample{}, fmt.Errorf("%q: %s; stderr: %s", argv, st, bytes.TrimSpace(msg))
	}
	var rss int64
	if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss // KiB on Linux
	}
	return sample{d: d, rss: rss}, nil
}

func median(s []sample) time.Duration {
	d := make([]time.Duration, len(s))
	for i, x := range s {
		d[i] = x.d
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	n := len(d)
	if n%2 == 1 {
		return d[n/2]
	}
	return (d[n/2-1] + d[n/2]) / 2
}

func minimum(s []sample) time.Duration {
	m := s[0].d
	for _, x := range s {
		m = min(m, x.d)
	}
	return m
}

// maxRSS is the peak of the peaks: the most memory any run needed.
func maxRSS(s []sample) int64 {
	var m int64
	for _, x := range s {
		m = max(m, x.rss)
	}
	return m
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func appendResult(path string, res Result) error {
	line, err := json.Marshal(res)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func note(args []string) error {
	fl := flag.NewFlagSet("note", flag.ContinueOnError)
	out := fl.String("out", "", "results file to append to")
	name := fl.String("name", "", "name of the skipped comparison")
	reason := fl.String("reason", "", "why it was skipped")
	mem := fl.String("mem", "", "label of the memory row skipped with it")
	if err := fl.Parse(args); err != nil {
		return err
	}
	return appendResult(*out, Result{Name: *name, Skipped: *reason, Mem: *mem})
}

// report prints the table: the timed comparisons, then the memory rows.
func report(args []string) error {
	fl := flag.NewFlagSet("report", flag.ContinueOnError)
	strip := fl.String("strip", "", "directory shown as $S in the legend")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() != 1 {
		return errors.New("usage: benchtool report [-strip DIR] FILE")
	}
	f, err := os.Open(fl.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	var all []Result
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return err
		}
		all = append(all, r)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	row := func(cells ...string) { fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t") }
	verdict := func(ratio, goal float64) string {
		if ratio <= goal {
			return "ok"
		}
		return "over"
	}
	// x shows a ratio with two decimals, three when two would hide which
	// side of the goal it is on.
	x := func(ratio, goal float64) string {
		if s := fmt.Sprintf("%.2f", ratio); s == fmt.Sprintf("%.2f", goal) && ratio != goal {
			return fmt.Sprintf("%.3fx", ratio)
		}
		return fmt.Sprintf("%.2fx", ratio)
	}
	row("comparison", "A", "B", "ratio", "goal", "result")
	var refRSS int64
	for _, r := range all {
		if r.MemRef {
			refRSS = r.BRSSKiB
		}
		if r.Skipped != "" {
			row(r.Name, "-", "-", "-", "-", "skipped: "+r.Skipped)
			continue
		}
		ratio := x(r.Ratio, r.Goal)
		if r.Scale != 1 {
			ratio = fmt.Sprintf("%s (%.2fx/%g)", ratio, r.Ratio*r.Scale, r.Scale)
		}
		row(r.Name, fmt.Sprintf("%.1f ms", r.AMedMS), fmt.Sprintf("%.1f ms", r.BMedMS),
			ratio, fmt.Sprintf("<= %.1fx", r.Goal), verdict(r.Ratio, r.Goal))
	}
	const memGoal = 1.5
	for _, r := range all {
		if r.Mem == "" {
			continue
		}
		name := "peak RSS " + r.Mem + " vs version"
		if r.Skipped != "" || refRSS == 0 {
			row(name, "-", "-", "-", "-", "skipped")
			continue
		}
		ratio := float64(r.ARSSKiB) / float64(refRSS)
		row(name, mib(r.ARSSKiB), mib(refRSS), x(ratio, memGoal),
			fmt.Sprintf("<= %.1fx", memGoal), verdict(ratio, memGoal))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Println()
	short := func(s string) string {
		if *strip == "" {
			return s
		}
		return strings.ReplaceAll(s, *strip, "$S")
	}
	for _, r := range all {
		if r.Skipped == "" {
			fmt.Printf("%s\n  A: %s\n  B: %s\n", r.Name, short(r.A), short(r.B))
		}
	}
	return nil
}

func mib(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

// clone copies the bottle at STATEDIR into ROOT count times under new
// identities <prefix>-<5 base-36 digits>, with the same modes, and with
// its metadata.json rewritten for each identity by the state package, so
// every byte is what pre-start would have written for it.
func clone(args []string) error {
	fl := flag.NewFlagSet("clone", flag.ContinueOnError)
	root := fl.String("root", "", "state root to fill")
	src := fl.String("src", "", "state directory of the bottle to copy")
	count := fl.Int("count", 0, "how many copies")
	prefix := fl.String("prefix", "bench", "slug of the new identities")
	if err := fl.Parse(args); err != nil {
		return err
	}
	stateDir := filepath.Join(*root, "state")
	data, err := os.ReadFile(filepath.Join(*src, state.MetadataName))
	if err != nil {
		return err
	}
	meta, err := state.UnmarshalMetadata(data)
	if err != nil {
		return err
	}
	type entry struct {
		rel  string
		mode fs.FileMode
		data []byte
	}
	var tree []entry
	err = filepath.WalkDir(*src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(*src, p)
		e := entry{rel: rel, mode: fi.Mode()}
		switch {
		case fi.IsDir():
		case fi.Mode().IsRegular() && rel != state.MetadataName:
			if e.data, err = os.ReadFile(p); err != nil {
				return err
			}
		case rel == state.MetadataName:
		default:
			return fmt.Errorf("%s: only directories and regular files are cloned", p)
		}
		tree = append(tree, e)
		return nil
	})
	if err != nil {
		return err
	}
	for i := 0; i < *count; i++ {
		id := *prefix + "-" + fmt.Sprintf("%05s", strconv.FormatInt(int64(i), 36))
		if err := state.ValidateIdentity(id); err != nil {
			return err
		}
		m := *meta
		m.Identity, m.ComposeProject = id, state.ComposeProject(id)
		dst := filepath.Join(stateDir, id)
		for _, e := range tree {
			p := filepath.Join(dst, e.rel)
			if e.mode.IsDir() {
				if err := os.Mkdir(p, e.mode.Perm()); err != nil {
					return err
				}
			} else {
				content := e.data
				if e.rel == state.MetadataName {
					content = state.MarshalMetadata(&m)
				}
				if err := os.WriteFile(p, content, e.mode.Perm()); err != nil {
					return err
				}
			}
			// Modes are part of the layout, whatever the umask.
			if err := os.Chmod(p, e.mode.Perm()); err != nil {
				return err
			}
		}
	}
	return nil
}

// mktree fills DIR (created 0700 if missing) with dirs × files small files.
func mktree(args []string) error {
	fl := flag.NewFlagSet("mktree", flag.ContinueOnError)
	dir := fl.String("dir", "", "directory to fill")
	dirs := fl.Int("dirs", 100, "subdirectories")
	files := fl.Int("files", 100, "files in each")
	size := fl.Int("size", 64, "bytes in each file")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return err
	}
	content := bytes.Repeat([]byte("x"), *size)
	for d := 0; d < *dirs; d++ {
		sub := filepath.Join(*dir, fmt.Sprintf("s%03d", d))
		if err := os.Mkdir(sub, 0o700); err != nil {
			return err
		}
		for f := 0; f < *files; f++ {
			if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("t%03d.json", f)), content, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// routes writes a valid routes.yaml of about size bytes, with a nonce in
// its first line so that every file differs from the last.
func routes(args []string) error {
	fl := flag.NewFlagSet("routes", flag.ContinueOnError)
	out := fl.String("out", "", "file to write")
	size := fl.Int("size", 64<<10, "approximate size in bytes")
	nonce := fl.String("nonce", "", "text for the first line")
	if err := fl.Parse(args); err != nil {
		return err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# generation %s\nroutes:\n", *nonce)
	for i := 0; ; i++ {
		r := fmt.Sprintf("  - host: api-%05d.example.com\n"+
			"    port: 443\n"+
			"    methods: [GET, POST]\n"+
			"    paths:\n      - /v1/items/%d\n      - /v1/users\n"+
			"    headers: {x-bottle: \"route-%d\"}\n", i, i, i)
		if b.Len()+len(r)+2 > *size {
			break
		}
		b.WriteString(r)
	}
	// A comment pads the file to exactly size bytes.
	if pad := *size - b.Len(); pad >= 2 {
		b.WriteString("#" + strings.Repeat("-", pad-2) + "\n")
	}
	return os.WriteFile(*out, b.Bytes(), 0o644)
}
