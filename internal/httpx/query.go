package httpx

import (
	"net/url"
	"strings"
)

// maxFastParams bounds the queries parseQuery parses itself; longer ones,
// which OAuth requests never are, go to url.ParseQuery with its limits.
const maxFastParams = 32

// parseQuery is url.ParseQuery, with the same result and error for every
// input, in fewer allocations: the map is sized for the parameters up front
// and every first value of a key shares one backing array, where
// url.ParseQuery grows the map and allocates a slice per key. Every request
// to the token, authorization and consent endpoints is parsed, so this is
// on each of their paths.
//
// It handles the ordinary case (at most maxFastParams parameters, no ';',
// every escape valid) and hands anything else to url.ParseQuery, which then
// produces the exact error.
func parseQuery(query string) (url.Values, error) {
	n := strings.Count(query, "&") + 1
	if n > maxFastParams || strings.IndexByte(query, ';') >= 0 {
		return url.ParseQuery(query)
	}
	m := make(url.Values, n)
	first := make([]string, n)
	used := 0
	for rest := query; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			return url.ParseQuery(query)
		}
		value, err := url.QueryUnescape(v)
		if err != nil {
			return url.ParseQuery(query)
		}
		if vs, ok := m[key]; ok {
			// A repeated key: append copies, since the slice's capacity
			// is its length.
			m[key] = append(vs, value)
			continue
		}
		first[used] = value
		m[key] = first[used : used+1 : used+1]
		used++
	}
	return m, nil
}

// QueryValue is url.ParseQuery(query).Get(name) (what r.URL.Query().Get
// does, malformed pairs skipped alike) without building the map: a page
// that needs one parameter of its URL, as the consent page needs its
// request_id, parses only that.
func QueryValue(query, name string) string {
	for rest := query; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		if pair == "" || strings.IndexByte(pair, ';') >= 0 {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		if key, err := url.QueryUnescape(k); err != nil || key != name {
			continue
		}
		if value, err := url.QueryUnescape(v); err == nil {
			return value
		}
	}
	return ""
}
