package hooks

import (
	"io"
	"unicode/utf8"
)

const (
	// columnGap is the space between two columns of a table.
	columnGap = 2
	// tableChunk is the size of the blocks a table keeps its text in.
	tableChunk = 64 << 10
)

// table lays out rows of cells in columns, each column as wide as its
// widest cell plus a gap, the last cell of a row unpadded. It keeps the
// cells as text in fixed blocks, so that a table of many rows costs little
// more than its text: text/tabwriter keeps a record per cell besides, and
// one growing buffer would be copied at each doubling.
type table struct {
	// Each cell is followed by '\t', the last of a row by '\n'; a row
	// never spans two blocks.
	chunks [][]byte
	widths []int // in runes, of every column but a row's last cell
}

func (t *table) row(cells ...string) {
	size := 0
	for _, c := range cells {
		size += len(c) + 1
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
		t.widths[i] = max(t.widths[i], utf8.RuneCountInString(c))
	}
	t.chunks[n-1] = text
}

// write writes the table to w, a block at a time.
func (t *table) write(w io.Writer) error {
	var out []byte
	for _, text := range t.chunks {
		out = out[:0]
		col, width := 0, 0
		for _, c := range text {
			switch {
			case c == '\t':
				for pad := t.widths[col] + columnGap - width; pad > 0; pad-- {
					out = append(out, ' ')
				}
				col, width = col+1, 0
				continue
			case c == '\n':
				col, width = 0, 0
			case utf8.RuneStart(c):
				width++
			}
			out = append(out, c)
		}
		if _, err := w.Write(out); err != nil {
			return err
		}
	}
	return nil
}
