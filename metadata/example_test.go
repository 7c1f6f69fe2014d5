package metadata_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/mcpoauth/mcpoauth/metadata"
)

// ExampleHandler serves the protected resource metadata of an MCP endpoint at
// its path-inserted well-known location.
func ExampleHandler() {
	const resource = "https://mcp.example.com/mcp"
	prm := metadata.ProtectedResource{
		Resource:               resource,
		AuthorizationServers:   []string{"https://auth.example.com"},
		ScopesSupported:        []string{"mcp:tools"},
		BearerMethodsSupported: []string{"header"},
	}
	h, err := metadata.Handler(prm)
	if err != nil {
		panic(err)
	}
	path, err := metadata.WellKnownPath(resource, metadata.ProtectedResourceSuffix)
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle(path, h)

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Body)
	fmt.Println(path)
	fmt.Println(metadata.ProtectedResourceMetadataURL(resource))
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	fmt.Println(string(body))
	// Output:
	// /.well-known/oauth-protected-resource/mcp
	// https://mcp.example.com/.well-known/oauth-protected-resource/mcp
	// 200 application/json
	// {"resource":"https://mcp.example.com/mcp","authorization_servers":["https://auth.example.com"],"scopes_supported":["mcp:tools"],"bearer_methods_supported":["header"]}
}
