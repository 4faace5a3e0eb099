package hooks

import (
	"bytes"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// TestLineLogIsBounded: a hook that writes without ever ending a line
// cannot make the logger hold more than one line's worth of its output.
func TestLineLogIsBounded(t *testing.T) {
	var logged bytes.Buffer
	l := &lineLog{log: hclog.New(&hclog.LoggerOptions{Output: &logged}), stream: "stdout"}
	chunk := bytes.Repeat([]byte("a"), 32<<10)
	for range 64 {
		l.Write(chunk)
		if len(l.buf) > maxHookLine {
			t.Fatalf("buffer holds %d bytes, want at most %d", len(l.buf), maxHookLine)
		}
	}
	l.Write([]byte("tail\n"))
	l.flush()
	// 2 MiB in pieces of maxHookLine, the last one ending with "tail".
	want := 64 * (32 << 10) / maxHookLine
	if n := bytes.Count(logged.Bytes(), []byte("hook output")); n != want {
		t.Errorf("logged %d lines, want %d", n, want)
	}
}
