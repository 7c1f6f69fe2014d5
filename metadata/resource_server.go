package metadata

import (
	"errors"
	"net/http"
	"slices"
)

// ProtectedResourceHandler returns what a resource server that runs apart
// from its authorization server publishes (the MCP TypeScript SDK's
// mcpAuthMetadataRouter): the handler of its RFC 9728 protected resource
// metadata, and the path to mount it at, the well-known path inserted
// before the path of doc.Resource (RFC 9728 §3.1), so
// "https://mcp.example.com/mcp" is served at
// "/.well-known/oauth-protected-resource/mcp". The document's
// authorization_servers points clients at the remote authorization server,
// whose own metadata stays there.
//
// doc.Resource must be the URL clients use, byte for byte (RFC 9728 §3.3);
// doc.AuthorizationServers must name at least one issuer (MCP requires it),
// each an absolute http(s) URL without query or fragment. An empty
// BearerMethodsSupported is published as ["header"], the only method MCP
// allows. The handler is Handler's: GET and HEAD, ETag, CORS.
func ProtectedResourceHandler(doc ProtectedResource) (path string, h http.Handler, err error) {
	path, err = WellKnownPath(doc.Resource, ProtectedResourceSuffix)
	if err != nil {
		return "", nil, errors.New("metadata: ProtectedResource.Resource must be an absolute http(s) URL without userinfo or fragment")
	}
	if len(doc.AuthorizationServers) == 0 {
		return "", nil, errors.New("metadata: ProtectedResource.AuthorizationServers must name the authorization server")
	}
	for _, as := range doc.AuthorizationServers {
		u, err := parseIdentifier(as, AuthorizationServerSuffix)
		if err != nil || u.RawQuery != "" || u.ForceQuery {
			return "", nil, errors.New("metadata: every authorization server must be an absolute http(s) issuer URL without query or fragment")
		}
	}
	doc.AuthorizationServers = slices.Clone(doc.AuthorizationServers)
	if len(doc.BearerMethodsSupported) == 0 {
		doc.BearerMethodsSupported = []string{"header"}
	}
	h, err = Handler(doc)
	if err != nil {
		return "", nil, err
	}
	return path, h, nil
}
