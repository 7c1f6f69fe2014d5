package mcphttp

import "net/http"

// CORS header values of the MCP endpoint.
const (
	// corsAllowMethods are the methods of the streamable HTTP transport:
	// POST messages, GET the event stream, DELETE the session.
	corsAllowMethods = "GET, POST, DELETE"
	// corsAllowHeaders are the request headers an MCP client sends: its
	// token, the JSON body, the session and protocol version, the event id
	// it resumes from, and the method and name headers of the 2026-07-28
	// revision.
	corsAllowHeaders = "Authorization, Content-Type, Mcp-Session-Id, Mcp-Protocol-Version, Last-Event-ID, Mcp-Method, Mcp-Name"
	// corsExposeHeaders are the response headers a page must be able to
	// read: the challenge that starts authorization discovery (RFC 9728
	// §5.1), the session id, and the negotiated protocol version.
	corsExposeHeaders = "WWW-Authenticate, Mcp-Session-Id, Mcp-Protocol-Version"
	// corsMaxAge lets a browser reuse a preflight for a day (browsers cap
	// it lower): the answer depends on nothing but the origin.
	corsMaxAge = "86400"
)

// CORS returns middleware for the MCP endpoint that lets the browser-based
// MCP clients o allows (the MCP Inspector, web applications) call it. It
// refuses a present, disallowed Origin with 403 exactly as CheckOrigin does,
// so the endpoint needs no CheckOrigin of its own. For an allowed origin it
//
//   - answers a CORS preflight (OPTIONS with Access-Control-Request-Method)
//     itself with 204 and the allowed methods and request headers, without
//     calling next: a preflight carries no credentials, so it must come
//     before bearer auth, which would answer it with a 401 challenge the
//     browser treats as a failed preflight;
//   - sets Access-Control-Allow-Origin on every other response, and exposes
//     WWW-Authenticate, Mcp-Session-Id and Mcp-Protocol-Version to the page.
//
// Access-Control-Allow-Origin echoes the request's origin, with "Vary:
// Origin" on every response so that a cache does not hand one origin's
// answer to another; it is "*" only with o.AllowAnyOrigin (see there why
// that is safe for bearer tokens). Access-Control-Allow-Credentials is never
// sent: MCP authorization uses no cookies.
//
// It panics if an entry of o.Origins is not an origin; the returned
// function panics if given a nil handler.
func CORS(o OriginOptions) func(http.Handler) http.Handler {
	return originMiddleware("CORS", o, serveCORS)
}

// serveCORS adds the CORS headers to a request whose origin passed the
// screen, and answers a preflight itself.
func serveCORS(s *originSet, origin string, next http.Handler, w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	if !s.any {
		h.Add("Vary", "Origin")
	}
	if origin == "" {
		next.ServeHTTP(w, r)
		return
	}
	if s.any {
		h.Set("Access-Control-Allow-Origin", "*")
	} else {
		h.Set("Access-Control-Allow-Origin", origin)
	}
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		h.Set("Access-Control-Allow-Methods", corsAllowMethods)
		h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
		h.Set("Access-Control-Max-Age", corsMaxAge)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
	next.ServeHTTP(w, r)
}
