package bearer_test

import (
	"log"
	"net/http"

	"github.com/mcpoauth/mcpoauth/bearer"
	"github.com/mcpoauth/mcpoauth/metadata"
)

// An MCP server apart from its authorization server that verifies RFC 9068
// JWT access tokens offline (with mcpoauth as the authorization server,
// Config.AccessTokenFormat = mcpoauth.AccessTokenJWT). No request per
// token reaches the authorization server, but a revoked token is accepted
// until its exp: keep access tokens short-lived, or use
// NewIntrospectionVerifier where revocation must take effect at once.
func ExampleNewJWTVerifier() {
	const (
		issuer   = "https://auth.example.com"
		resource = "https://mcp.example.com/mcp"
	)
	verifier, err := bearer.NewJWTVerifier(bearer.JWTOptions{
		JWKSURL:  issuer + "/jwks", // the AS metadata's jwks_uri
		Issuer:   issuer,
		Resource: resource,
	})
	if err != nil {
		log.Fatal(err)
	}
	var mcpHandler http.Handler = http.NotFoundHandler() // your MCP server

	mux := http.NewServeMux()
	mux.Handle("/mcp", bearer.RequireBearerAuth(bearer.Options{
		Verifier:            verifier,
		RequiredScopes:      []string{"mcp:tools"},
		Resource:            resource,
		ResourceMetadataURL: metadata.ProtectedResourceMetadataURL(resource),
	})(mcpHandler))
	_ = http.ListenAndServe // http.ListenAndServe(":8080", mux)
}
