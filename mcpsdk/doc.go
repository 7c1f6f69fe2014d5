// Package mcpsdk is the home of the adapters that plug mcpoauth's
// resource-server side (package bearer, and OAuthServer, which is a
// bearer.Verifier) into the Go MCP SDKs. Each SDK has its own subpackage,
// so a program compiles only the SDK it uses, and nothing that imports the
// root package mcpoauth compiles either:
//
//   - [github.com/mcpoauth/mcpoauth/mcpsdk/gosdk] for the official SDK,
//     github.com/modelcontextprotocol/go-sdk: a TokenVerifier for its
//     auth.RequireBearerToken middleware, the RFC 6750 error codes that
//     middleware leaves out, a bridge that hands the AuthInfo verified by
//     bearer.RequireBearerAuth to the SDK (session binding,
//     req.Extra.TokenInfo), and a receiving middleware that makes
//     bearer.FromContext work in tool handlers.
//   - [github.com/mcpoauth/mcpoauth/mcpsdk/mcpgo] for
//     github.com/mark3labs/mcp-go, whose streamable HTTP server hands the
//     HTTP request's context to tool handlers, so bearer.RequireBearerAuth
//     works as is; the package adds the binding of MCP sessions to the
//     token's user and client that mcp-go lacks.
package mcpsdk
