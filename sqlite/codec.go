package sqlite

import (
	"database/sql"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
)

// The column codecs: how a record's fields are stored, in one place.

// minNanos and maxNanos are the times whose nanoseconds since the epoch
// fit an int64; a time outside is stored clamped to them.
var (
	minNanos = time.Unix(0, math.MinInt64)
	maxNanos = time.Unix(0, math.MaxInt64)
)

// toNanos returns the column value of t: NULL for the zero time, else its
// nanoseconds since the Unix epoch.
func toNanos(t time.Time) any {
	switch {
	case t.IsZero():
		return nil
	case t.Before(minNanos):
		return int64(math.MinInt64)
	case t.After(maxNanos):
		return int64(math.MaxInt64)
	}
	return t.UnixNano()
}

// fromNanos is the inverse of toNanos: NULL is the zero time; others are
// UTC.
func fromNanos(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

// nanosOrZero returns the nanoseconds of t for a comparison in SQL, 0 for
// the zero time.
func nanosOrZero(t time.Time) int64 {
	if n, ok := toNanos(t).(int64); ok {
		return n
	}
	return 0
}

// encodeStrings stores a list of strings (scopes) as a JSON array.
func encodeStrings(s []string) string {
	if len(s) == 0 {
		return "[]"
	}
	// Scopes are ASCII without quotes or backslashes almost always: write
	// them directly, and leave the rare other case to encoding/json.
	var b strings.Builder
	b.WriteByte('[')
	for i, v := range s {
		if !plainJSONString(v) {
			out, _ := json.Marshal(s) // a []string always marshals
			return string(out)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		b.WriteString(v)
		b.WriteByte('"')
	}
	b.WriteByte(']')
	return b.String()
}

// decodeStrings reads what encodeStrings wrote; an empty list is nil.
func decodeStrings(s string) ([]string, error) {
	if s == "[]" {
		return nil, nil
	}
	// The fast path reads the arrays encodeStrings wrote itself: strings
	// that need no escape.
	if len(s) >= 4 && s[0] == '[' && s[len(s)-1] == ']' && !strings.ContainsRune(s, '\\') {
		parts := strings.Split(s[1:len(s)-1], ",")
		out := make([]string, 0, len(parts))
		ok := true
		for _, p := range parts {
			if len(p) < 2 || p[0] != '"' || p[len(p)-1] != '"' || strings.ContainsRune(p[1:len(p)-1], '"') {
				ok = false
				break
			}
			out = append(out, p[1:len(p)-1])
		}
		if ok {
			return out, nil
		}
	}
	var out []string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// plainJSONString reports whether s is printable ASCII without '"', '\\'
// or ',': it is its own JSON string body, and splits unambiguously.
func plainJSONString(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == ',' {
			return false
		}
	}
	return true
}

// boolInt stores a bool as SQLite does: 0 or 1.
func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// placeholders returns n comma-separated parameters: "?, ?, ?".
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// jsonStrings returns ids as a JSON array, for json_each(?) in a
// statement that acts on several IDs at once.
func jsonStrings(ids []string) string {
	out, _ := json.Marshal(ids) // a []string always marshals
	return string(out)
}

// itoa is strconv.Itoa, named for SQL built from constants.
func itoa(n int) string { return strconv.Itoa(n) }

// packedReader reads a row packed into one text value (see tokenPacked):
// integers ended by ',', texts prefixed by their length and ':'. The first
// malformed field sets err, and every later read returns a zero value.
type packedReader struct {
	s   string
	err error
}

// int reads an integer field; an empty one is NULL.
func (p *packedReader) int() sql.NullInt64 {
	if p.err != nil {
		return sql.NullInt64{}
	}
	field, rest, ok := strings.Cut(p.s, ",")
	if !ok {
		p.err = errs.UnexpectedResult
		return sql.NullInt64{}
	}
	p.s = rest
	if field == "" {
		return sql.NullInt64{}
	}
	n, err := strconv.ParseInt(field, 10, 64)
	if err != nil {
		p.err = errs.UnexpectedResult
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: n, Valid: true}
}

// time reads a time field, as fromNanos.
func (p *packedReader) time() time.Time { return fromNanos(p.int()) }

// text reads a length-prefixed text field.
func (p *packedReader) text() string {
	if p.err != nil {
		return ""
	}
	field, rest, ok := strings.Cut(p.s, ":")
	n, err := strconv.Atoi(field)
	if !ok || err != nil || n < 0 || n > len(rest) {
		p.err = errs.UnexpectedResult
		return ""
	}
	p.s = rest[n:]
	return rest[:n]
}
