package hooks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"text/tabwriter"
)

// tabwriterTable lays out rows the way list once did, with text/tabwriter.
func tabwriterTable(rows [][]string) string {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 4, columnGap, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
	return b.String()
}

func tableText(t *testing.T, rows [][]string) string {
	t.Helper()
	var tb table
	for _, r := range rows {
		tb.row(r...)
	}
	var b bytes.Buffer
	if err := tb.write(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestTableMatchesTabwriter(t *testing.T) {
	// For text one column per character, the layout is text/tabwriter's.
	rows := [][]string{
		{"IDENTITY", "AGENT", "STARTED", "LABEL"},
		{"demo-abc12", "Démo", "2026-12-04T13:22:00Z", "-"},
		{"x-00000", "Ωmega ñandú", "-", "a label"},
		{"a-very-long-identity-00001", "a", "2026-12-04T13:22:00Z", "é"},
	}
	if got, want := tableText(t, rows), tabwriterTable(rows); got != want {
		t.Errorf("table:\n%s\ntabwriter:\n%s", got, want)
	}
}

func TestTableCountsTerminalColumns(t *testing.T) {
	got := tableText(t, [][]string{
		{"AGENT", "LABEL"},
		{"日本語", "wide: two columns each"},
		{"Cafe\u0301", "a combining mark takes none"},
		{"ｆｕｌｌ", "fullwidth"},
		{"🤖", "emoji"},
		{"plain", "-"},
	})
	// The widest cell is ｆｕｌｌ, eight columns.
	want := "" +
		"AGENT     LABEL\n" +
		"日本語    wide: two columns each\n" +
		"Cafe\u0301      a combining mark takes none\n" +
		"ｆｕｌｌ  fullwidth\n" +
		"🤖        emoji\n" +
		"plain     -\n"
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestTableCutsLongCells(t *testing.T) {
	long := strings.Repeat("x", 100000)
	got := tableText(t, [][]string{
		{"ID", "LABEL", "END"},
		{"a", long, "end"},
		{"b", strings.Repeat("日", 200), "end"},
	})
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3", len(lines))
	}
	cut := strings.Repeat("x", maxCellWidth-1) + "…"
	if want := "a   " + cut + "  end"; lines[1] != want {
		t.Errorf("long ASCII cell: got %d bytes, want it cut to %d columns", len(lines[1]), maxCellWidth)
	}
	if w := cellWidth(lines[2]); w != cellWidth(lines[1]) {
		t.Errorf("long wide cell: row is %d columns, the ASCII row %d", w, cellWidth(lines[1]))
	}
	if !strings.Contains(lines[2], "…") {
		t.Errorf("long wide cell not cut: %q", lines[2])
	}
}

func TestTableSpansBlocks(t *testing.T) {
	var rows [][]string
	for i := range 5000 { // about 150 KiB, three blocks
		rows = append(rows, []string{fmt.Sprintf("id-%05d", i), strings.Repeat("x", i%17), "end"})
	}
	// A row longer than a block gets a block of its own.
	rows = append(rows, []string{"long", "y", strings.Repeat("y,", maxCellWidth)})
	for range tableChunk / 200 {
		rows = append(rows, []string{"wide", strings.Repeat("z", 190), "end"})
	}
	rows = append(rows, []string{"after", "z", "end"})
	want := tabwriterTable(rows)
	want = strings.Replace(want, strings.Repeat("y,", maxCellWidth),
		strings.Repeat("y,", maxCellWidth/2)[:maxCellWidth-1]+"…", 1)
	if got := tableText(t, rows); got != want {
		t.Errorf("table of %d rows differs from tabwriter's (%d and %d bytes)", len(rows), len(got), len(want))
	}
}

func TestTableAlignsAcrossShortRows(t *testing.T) {
	// A row with fewer cells (a broken bottle) does not restart the
	// alignment of the columns after it, as it would in text/tabwriter.
	got := tableText(t, [][]string{
		{"IDENTITY", "AGENT", "SESSION"},
		{"a-00001", "x", "live"},
		{"b-00002", "broken: no metadata.json"},
		{"c-00003", "a-much-longer-agent", "dead"},
	})
	want := "" +
		"IDENTITY  AGENT                SESSION\n" +
		"a-00001   x                    live\n" +
		"b-00002   broken: no metadata.json\n" +
		"c-00003   a-much-longer-agent  dead\n"
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestListWriterJSONIsOneDocument(t *testing.T) {
	bottles := []BottleInfo{
		{Identity: "demo-abc12", AgentName: "<demo> & \"co\"", StartedAt: "2026-12-04T13:22:00Z",
			Backend: "docker", Session: "live", StateDir: "/r/state/demo-abc12"},
		{Identity: "bad-00001", StateDir: "/r/state/bad-00001", Broken: true, Error: "no metadata.json"},
		{Identity: "x-00002", AgentName: "日本", Preserved: true, Rebuilt: true, Session: "unknown"},
	}
	for n := 0; n <= len(bottles); n++ {
		var got bytes.Buffer
		lw := NewListWriter(&got, FormatJSON)
		for i := range bottles[:n] {
			if err := lw.Add(&bottles[i]); err != nil {
				t.Fatal(err)
			}
		}
		if err := lw.Close(); err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		doc := struct {
			Bottles []BottleInfo `json:"bottles"`
		}{Bottles: append([]BottleInfo{}, bottles[:n]...)}
		if err := writeJSON(&want, doc); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Errorf("%d bottles: streamed\n%s\nwant, as one encoding:\n%s", n, got.String(), want.String())
		}
		if !json.Valid(got.Bytes()) {
			t.Errorf("%d bottles: not valid JSON", n)
		}
	}
}
