// Package resource canonicalises RFC 8707 resource indicators so that the
// audience bound into a token and the audience a resource server expects are
// compared as one string.
package resource

import (
	"errors"
	"net/url"
	"strings"
)

// ErrInvalid is returned for a resource that is not an absolute http(s) URI
// without a fragment (RFC 8707 §2).
var ErrInvalid = errors.New("resource: not an absolute http(s) URI without fragment")

// Canonical returns the canonical form of a resource indicator: scheme and
// host lowercased, the default port dropped, a trailing slash removed from the
// path (so "https://h/mcp/" and "https://h/mcp" name one resource; MCP
// authorization §"Canonical Server URI"), the query kept. A fragment,
// userinfo, a relative URI or a scheme other than http(s) is ErrInvalid.
func Canonical(raw string) (string, error) {
	if raw == "" || strings.ContainsAny(raw, " \t\r\n") {
		return "", ErrInvalid
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" || strings.Contains(raw, "#") || u.Opaque != "" {
		return "", ErrInvalid
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "https" && scheme != "http" {
		return "", ErrInvalid
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return "", ErrInvalid
	}
	if strings.Contains(host, ":") { // IPv6 literal
		host = "[" + host + "]"
	}
	if port := u.Port(); port != "" && !(scheme == "https" && port == "443") && !(scheme == "http" && port == "80") {
		host += ":" + port
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	out := scheme + "://" + host + path
	if u.RawQuery != "" {
		out += "?" + u.RawQuery
	}
	return out, nil
}

// Equal reports whether two resource indicators name the same resource. An
// invalid indicator equals nothing.
func Equal(a, b string) bool {
	if a == b {
		return a != "" && valid(a)
	}
	ca, err := Canonical(a)
	if err != nil {
		return false
	}
	cb, err := Canonical(b)
	return err == nil && ca == cb
}

func valid(s string) bool {
	_, err := Canonical(s)
	return err == nil
}
