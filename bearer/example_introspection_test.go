package bearer_test

import (
	"log"
	"net/http"

	"github.com/mcpoauth/mcpoauth/bearer"
	"github.com/mcpoauth/mcpoauth/metadata"
)

// An MCP server that runs apart from its authorization server: it publishes
// protected resource metadata naming the remote authorization server, and
// checks each token by RFC 7662 introspection there, authenticated as its
// own confidential client (with mcpoauth as the authorization server, list
// that client in Config.IntrospectionClients). A revoked token is accepted
// for at most CacheTTL (default 30 seconds) after its revocation.
func ExampleNewIntrospectionVerifier() {
	const (
		issuer   = "https://auth.example.com"
		resource = "https://mcp.example.com/mcp"
	)
	verifier, err := bearer.NewIntrospectionVerifier(bearer.IntrospectionOptions{
		Endpoint:     issuer + "/introspect", // the AS metadata's introspection_endpoint
		ClientID:     "mcp-resource-server",
		ClientSecret: "read it from your secret store",
		Issuer:       issuer,
	})
	if err != nil {
		log.Fatal(err)
	}
	prmPath, prm, err := metadata.ProtectedResourceHandler(metadata.ProtectedResource{
		Resource:             resource,
		AuthorizationServers: []string{issuer},
		ScopesSupported:      []string{"mcp:tools"},
	})
	if err != nil {
		log.Fatal(err)
	}
	var mcpHandler http.Handler = http.NotFoundHandler() // your MCP server

	mux := http.NewServeMux()
	mux.Handle(prmPath, prm) // /.well-known/oauth-protected-resource/mcp
	mux.Handle("/mcp", bearer.RequireBearerAuth(bearer.Options{
		Verifier:            verifier,
		RequiredScopes:      []string{"mcp:tools"},
		Resource:            resource,
		ResourceMetadataURL: metadata.ProtectedResourceMetadataURL(resource),
	})(mcpHandler))
	_ = http.ListenAndServe // http.ListenAndServe(":8080", mux)
}
