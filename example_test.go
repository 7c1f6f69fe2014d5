package mcpoauth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/bearer"
)

// ExampleNew embeds the authorization server in an MCP server: the router at
// the root, the consent decision behind the application's sign-in, and the
// MCP endpoint behind bearer auth.
func ExampleNew() {
	srv, err := mcpoauth.New(mcpoauth.Config{
		Issuer:            "https://mcp.example.com",
		AuthorizationURL:  "https://mcp.example.com/consent",
		ResourceServerURL: "https://mcp.example.com/mcp",
		ScopesSupported:   []string{"mcp:tools"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	mcpHandler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, _ := bearer.FromContext(r.Context())
		fmt.Fprintf(w, "hello %s\n", info.UserID)
	})
	currentUser := func(r *http.Request) (string, error) { return "alice", nil } // your sign-in

	mux := http.NewServeMux()
	mux.Handle("/", srv.Router())
	mux.Handle("POST /consent", srv.AuthenticateHandler(currentUser))
	mux.Handle("/mcp", srv.RequireBearerAuth("mcp:tools")(mcpHandler))
	// GET /consent renders your page from srv.PendingAuthorization(r).
	_ = mux
	fmt.Println(srv.Issuer())
	// Output: https://mcp.example.com
}

// ExampleOAuthServer_Router shows the metadata document an MCP client
// discovers first.
func ExampleOAuthServer_Router() {
	srv, err := mcpoauth.New(mcpoauth.Config{
		Issuer:            "https://mcp.example.com",
		AuthorizationURL:  "/consent",
		ResourceServerURL: "https://mcp.example.com/mcp",
		ScopesSupported:   []string{"mcp:tools"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	w := httptest.NewRecorder()
	srv.Router().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "https://mcp.example.com/.well-known/oauth-authorization-server", nil))
	var meta map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &meta)
	fmt.Println(meta["token_endpoint"])
	fmt.Println(meta["code_challenge_methods_supported"])
	// Output:
	// https://mcp.example.com/token
	// [S256]
}

// ExampleOAuthServer_RequireBearerAuth shows the challenge a client without
// a token receives: where to find the protected resource metadata, and the
// scope it needs.
func ExampleOAuthServer_RequireBearerAuth() {
	srv, err := mcpoauth.New(mcpoauth.Config{
		Issuer:            "https://mcp.example.com",
		AuthorizationURL:  "/consent",
		ResourceServerURL: "https://mcp.example.com/mcp",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	protected := srv.RequireBearerAuth("mcp:tools")(http.NotFoundHandler())
	w := httptest.NewRecorder()
	protected.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "https://mcp.example.com/mcp", nil))
	fmt.Println(w.Code)
	fmt.Println(w.Header().Get("WWW-Authenticate"))
	// Output:
	// 401
	// Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", scope="mcp:tools"
}

// auditModel is a custom Model: it embeds MemoryModel and observes grant
// revocations, e.g. to alert on a replayed refresh token.
type auditModel struct {
	*mcpoauth.MemoryModel
	revoked func(grantID string)
}

func (m auditModel) RevokeGrant(ctx context.Context, grantID string) error {
	m.revoked(grantID)
	return m.MemoryModel.RevokeGrant(ctx, grantID)
}

// ExampleModel plugs a custom Model into the server. A production Model
// implements every method of the interface (see package postgres) and
// passes modeltest.Run.
func ExampleModel() {
	model := auditModel{MemoryModel: mcpoauth.NewMemoryModel(mcpoauth.MemoryModelOptions{}), revoked: func(string) {}}
	defer model.Close()
	srv, err := mcpoauth.New(mcpoauth.Config{
		Model:            model,
		Issuer:           "https://mcp.example.com",
		AuthorizationURL: "/consent",
	})
	if err != nil {
		log.Fatal(err)
	}
	_, isRegistrar := srv.Model().(mcpoauth.ClientRegistrar)
	fmt.Println(isRegistrar)
	// Output: true
}
