// Package redirect holds the redirect URI rules: what may be registered
// (RFC 7591 §2, OAuth 2.1 §2.3.1, RFC 8252 §7), how a requested URI matches a
// registered one (exact string comparison, RFC 3986 §6.2.1, with one
// exception: the port of a loopback URI, RFC 8252 §7.3), and how the response
// parameters join the URI without losing its own query (RFC 6749 §3.1.2).
package redirect

import (
	"errors"
	"net/url"
	"strings"
)

// Errors returned by Validate and Resolve. Their messages are fixed: they
// never echo the URI.
var (
	ErrInvalid      = errors.New("redirect_uri is not an absolute URI without fragment")
	ErrInsecure     = errors.New("redirect_uri must use https, a loopback http address, or a private-use scheme")
	ErrDangerous    = errors.New("redirect_uri uses a forbidden scheme")
	ErrUnregistered = errors.New("redirect_uri is not registered for this client")
	ErrAmbiguous    = errors.New("redirect_uri is required when the client registered several")
)

// forbidden are schemes that run code or read local data in a user agent
// (peer advisories: TS SDK #877, mcp-remote CVE-2025-6514).
var forbidden = map[string]bool{"javascript": true, "data": true, "vbscript": true, "file": true, "blob": true, "about": true, "filesystem": true}

// IsLoopbackHost reports whether host (without port) names the loopback
// interface as native apps use it.
func IsLoopbackHost(host string) bool {
	return host == "127.0.0.1" || host == "::1" || host == "localhost"
}

// Validate checks a redirect URI offered for registration: absolute, no
// fragment (not even an empty one), no userinfo, not a forbidden scheme, and
// https, http on a loopback host, or a private-use scheme (OAuth 2.1 §2.3.1,
// RFC 9700 §2.6). allowInsecureHTTP lets any http URI through, for
// development setups only.
func Validate(raw string, allowInsecureHTTP bool) error {
	if raw == "" || strings.ContainsAny(raw, "# \t\r\n\x00\\") {
		return ErrInvalid
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.User != nil {
		return ErrInvalid
	}
	scheme := strings.ToLower(u.Scheme)
	switch {
	case forbidden[scheme]:
		return ErrDangerous
	case scheme == "https":
		if u.Host == "" {
			return ErrInvalid
		}
	case scheme == "http":
		if u.Host == "" {
			return ErrInvalid
		}
		if !allowInsecureHTTP && !IsLoopbackHost(u.Hostname()) {
			return ErrInsecure
		}
	default:
		// A private-use scheme (RFC 8252 §7.1): "com.example.app:/cb",
		// "vscode://...". Hosts are allowed; the app owns the scheme.
		// RFC 8252 §7.1 tells the app to use a reverse domain name as
		// the scheme, but Cursor registers "cursor://anysphere.cursor-mcp/..."
		// and VS Code "vscode://...": requiring a period in the scheme
		// would refuse both, so the scheme is not checked further. The
		// schemes a browser runs or reads from are refused above.
		if u.Opaque != "" && !strings.HasPrefix(u.Opaque, "/") {
			return ErrInvalid
		}
	}
	return nil
}

// IsNativeOnly reports whether a redirect URI that passed Validate can
// only reach an app on the user's device: a private-use scheme (RFC 8252
// §7.1) or a loopback host (RFC 8252 §7.3), whatever the scheme.
func IsNativeOnly(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		return IsLoopbackHost(u.Hostname())
	}
	return true
}

// Matches reports whether requested matches the registered URI: identical
// strings, or two loopback http URIs that differ in the port alone (RFC 8252
// §7.3). Nothing is normalised: case, trailing slashes, query and path must be
// the same (fosite CVE-2020-15233 and CVE-2020-15234 were the cost of less).
func Matches(registered, requested string) bool {
	if registered == requested {
		return true
	}
	if strings.ContainsAny(requested, "#\\") {
		return false
	}
	// Only the port may differ, so the scheme must be written alike too
	// (url.Parse would lowercase "HTTP://").
	if !strings.HasPrefix(registered, "http://") || !strings.HasPrefix(requested, "http://") {
		return false
	}
	r, err := url.Parse(registered)
	if err != nil {
		return false
	}
	q, err := url.Parse(requested)
	if err != nil {
		return false
	}
	return r.Scheme == "http" && q.Scheme == "http" &&
		r.User == nil && q.User == nil &&
		IsLoopbackHost(r.Hostname()) && r.Hostname() == q.Hostname() &&
		r.EscapedPath() == q.EscapedPath() &&
		r.RawQuery == q.RawQuery && r.ForceQuery == q.ForceQuery &&
		validPort(q.Port())
}

func validPort(p string) bool {
	if len(p) > 5 {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}

// Resolve picks the redirect URI of an authorization request: the requested
// one if it matches a registered URI, or the only registered URI when none
// was requested (OAuth 2.1 §2.3.2).
func Resolve(registered []string, requested string) (string, error) {
	if requested == "" {
		if len(registered) == 1 {
			return registered[0], nil
		}
		return "", ErrAmbiguous
	}
	for _, reg := range registered {
		if Matches(reg, requested) {
			return requested, nil
		}
	}
	return "", ErrUnregistered
}

// WithParams appends response parameters to a redirect URI, keeping the
// URI's own query component (RFC 6749 §3.1.2).
func WithParams(redirectURI string, params url.Values) string {
	return WithQuery(redirectURI, params.Encode())
}

// WithQuery is WithParams for parameters already encoded as a query.
func WithQuery(redirectURI, query string) string {
	sep := "?"
	if strings.Contains(redirectURI, "?") {
		sep = "&"
		if strings.HasSuffix(redirectURI, "?") || strings.HasSuffix(redirectURI, "&") {
			sep = ""
		}
	}
	return redirectURI + sep + query
}
