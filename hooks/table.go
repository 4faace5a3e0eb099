package hooks

import (
	"bufio"
	"bytes"
	"io"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/width"
)

const (
	// columnGap is the space between two columns of a table.
	columnGap = 2
	// tableChunk is the size of the blocks a table keeps its text in.
	tableChunk = 64 << 10
	// maxCellWidth bounds a cell of a table, in terminal columns: a longer
	// one is cut and ends in "…". The values a bottle is started with are
	// shorter; a longer one was written by something else, and one such
	// cell must not widen every row of a long table.
	maxCellWidth = 256
)

// table lays out rows of cells in columns, each column as wide as its
// widest cell plus a gap, the last cell of a row unpadded. Widths are
// terminal columns: East Asian wide characters take two, combining marks
// none. It keeps the cells as text in fixed blocks, so that a table of
// many rows costs little more than its text.
type table struct {
	// Each cell is followed by '\t', the last of a row by '\n'; a row
	// never spans two blocks.
	chunks [][]byte
	widths []int // of every column but a row's last cell
}

func (t *table) row(cells ...string) {
	size := 0
	for i, c := range cells {
		cells[i] = cutCell(c)
		size += len(cells[i]) + 1
	}
	n := len(t.chunks)
	if n == 0 || cap(t.chunks[n-1])-len(t.chunks[n-1]) < size {
		t.chunks = append(t.chunks, make([]byte, 0, max(size, tableChunk)))
		n++
	}
	text := t.chunks[n-1]
	for i, c := range cells {
		text = append(text, c...)
		if i == len(cells)-1 {
			text = append(text, '\n')
			break
		}
		text = append(text, '\t')
		if i == len(t.widths) {
			t.widths = append(t.widths, 0)
		}
		t.widths[i] = max(t.widths[i], cellWidth(c))
	}
	t.chunks[n-1] = text
}

// write writes the table to w through a 64 KiB buffer.
func (t *table) write(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	for _, text := range t.chunks {
		col := 0
		for len(text) > 0 {
			end := bytes.IndexAny(text, "\t\n")
			cell := text[:end]
			bw.Write(cell)
			if text[end] == '\n' {
				bw.WriteByte('\n')
				col = 0
			} else {
				pad(bw, t.widths[col]+columnGap-cellWidth(string(cell)))
				col++
			}
			text = text[end+1:]
		}
	}
	return bw.Flush()
}

const spaces = "                                                                "

func pad(bw *bufio.Writer, n int) {
	for n > 0 {
		k := min(n, len(spaces))
		bw.WriteString(spaces[:k])
		n -= k
	}
}

// runeWidth is the number of terminal columns r takes.
func runeWidth(r rune) int {
	switch {
	case r < utf8.RuneSelf:
		return 1
	case unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf):
		return 0
	}
	switch width.LookupRune(r).Kind() {
	case width.EastAsianWide, width.EastAsianFullwidth:
		return 2
	}
	return 1
}

func cellWidth(s string) int {
	i := 0
	for i < len(s) && s[i] < utf8.RuneSelf {
		i++
	}
	if i == len(s) {
		return len(s) // ASCII, one column a byte
	}
	n := i
	for _, r := range s[i:] {
		n += runeWidth(r)
	}
	return n
}

// cutCell cuts s to maxCellWidth columns, the last of them "…".
func cutCell(s string) string {
	if len(s) <= maxCellWidth || cellWidth(s) <= maxCellWidth {
		return s
	}
	n := 0
	for i, r := range s {
		if n+runeWidth(r) > maxCellWidth-1 {
			return s[:i] + "…"
		}
		n += runeWidth(r)
	}
	return s
}
