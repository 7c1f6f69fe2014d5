package httpx

import (
	"errors"
	"net/url"
	"strings"
	"unsafe"
)

// maxQueryParams is url.ParseQuery's default limit on the parameters of a
// query; a query with more is handed to url.ParseQuery, which refuses it
// (or applies the limit the GODEBUG setting urlmaxqueryparams chose).
const maxQueryParams = 10000

// errMalformedQuery is parseQuery's error; ParseForm replaces it with an
// OAuth error, so its text is never shown.
var errMalformedQuery = errors.New("malformed query")

// parseQuery is url.ParseQuery for ParseForm, which keeps the values only
// when there is no error: it accepts exactly the same queries and returns
// the same values, but with a handful of allocations instead of a few per
// parameter. The first value of every name shares one backing array (each
// slice capped at its own element, so an append copies it), and every
// unescaped name and value shares one buffer.
func parseQuery(query string) (url.Values, error) {
	n := strings.Count(query, "&") + 1
	if n > maxQueryParams {
		return url.ParseQuery(query)
	}
	m := make(url.Values)
	first := make([]string, 0, n)
	// Unescaping never lengthens a string, so the names and values fit in
	// len(query) bytes: buf is never reallocated, and each string made
	// from it covers bytes that are written once, before it is made, and
	// never again.
	var buf []byte
	for query != "" {
		var pair string
		pair, query, _ = strings.Cut(query, "&")
		if strings.Contains(pair, ";") {
			// url.ParseQuery: "invalid semicolon separator in query".
			return nil, errMalformedQuery
		}
		if pair == "" {
			continue
		}
		key, value, _ := strings.Cut(pair, "=")
		var ok bool
		if key, ok = unescapeQuery(key, &buf, len(query)+len(pair)); !ok {
			return nil, errMalformedQuery
		}
		if value, ok = unescapeQuery(value, &buf, len(query)+len(pair)); !ok {
			return nil, errMalformedQuery
		}
		if vs, seen := m[key]; seen {
			m[key] = append(vs, value)
			continue
		}
		first = append(first, value)
		i := len(first) - 1
		m[key] = first[i : i+1 : i+1]
	}
	return m, nil
}

// unescapeQuery is url.QueryUnescape: "+" is a space, "%XX" a byte, and a
// "%" not followed by two hex digits an error. A string with nothing to
// unescape is returned as it is; otherwise the result is appended to *buf,
// which is allocated on first use with room for need more bytes (the rest
// of the query, which bounds every later result).
func unescapeQuery(s string, buf *[]byte, need int) (string, bool) {
	// Most values have nothing to unescape: two vectorized searches say so
	// faster than the loop below.
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s, true
	}
	escapes := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return "", false
			}
			escapes = true
			i += 2
		case '+':
			escapes = true
		}
	}
	if !escapes {
		return s, true
	}
	if *buf == nil {
		*buf = make([]byte, 0, need)
	}
	start := len(*buf)
	b := *buf
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '%':
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		case '+':
			b = append(b, ' ')
		default:
			b = append(b, c)
		}
	}
	*buf = b
	if len(b) == start {
		return "", true
	}
	return unsafe.String(&b[start], len(b)-start), true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
