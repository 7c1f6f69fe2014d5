package bearer_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/mcpoauth/mcpoauth/bearer"
)

// A protected MCP endpoint: only requests with a valid token for this
// resource and the mcp:tools scope reach the handler, which learns who is
// calling from the request context.
func ExampleRequireBearerAuth() {
	const mcpURL = "https://mcp.example.com/mcp"

	// In a real server the verifier comes from the authorization server
	// (or checks a JWT); here one token is known.
	verifier := bearer.VerifierFunc(func(_ context.Context, token string) (*bearer.AuthInfo, error) {
		if token != "demo-token" {
			return nil, bearer.ErrInvalidToken
		}
		return &bearer.AuthInfo{
			ClientID:  "demo-client",
			UserID:    "alice",
			Scopes:    []string{"mcp:tools"},
			Resource:  mcpURL,
			ExpiresAt: time.Now().Add(time.Hour),
		}, nil
	})

	protect := bearer.RequireBearerAuth(bearer.Options{
		Verifier:            verifier,
		RequiredScopes:      []string{"mcp:tools"},
		ResourceMetadataURL: "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
		Resource:            mcpURL,
	})
	mcpHandler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, _ := bearer.FromContext(r.Context())
		fmt.Fprintf(w, "hello %s via %s", info.UserID, info.ClientID)
	})
	mux := http.NewServeMux()
	mux.Handle("/mcp", protect(mcpHandler))

	// Without a token the client is told where to find the authorization
	// server and which scope to ask for.
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, mcpURL, nil))
	fmt.Println(rec.Code, rec.Header().Get("WWW-Authenticate"))

	// With the token the handler runs.
	req := httptest.NewRequest(http.MethodPost, mcpURL, nil)
	req.Header.Set("Authorization", "Bearer demo-token")
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Body.String())

	// Output:
	// 401 Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", scope="mcp:tools"
	// 200 hello alice via demo-client
}
