package mcpgo_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpoauth/mcpoauth/bearer"
	"github.com/mcpoauth/mcpoauth/mcpsdk/mcpgo"
)

// An mcp-go server behind mcpoauth's bearer middleware: the tool reads the
// caller from its context, and BindSessions keeps each session to the user
// and client that opened it.
func ExampleBindSessions() {
	const mcpURL = "https://mcp.example.com/mcp"
	// In a real server the verifier is the *mcpoauth.OAuthServer.
	verifier := bearer.VerifierFunc(func(_ context.Context, token string) (*bearer.AuthInfo, error) {
		if token != "demo-token" {
			return nil, bearer.ErrInvalidToken
		}
		return &bearer.AuthInfo{UserID: "alice", ClientID: "demo-client", Scopes: []string{"mcp:tools"},
			Resource: mcpURL, ExpiresAt: time.Now().Add(time.Hour)}, nil
	})

	mcpServer := server.NewMCPServer("demo", "1.0.0")
	mcpServer.AddTool(mcp.NewTool("whoami", mcp.WithDescription("Who is calling")),
		func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			info, ok := bearer.FromContext(ctx) // mcp-go passes the HTTP request's context
			if !ok {
				return mcp.NewToolResultError("no caller"), nil
			}
			return mcp.NewToolResultText(info.UserID + " via " + info.ClientID), nil
		})
	protect := bearer.RequireBearerAuth(bearer.Options{
		Verifier:            verifier,
		RequiredScopes:      []string{"mcp:tools"},
		Resource:            mcpURL,
		ResourceMetadataURL: "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
	})
	mux := http.NewServeMux()
	mux.Handle("/mcp", protect(mcpgo.BindSessions(mcpgo.BindOptions{})(server.NewStreamableHTTPServer(mcpServer))))
	ts := httptest.NewServer(mux)
	defer ts.Close()

	ctx := context.Background()
	c, err := client.NewStreamableHttpClient(ts.URL+"/mcp",
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer demo-token"}))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{
		ProtocolVersion: "2025-11-25",
		ClientInfo:      mcp.Implementation{Name: "demo-client", Version: "1.0.0"},
	}}); err != nil {
		log.Fatal(err)
	}
	res, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "whoami"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Content[0].(mcp.TextContent).Text)
	// Output:
	// alice via demo-client
}
