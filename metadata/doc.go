// Package metadata holds the wire documents of an OAuth 2.1 authorization
// server for MCP: RFC 8414 authorization server metadata, RFC 9728 protected
// resource metadata and RFC 7591 client metadata, together with the
// well-known URL construction (path insertion) and an HTTP handler that
// serves a document.
//
// The package depends on the standard library only, so that resource
// servers, clients and the authorization server can all share it.
package metadata
