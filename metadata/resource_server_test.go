package metadata_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth/metadata"
)

// TestProtectedResourceHandler: RFC 9728 §3.1 path insertion, the document
// byte for byte with the remote authorization server, bearer methods
// defaulted to ["header"], and refusal of documents MCP clients could not
// use.
func TestProtectedResourceHandler(t *testing.T) {
	for _, tc := range []struct {
		name     string
		doc      metadata.ProtectedResource
		path     string
		wantBody string
		wantErr  bool
	}{
		{
			name: "MCP endpoint with a path",
			doc:  metadata.ProtectedResource{Resource: "https://mcp.example.com/mcp", AuthorizationServers: []string{"https://auth.example.com"}, ScopesSupported: []string{"mcp:tools"}},
			path: "/.well-known/oauth-protected-resource/mcp",
			wantBody: `{"resource":"https://mcp.example.com/mcp","authorization_servers":["https://auth.example.com"],` +
				`"scopes_supported":["mcp:tools"],"bearer_methods_supported":["header"]}`,
		},
		{
			name:     "resource at the root, issuer with a path",
			doc:      metadata.ProtectedResource{Resource: "https://mcp.example.com", AuthorizationServers: []string{"https://auth.example.com/tenant1"}, BearerMethodsSupported: []string{"header"}, ResourceName: "Tools"},
			path:     "/.well-known/oauth-protected-resource",
			wantBody: `{"resource":"https://mcp.example.com","authorization_servers":["https://auth.example.com/tenant1"],"bearer_methods_supported":["header"],"resource_name":"Tools"}`,
		},
		{
			name:     "loopback http",
			doc:      metadata.ProtectedResource{Resource: "http://127.0.0.1:8081/mcp", AuthorizationServers: []string{"http://127.0.0.1:8080"}},
			path:     "/.well-known/oauth-protected-resource/mcp",
			wantBody: `{"resource":"http://127.0.0.1:8081/mcp","authorization_servers":["http://127.0.0.1:8080"],"bearer_methods_supported":["header"]}`,
		},
		{name: "no resource", doc: metadata.ProtectedResource{AuthorizationServers: []string{"https://auth.example.com"}}, wantErr: true},
		{name: "relative resource", doc: metadata.ProtectedResource{Resource: "/mcp", AuthorizationServers: []string{"https://auth.example.com"}}, wantErr: true},
		{name: "resource with fragment", doc: metadata.ProtectedResource{Resource: "https://mcp.example.com/mcp#x", AuthorizationServers: []string{"https://auth.example.com"}}, wantErr: true},
		{name: "no authorization server", doc: metadata.ProtectedResource{Resource: "https://mcp.example.com/mcp"}, wantErr: true},
		{name: "authorization server not a URL", doc: metadata.ProtectedResource{Resource: "https://mcp.example.com/mcp", AuthorizationServers: []string{"auth.example.com"}}, wantErr: true},
		{name: "authorization server with query", doc: metadata.ProtectedResource{Resource: "https://mcp.example.com/mcp", AuthorizationServers: []string{"https://auth.example.com?x=1"}}, wantErr: true},
		{name: "authorization server with fragment", doc: metadata.ProtectedResource{Resource: "https://mcp.example.com/mcp", AuthorizationServers: []string{"https://auth.example.com#f"}}, wantErr: true},
		{name: "one good, one bad authorization server", doc: metadata.ProtectedResource{Resource: "https://mcp.example.com/mcp", AuthorizationServers: []string{"https://auth.example.com", "ftp://x"}}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, h, err := metadata.ProtectedResourceHandler(tc.doc)
			if tc.wantErr {
				require.Error(t, err)
				require.Nil(t, h)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.path, path)
			mux := http.NewServeMux()
			mux.Handle(path, h)
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
			require.Equal(t, http.StatusOK, w.Code)
			require.Equal(t, "application/json", w.Header().Get("Content-Type"))
			require.Equal(t, "*", w.Header().Get("Access-Control-Allow-Origin"))
			require.Equal(t, tc.wantBody, w.Body.String())
			var doc metadata.ProtectedResource
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &doc))
			require.Equal(t, tc.doc.Resource, doc.Resource, "byte for byte")
			require.True(t, strings.HasSuffix(metadata.ProtectedResourceMetadataURL(tc.doc.Resource), path), "the challenge's resource_metadata URL names this path")
		})
	}

	t.Run("the caller's slice is not shared", func(t *testing.T) {
		servers := []string{"https://auth.example.com"}
		path, h, err := metadata.ProtectedResourceHandler(metadata.ProtectedResource{Resource: "https://mcp.example.com/mcp", AuthorizationServers: servers})
		require.NoError(t, err)
		servers[0] = "https://evil.example"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		require.Contains(t, w.Body.String(), "https://auth.example.com")
	})
}
