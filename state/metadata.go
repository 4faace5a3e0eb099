package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Backends a bottle may run on.
const (
	BackendDocker       = "docker"
	BackendSmolmachines = "smolmachines"
)

// maxMetadataSize bounds how much of metadata.json is read; a launch record
// is a few hundred bytes.
const maxMetadataSize = 1 << 20

// Metadata is the launch record of a bottle, stored as metadata.json in its
// state directory. Field order is the order of the keys on disk.
type Metadata struct {
	Identity       string
	AgentName      string
	Cwd            string
	CopyCwd        bool
	StartedAt      string
	ComposeProject string
	Backend        string
	Label          string
	Color          string
}

// Project returns the compose project name, deriving it from the identity
// for records written before the name was stored.
func (m *Metadata) Project() string {
	if m.ComposeProject != "" {
		return m.ComposeProject
	}
	return ComposeProject(m.Identity)
}

// BackendName returns the backend, "docker" for records that predate it.
func (m *Metadata) BackendName() string {
	if m.Backend != "" {
		return m.Backend
	}
	return BackendDocker
}

// Started parses StartedAt. It fails for an empty or unparseable value.
func (m *Metadata) Started() (time.Time, error) {
	return ParseTime(m.StartedAt)
}

// MarshalMetadata encodes m exactly as the Python implementation does: keys
// in field order, two-space indent, `": "` after keys, every character
// outside printable ASCII escaped as \uXXXX (lowercase hex, surrogate pairs
// above U+FFFF), and one trailing newline.
func MarshalMetadata(m *Metadata) []byte {
	var b bytes.Buffer
	b.WriteString("{\n")
	field := func(key string, last bool, value func()) {
		b.WriteString(`  "` + key + `": `)
		value()
		if !last {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	str := func(key, v string) { field(key, false, func() { writeASCIIString(&b, v) }) }
	str("identity", m.Identity)
	str("agent_name", m.AgentName)
	str("cwd", m.Cwd)
	field("copy_cwd", false, func() { b.WriteString(strconv.FormatBool(m.CopyCwd)) })
	str("started_at", m.StartedAt)
	str("compose_project", m.ComposeProject)
	str("backend", m.Backend)
	str("label", m.Label)
	field("color", true, func() { writeASCIIString(&b, m.Color) })
	b.WriteString("}\n")
	return b.Bytes()
}

// writeASCIIString writes s as a JSON string in pure ASCII. Invalid UTF-8
// never reaches here (input is validated), but would be written as U+FFFD.
func writeASCIIString(b *bytes.Buffer, s string) {
	const hexDigits = "0123456789abcdef"
	u4 := func(r rune) {
		b.WriteString(`\u`)
		for shift := 12; shift >= 0; shift -= 4 {
			b.WriteByte(hexDigits[(r>>shift)&0xf])
		}
	}
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r >= 0x20 && r < 0x7f:
			b.WriteByte(byte(r))
		case r > 0xffff:
			r -= 0x10000
			u4(0xd800 + (r>>10)&0x3ff)
			u4(0xdc00 + r&0x3ff)
		default:
			u4(r)
		}
	}
	b.WriteByte('"')
}

// UnmarshalMetadata decodes a launch record. Unknown keys are ignored;
// missing keys and null take their zero values; a UTF-8 byte-order mark is
// skipped. A value of the wrong type, invalid JSON, an empty document or a
// non-object is an error wrapping ErrCorrupt.
func UnmarshalMetadata(data []byte) (*Metadata, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, corruptf("empty file")
	}
	if !utf8.Valid(data) {
		return nil, corruptf("not UTF-8 text")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return nil, corruptf("not a JSON object")
		}
		return nil, corruptf("invalid JSON: %v", err)
	}
	if raw == nil {
		return nil, corruptf("not a JSON object")
	}
	m := &Metadata{}
	strs := []struct {
		key string
		dst *string
	}{
		{"identity", &m.Identity},
		{"agent_name", &m.AgentName},
		{"cwd", &m.Cwd},
		{"started_at", &m.StartedAt},
		{"compose_project", &m.ComposeProject},
		{"backend", &m.Backend},
		{"label", &m.Label},
		{"color", &m.Color},
	}
	for _, s := range strs {
		if err := decodeField(raw, s.key, s.dst); err != nil {
			return nil, err
		}
	}
	if err := decodeField(raw, "copy_cwd", &m.CopyCwd); err != nil {
		return nil, err
	}
	if m.StartedAt != "" {
		if _, err := ParseTime(m.StartedAt); err != nil {
			return nil, corruptf("started_at: %v", err)
		}
	}
	return m, nil
}

func decodeField[T any](raw map[string]json.RawMessage, key string, dst *T) error {
	v, ok := raw[key]
	if !ok || string(v) == "null" {
		return nil
	}
	if err := json.Unmarshal(v, dst); err != nil {
		return corruptf("%s: want a %s, got %s", key, kindName(*dst), jsonKind(v))
	}
	return nil
}

func kindName(v any) string {
	if _, ok := v.(bool); ok {
		return "boolean"
	}
	return "string"
}

func jsonKind(v json.RawMessage) string {
	switch c := bytes.TrimSpace(v); {
	case len(c) == 0:
		return "nothing"
	case c[0] == '"':
		return "a string"
	case c[0] == '{':
		return "an object"
	case c[0] == '[':
		return "an array"
	case c[0] == 't' || c[0] == 'f':
		return "a boolean"
	default:
		return "a number"
	}
}

// timeLayouts are the shapes of started_at accepted on read: RFC 3339 and
// what Python's datetime.isoformat() writes, with or without an offset
// (none means UTC), with "T", "t" or a space between date and time, to
// the hour, minute, second or fraction (isoformat's timespec).
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15",
	"2006-01-02T15Z07:00",
	"2006-01-02T15:04:05.999999999Z07:00:00",
}

// ParseTime parses a started_at value in any RFC 3339 or Python isoformat()
// shape. A time without an offset is taken as UTC.
func ParseTime(s string) (time.Time, error) {
	v := s
	if len(v) > 10 && (v[10] == ' ' || v[10] == 't') {
		v = v[:10] + "T" + v[11:]
	}
	v = strings.Replace(v, "z", "Z", 1)
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 3339 or ISO 8601 time", s)
}

// FormatTime writes t the way pre-start records it: RFC 3339 in UTC, whole
// seconds.
func FormatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05Z")
}
