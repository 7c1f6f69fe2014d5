package gosdk_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpoauth/mcpoauth/bearer"
	"github.com/mcpoauth/mcpoauth/mcpsdk/gosdk"
)

// demoVerifier knows one token. In a real server the verifier is the
// *mcpoauth.OAuthServer (or anything that checks the token).
func demoVerifier(resource string) bearer.Verifier {
	return bearer.VerifierFunc(func(_ context.Context, token string) (*bearer.AuthInfo, error) {
		if token != "demo-token" {
			return nil, bearer.ErrInvalidToken
		}
		return &bearer.AuthInfo{
			UserID:    "alice",
			ClientID:  "demo-client",
			Scopes:    []string{"mcp:tools"},
			Resource:  resource,
			ExpiresAt: time.Now().Add(time.Hour),
		}, nil
	})
}

// whoamiServer is an MCP server with one tool that tells who calls.
func whoamiServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "demo", Version: "v1"}, nil)
	// Tools see the AuthInfo of the request they answer.
	s.AddReceivingMiddleware(gosdk.AuthInfoMiddleware)
	mcp.AddTool(s, &mcp.Tool{Name: "whoami", Description: "Who is calling"},
		func(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			info, ok := bearer.FromContext(ctx)
			if !ok {
				return nil, nil, fmt.Errorf("no caller")
			}
			text := info.UserID + " via " + info.ClientID
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}}, nil, nil
		})
	return s
}

// bearerTransport adds a bearer token to every request.
type bearerTransport struct{ token string }

func (t bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+t.token)
	return http.DefaultTransport.RoundTrip(r)
}

// callWhoami connects to url with token and calls the whoami tool.
func callWhoami(url, token string) string {
	ctx := context.Background()
	client := mcp.NewClient(&mcp.Implementation{Name: "demo-client", Version: "v1"}, nil)
	session, err := client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:             url,
		HTTPClient:           &http.Client{Transport: bearerTransport{token}},
		DisableStandaloneSSE: true,
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer session.Close()
	res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "whoami"})
	if err != nil {
		log.Fatal(err)
	}
	return res.Content[0].(*mcp.TextContent).Text
}

// showChallenge sends a request to url with an Authorization header (none
// when empty) and prints the status and the challenge.
func showChallenge(url, authorization string) {
	req, err := http.NewRequest(http.MethodPost, url, nil)
	if err != nil {
		log.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
}

// The SDK's own bearer middleware with an mcpoauth verifier: TokenVerifier
// adapts the verifier and checks the token's audience, WithRFC6750Errors
// adds the error codes the SDK leaves out of its challenges, and
// AuthInfoMiddleware lets the tool call bearer.FromContext.
func ExampleTokenVerifier() {
	const (
		mcpURL = "https://mcp.example.com/mcp"
		prmURL = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
	)
	protect := auth.RequireBearerToken(gosdk.TokenVerifier(demoVerifier(mcpURL), mcpURL, gosdk.Options{}),
		&auth.RequireBearerTokenOptions{ResourceMetadataURL: prmURL, Scopes: []string{"mcp:tools"}})
	// One server per session: no state is shared between clients.
	handler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return whoamiServer() }, nil)
	mux := http.NewServeMux()
	mux.Handle("/mcp", gosdk.WithRFC6750Errors(protect(handler)))
	ts := httptest.NewServer(mux)
	defer ts.Close()

	showChallenge(ts.URL+"/mcp", "")
	showChallenge(ts.URL+"/mcp", "Bearer stolen-token")
	fmt.Println(callWhoami(ts.URL+"/mcp", "demo-token"))
	// Output:
	// 401 Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", scope="mcp:tools"
	// 401 Bearer error="invalid_token", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", scope="mcp:tools"
	// alice via demo-client
}

// mcpoauth's own bearer middleware in front of the SDK's handler:
// ForwardAuthInfo hands the verified AuthInfo to the SDK (session binding,
// req.Extra.TokenInfo) without verifying the token again.
func ExampleForwardAuthInfo() {
	const mcpURL = "https://mcp.example.com/mcp"
	protect := bearer.RequireBearerAuth(bearer.Options{
		Verifier:            demoVerifier(mcpURL),
		RequiredScopes:      []string{"mcp:tools"},
		Resource:            mcpURL,
		ResourceMetadataURL: "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
	})
	handler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return whoamiServer() }, nil)
	mux := http.NewServeMux()
	// Sessions are bound to the user and the client of the token that
	// created them.
	mux.Handle("/mcp", protect(gosdk.ForwardAuthInfo(gosdk.Options{SessionKey: gosdk.UserAndClient})(handler)))
	ts := httptest.NewServer(mux)
	defer ts.Close()

	showChallenge(ts.URL+"/mcp", "Bearer stolen-token")
	fmt.Println(callWhoami(ts.URL+"/mcp", "demo-token"))
	// Output:
	// 401 Bearer error="invalid_token", error_description="The access token is invalid or expired", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", scope="mcp:tools"
	// alice via demo-client
}
