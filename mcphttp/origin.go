package mcphttp

import (
	"errors"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// ErrOriginNotAllowed is the error CheckOrigin and CORS hand to
// OriginOptions.ErrorHandler for a request whose Origin header is present
// and not allowed: the MCP transport's DNS rebinding defence.
var ErrOriginNotAllowed = errors.New("mcphttp: origin not allowed")

// OriginOptions is the allow-list of browser origins, shared by CheckOrigin
// and CORS so the two can never disagree. The zero value allows no origin:
// every browser request is refused, every non-browser client passes.
type OriginOptions struct {
	// Origins are the allowed origins, each "scheme://host[:port]" as a
	// browser serializes it (RFC 6454 §6.2): no path, no trailing slash,
	// an internationalized host in its ASCII (punycode) form. They are
	// compared canonically: scheme and host case-insensitively, a default
	// port (80 for http, 443 for https) the same as none. Any scheme is
	// accepted, for clients with their own (a browser extension, an
	// editor's web view).
	Origins []string

	// AllowLoopback also allows every http and https origin whose host is
	// localhost or a loopback IP literal (127.0.0.0/8, [::1]), on any
	// port: local browser-based tools such as the MCP Inspector at
	// http://localhost:6274. A page on such an origin is served by the
	// user's own machine; a DNS rebinding page keeps its own origin
	// (http://attacker.example:port), which stays refused.
	AllowLoopback bool

	// AllowAnyOrigin allows every origin, and makes CORS answer
	// "Access-Control-Allow-Origin: *". That is safe for an endpoint whose
	// only credential is a bearer token in the Authorization header, as MCP
	// requires: a browser never attaches it by itself (unlike a cookie), so
	// a page can only send a token it already holds, and would gain nothing
	// over sending it from its own server. Do not set it for an endpoint
	// that also accepts cookies. The opaque origin "null" stays refused.
	AllowAnyOrigin bool

	// ErrorHandler, if set, is called with every request refused for its
	// Origin and an error wrapping ErrOriginNotAllowed, for logging. The
	// request has no Authorization or Cookie header. It must not write a
	// response.
	ErrorHandler func(r *http.Request, err error)
}

// originSet is OriginOptions compiled: origins in canonical form.
type originSet struct {
	exact        map[string]struct{}
	loopback     bool
	any          bool
	errorHandler func(r *http.Request, err error)
}

// newOriginSet compiles o, panicking (with caller's name) on an entry that
// is not an origin: a misspelt allow-list would otherwise surface only as
// browsers being refused.
func newOriginSet(caller string, o OriginOptions) *originSet {
	s := &originSet{
		exact:        make(map[string]struct{}, len(o.Origins)),
		loopback:     o.AllowLoopback,
		any:          o.AllowAnyOrigin,
		errorHandler: o.ErrorHandler,
	}
	for _, raw := range o.Origins {
		canon, _, ok := canonicalOrigin(raw)
		if !ok {
			panic("mcphttp: " + caller + ": invalid origin " + strconv.Quote(raw) + ": want scheme://host[:port], and null cannot be allowed")
		}
		s.exact[canon] = struct{}{}
	}
	return s
}

// screen refuses r with 403 when it carries an Origin header that is not
// allowed, and reports whether r may go on; origin is the header's value,
// empty when there is none. More than one Origin header is never allowed:
// a browser sends one.
func (s *originSet) screen(w http.ResponseWriter, r *http.Request) (origin string, ok bool) {
	values := r.Header["Origin"]
	switch {
	case len(values) == 0:
		return "", true
	case len(values) == 1 && s.allows(values[0]):
		return values[0], true
	}
	// MCP transport: a present, invalid Origin MUST get 403 Forbidden.
	report(s.errorHandler, r, ErrOriginNotAllowed)
	http.Error(w, "forbidden: origin not allowed", http.StatusForbidden)
	return "", false
}

// allows reports whether origin, an Origin header value, is allowed.
func (s *originSet) allows(origin string) bool {
	canon, host, ok := canonicalOrigin(origin)
	if !ok {
		return false // "null", or not an origin at all
	}
	if s.any {
		return true
	}
	if _, ok := s.exact[canon]; ok {
		return true
	}
	return s.loopback && (strings.HasPrefix(canon, "http://") || strings.HasPrefix(canon, "https://")) && IsLoopback(host)
}

// CheckOrigin returns middleware that refuses with 403 Forbidden a request
// whose Origin header is present and not allowed by o, as the MCP streamable
// HTTP transport requires of every incoming connection: a web page the user
// visits can reach a server on their machine or network, and DNS rebinding
// even makes the browser treat it as same-origin, but the page cannot hide
// its own origin. A request without Origin passes: non-browser clients do
// not send one. Browsers send one on every cross-origin fetch and on every
// POST, which is how MCP messages travel; a rebinding page's same-origin GET
// may come without one, and is what CheckHost catches. The opaque origin "null"
// (sandboxed frames, file: pages) and a request with more than one Origin
// header are refused.
//
// CORS includes this check; use CheckOrigin alone on an endpoint that serves
// no browser-based clients. It panics if an entry of o.Origins is not an
// origin; the returned function panics if given a nil handler.
func CheckOrigin(o OriginOptions) func(http.Handler) http.Handler {
	return originMiddleware("CheckOrigin", o, func(_ *originSet, origin string, next http.Handler, w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r)
	})
}

// originMiddleware is the decorator named name (CheckOrigin, CORS): it
// panics on an entry of o.Origins that is not an origin and on a nil next
// handler, and hands serve each request whose origin passed the screen,
// with that origin ("" for none).
func originMiddleware(name string, o OriginOptions, serve func(s *originSet, origin string, next http.Handler, w http.ResponseWriter, r *http.Request)) func(http.Handler) http.Handler {
	s := newOriginSet(name, o)
	return func(next http.Handler) http.Handler {
		if next == nil {
			panic("mcphttp: " + name + ": nil next handler")
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if origin, ok := s.screen(w, r); ok {
				serve(s, origin, next, w, r)
			}
		})
	}
}

// canonicalOrigin parses an origin serialized as "scheme://host[:port]"
// (RFC 6454 §6.2) and returns it with scheme and host lowercased and a
// default port dropped, and its host (without the brackets of an IPv6
// literal). ok is false for "null" and anything else that is not such an
// origin: a path, query, fragment, userinfo, percent-escape, empty or
// out-of-range port, a port with a leading zero, an IPv6 zone, or a byte
// outside the host name alphabet. Refusing what no browser sends keeps
// "equal after canonicalization" from admitting a look-alike.
func canonicalOrigin(origin string) (canon, host string, ok bool) {
	scheme, rest, found := strings.Cut(origin, "://")
	if !found || !isScheme(scheme) || rest == "" {
		return "", "", false
	}
	scheme = strings.ToLower(scheme)
	var hostPart, port string
	if rest[0] == '[' {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return "", "", false
		}
		host = rest[1:end]
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return "", "", false
		}
		host = strings.ToLower(host)
		hostPart = "[" + host + "]"
		if after := rest[end+1:]; after != "" {
			if after[0] != ':' {
				return "", "", false
			}
			port = after[1:]
			if port == "" {
				return "", "", false
			}
		}
	} else {
		var hasPort bool
		host, port, hasPort = strings.Cut(rest, ":")
		if host == "" || hasPort && port == "" || !isHostName(host) {
			return "", "", false
		}
		host = strings.ToLower(host)
		hostPart = host
	}
	if port != "" {
		if !isPort(port) {
			return "", "", false
		}
		if scheme == "http" && port == "80" || scheme == "https" && port == "443" {
			port = ""
		}
	}
	canon = scheme + "://" + hostPart
	if port != "" {
		canon += ":" + port
	}
	return canon, host, true
}

// isScheme reports whether s is an RFC 3986 §3.1 scheme:
// ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
func isScheme(s string) bool {
	return s != "" && isAlpha(s[0]) && allBytes(s[1:], func(c byte) bool {
		return isAlpha(c) || isDigit(c) || c == '+' || c == '-' || c == '.'
	})
}

// isHostName reports whether s uses only the bytes of an ASCII host name or
// IPv4 literal: letters, digits, '-', '.', '_'.
func isHostName(s string) bool {
	return allBytes(s, func(c byte) bool {
		return isAlpha(c) || isDigit(c) || c == '-' || c == '.' || c == '_'
	})
}

// isPort reports whether s is a TCP port 1-65535 written without a leading
// zero.
func isPort(s string) bool {
	if s == "" || len(s) > 5 || s[0] == '0' {
		return false
	}
	if !allBytes(s, isDigit) {
		return false
	}
	n, err := strconv.Atoi(s)
	return err == nil && n <= 65535
}

// allBytes reports whether every byte of s is ok.
func allBytes(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// IsLoopback reports whether host, a host name or IP literal without port
// or brackets, names the local machine: "localhost" (any case; RFC 6761
// §6.3) or a loopback IP address (127.0.0.0/8, ::1) without zone. A server
// listening on such an address is the one DNS rebinding puts within reach
// of every web page, so it is where CheckHost matters; the example server
// decides with it whether to mount CheckHost.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback() && ip.Zone() == ""
}

// report hands err to h, if set, with a copy of r that carries no
// credential, so a logging ErrorHandler cannot leak one.
func report(h func(*http.Request, error), r *http.Request, err error) {
	if h == nil {
		return
	}
	r2 := r.Clone(r.Context())
	r2.Header.Del("Authorization")
	r2.Header.Del("Cookie")
	h(r2, err)
}
