// Package mcphttp holds the rules the MCP streamable HTTP transport sets for
// the HTTP layer of a server, as plain net/http middleware, so a server built
// from this module gets them without writing them again:
//
//   - CheckHost refuses a Host header the server does not answer for: DNS
//     rebinding defence for a server listening on loopback (421).
//   - CheckOrigin refuses a request whose Origin header is present and not
//     allowed (403), as the transport requires of every connection; a
//     request without Origin (any non-browser client) passes.
//   - CORS does what CheckOrigin does and lets allowed browser-based MCP
//     clients call the endpoint: it answers preflights before bearer auth
//     and exposes the headers such a client must read.
//   - BoundStreams ends a long-lived GET event stream when the token that
//     opened it expires or stops verifying (revocation), or when the server
//     shuts down.
//
// The MCP endpoint is wrapped outermost first:
//
//	CheckHost                  whole server: a rebinding page names a foreign Host
//	  CORS                     MCP endpoint: Origin check, preflight, exposed headers
//	    RequireBearerAuth      the token (package bearer, or srv.RequireBearerAuth)
//	      BoundStreams         GET streams end with the token
//	        MCP SDK handler
//
// CORS must come before bearer auth: a preflight carries no credentials and
// must be answered, not challenged. BoundStreams must come after it: it
// bounds a stream by the verified token in the request context.
//
// Every refusal is a sentinel error (ErrHostNotAllowed, ErrOriginNotAllowed,
// ErrNoAuthInfo) handed to the optional ErrorHandler with a request stripped
// of its Authorization and Cookie headers; a stream's end is told to the
// handler below as the cause of its context (ErrTokenExpired,
// ErrTokenRevoked, ErrReverifyFailed, ErrServerShutdown). Nothing here logs.
package mcphttp
