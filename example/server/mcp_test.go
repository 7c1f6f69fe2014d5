package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bearerTransport is an http.RoundTripper that adds a bearer token, as an
// MCP client's OAuth layer does.
type bearerTransport struct{ token string }

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

// mcpSessionWith connects the official SDK's client to /mcp with token.
func (e *testEnv) mcpSessionWith(token string, standaloneSSE bool) *mcp.ClientSession {
	e.t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "flow-test", Version: "1.0.0"}, nil)
	cs, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{
		Endpoint:             e.issuer + "/mcp",
		HTTPClient:           &http.Client{Transport: bearerTransport{token}, Timeout: 30 * time.Second},
		DisableStandaloneSSE: !standaloneSSE,
		MaxRetries:           -1,
	}, nil)
	require.NoError(e.t, err)
	e.t.Cleanup(func() { _ = cs.Close() })
	require.NotEmpty(e.t, cs.ID(), "a stateful session")
	return cs
}

// mcpSession connects without the standalone SSE stream.
func (e *testEnv) mcpSession(token string) *mcp.ClientSession {
	e.t.Helper()
	return e.mcpSessionWith(token, false)
}

func (e *testEnv) toolNames(cs *mcp.ClientSession) []string {
	e.t.Helper()
	res, err := cs.ListTools(context.Background(), nil)
	require.NoError(e.t, err)
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
	}
	return names
}

// whoami calls the whoami tool and checks that none of secrets (the
// caller's tokens) appears anywhere in the result.
func (e *testEnv) whoami(cs *mcp.ClientSession, secrets ...string) whoamiOutput {
	e.t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "whoami"})
	require.NoError(e.t, err)
	require.False(e.t, res.IsError, "%v", res.Content)
	raw, err := json.Marshal(res)
	require.NoError(e.t, err)
	for _, s := range secrets {
		require.NotEmpty(e.t, s)
		require.NotContains(e.t, string(raw), s, "whoami never echoes a token")
	}
	var out whoamiOutput
	b, err := json.Marshal(res.StructuredContent)
	require.NoError(e.t, err)
	require.NoError(e.t, json.Unmarshal(b, &out))
	// The text content is the same JSON, for clients that ignore
	// structured content.
	require.Len(e.t, res.Content, 1)
	text, ok := res.Content[0].(*mcp.TextContent)
	require.True(e.t, ok)
	require.JSONEq(e.t, string(b), text.Text)
	return out
}

// mcpRequest sends one raw request to /mcp in an existing session.
func (e *testEnv) mcpRequest(method, token, sessionID string) (*http.Response, string) {
	e.t.Helper()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`)
	}
	req, err := http.NewRequest(method, e.issuer+"/mcp", body)
	require.NoError(e.t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	if sessionID != "" {
		req.Header.Set("Mcp-Session-Id", sessionID)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	require.NoError(e.t, err)
	defer resp.Body.Close()
	if method == http.MethodGet && resp.StatusCode == http.StatusOK {
		return resp, "" // an open event stream
	}
	b, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return resp, string(b)
}

// userToken runs the authorization code flow for a public client and
// returns its tokens.
func (e *testEnv) userToken(clientID, user string) tokenResponse {
	e.t.Helper()
	verifier, challenge := pkcePair()
	code := e.approve(clientID, challenge, user)
	return e.redeem(clientID, code, verifier)
}

// serviceSecret is the secret of the confidential client in
// serviceClientsFile.
const serviceSecret = "service-secret-0123456789-abcdefghijklmnopqrstuvwxyz"

// serviceClientsFile writes a clients file with a confidential
// client_credentials client "service".
func serviceClientsFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "clients.json")
	require.NoError(t, os.WriteFile(path, []byte(`[{
  "client_id": "service",
  "client_secret": "`+serviceSecret+`",
  "client_name": "Service",
  "grant_types": ["client_credentials"],
  "token_endpoint_auth_method": "client_secret_basic"
}]`), 0o600))
	return path
}

func TestMCPTools(t *testing.T) {
	e := newTestEnv(t, "")
	clientID := e.register("Tools Client")
	tr := e.userToken(clientID, "alice")
	cs := e.mcpSession(tr.AccessToken)

	res, err := cs.ListTools(context.Background(), nil)
	require.NoError(t, err)
	require.Len(t, res.Tools, 2)
	for _, tool := range res.Tools {
		assert.NotEmpty(t, tool.Description, tool.Name)
		assert.NotNil(t, tool.InputSchema, tool.Name)
		assert.NotNil(t, tool.OutputSchema, tool.Name)
		require.NotNil(t, tool.Annotations, tool.Name)
		assert.True(t, tool.Annotations.ReadOnlyHint, tool.Name)
	}
	assert.Equal(t, whoamiOutput{UserID: "alice", ClientID: clientID, Scopes: []string{scopeTools}}, e.whoami(cs, tr.AccessToken, tr.RefreshToken))

	for _, text := range []string{"hello", "", "héllo <b>&</b> \"quoted\"\n\x00"} {
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": text}})
		require.NoError(t, err)
		require.False(t, res.IsError)
		assert.Equal(t, map[string]any{"text": text}, res.StructuredContent)
	}
	// The SDK validates arguments against the input schema.
	res2, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": 42}})
	if err == nil {
		assert.True(t, res2.IsError)
	}
}

func TestMCPClientCredentials(t *testing.T) {
	e := newTestEnv(t, serviceClientsFile(t))
	tr := e.token(url.Values{"grant_type": {"client_credentials"}, "scope": {scopeTools}}, "service", serviceSecret)
	assert.Empty(t, tr.RefreshToken)
	who := e.whoami(e.mcpSession(tr.AccessToken), tr.AccessToken, serviceSecret)
	assert.Equal(t, whoamiOutput{UserID: "", ClientID: "service", Scopes: []string{scopeTools}}, who)
}

// TestMCPSessionBinding: a session belongs to the user and client whose
// token created it.
func TestMCPSessionBinding(t *testing.T) {
	e := newTestEnv(t, serviceClientsFile(t))
	appA, appB := e.register("App A"), e.register("App B")
	alice := e.userToken(appA, "alice")
	bob := e.userToken(appA, "bob")
	aliceViaB := e.userToken(appB, "alice")
	service := e.token(url.Values{"grant_type": {"client_credentials"}}, "service", serviceSecret)

	cs := e.mcpSession(alice.AccessToken)
	id := cs.ID()
	assert.Equal(t, "alice", e.whoami(cs).UserID)

	tests := []struct {
		name   string
		method string
		token  string
		want   int
	}{
		{"another user of the same client", http.MethodPost, bob.AccessToken, http.StatusForbidden},
		{"the same user through another client", http.MethodPost, aliceViaB.AccessToken, http.StatusForbidden},
		{"a client acting for itself", http.MethodPost, service.AccessToken, http.StatusForbidden},
		{"another user opening the event stream", http.MethodGet, bob.AccessToken, http.StatusForbidden},
		{"another user ending the session", http.MethodDelete, bob.AccessToken, http.StatusForbidden},
		{"no token", http.MethodPost, "", http.StatusUnauthorized},
		{"unknown session for the right user", http.MethodPost, alice.AccessToken, http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sid := id
			if strings.HasPrefix(tt.name, "unknown") {
				sid = "NOSUCHSESSION"
			}
			resp, body := e.mcpRequest(tt.method, tt.token, sid)
			require.Equal(t, tt.want, resp.StatusCode, body)
			if tt.token != "" {
				assert.NotContains(t, body, tt.token)
			}
			assert.NotContains(t, body, "alice", "nothing of the session leaks")
		})
	}

	// The owner's session survived every refusal, including with a
	// refreshed token.
	tr := e.token(url.Values{"grant_type": {"refresh_token"}, "client_id": {appA}, "refresh_token": {alice.RefreshToken}})
	resp, body := e.mcpRequest(http.MethodPost, tr.AccessToken, id)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Contains(t, body, `"user_id":"alice"`)
	assert.Equal(t, "alice", e.whoami(cs).UserID)

	// Bob's own session works for bob.
	assert.Equal(t, "bob", e.whoami(e.mcpSession(bob.AccessToken), bob.AccessToken).UserID)

	// The owner ends it; then it is gone.
	resp, body = e.mcpRequest(http.MethodDelete, alice.AccessToken, id)
	require.Equal(t, http.StatusNoContent, resp.StatusCode, body)
	resp, body = e.mcpRequest(http.MethodPost, alice.AccessToken, id)
	require.Equal(t, http.StatusNotFound, resp.StatusCode, body)
}

func TestMCPChallenges(t *testing.T) {
	e := newTestEnv(t, "")
	prm := `resource_metadata="` + e.issuer + `/.well-known/oauth-protected-resource/mcp"`
	tests := []struct {
		name, authorization string
		status              int
		errorCode           string
	}{
		{"no credentials", "", 401, ""},
		{"basic credentials", "Basic dXNlcjpwYXNz", 401, ""},
		{"unknown token", "Bearer not-a-token", 401, "invalid_token"},
		{"malformed header", "Bearer a b", 400, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, e.issuer+"/mcp", strings.NewReader(`{}`))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			if tt.authorization != "" {
				req.Header.Set("Authorization", tt.authorization)
			}
			resp, body := fetch(t, http.DefaultClient, req)
			require.Equal(t, tt.status, resp.StatusCode, body)
			c := resp.Header.Get("WWW-Authenticate")
			assert.Contains(t, c, prm)
			assert.Contains(t, c, `scope="mcp:tools"`)
			if tt.errorCode == "" {
				assert.NotContains(t, c, "error=", "RFC 6750 §3")
			} else {
				assert.Contains(t, c, `error="`+tt.errorCode+`"`)
			}
		})
	}
}

// TestMCPStreamEndsOnShutdown: the standalone GET stream does not keep the
// server from shutting down.
func TestMCPStreamEndsOnShutdown(t *testing.T) {
	e := newTestEnv(t, serviceClientsFile(t))
	tr := e.token(url.Values{"grant_type": {"client_credentials"}}, "service", serviceSecret)
	cs := e.mcpSession(tr.AccessToken)

	req, err := http.NewRequest(http.MethodGet, e.issuer+"/mcp", nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", cs.ID())
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	req.Header.Set("Authorization", "Bearer "+tr.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))

	ended := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, resp.Body)
		ended <- err
	}()
	select {
	case <-ended:
		t.Fatal("the stream ended before shutdown")
	default:
	}
	e.app.endStreams()
	select {
	case err := <-ended:
		require.NoError(t, err, "a clean end of stream")
	case <-time.After(10 * time.Second):
		t.Fatal("the stream outlived shutdown")
	}
}

// TestMCPCORS: a browser-based MCP client on a loopback origin (the MCP
// Inspector) can reach /mcp: the preflight is answered before bearer auth,
// and the challenge and session headers are exposed to the page; a page of
// a foreign origin is refused with 403 (MCP transport). The rules
// themselves are tested in mcphttp.
func TestMCPCORS(t *testing.T) {
	const inspector = "http://localhost:6274"
	e := newTestEnv(t, "")
	req, err := http.NewRequest(http.MethodOptions, e.issuer+"/mcp", nil)
	require.NoError(t, err)
	req.Header.Set("Origin", inspector)
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization, content-type, mcp-protocol-version")
	resp, body := fetch(t, http.DefaultClient, req)
	require.Equal(t, http.StatusNoContent, resp.StatusCode, body)
	assert.Equal(t, inspector, resp.Header.Get("Access-Control-Allow-Origin"))
	assert.Equal(t, "Origin", resp.Header.Get("Vary"))
	assert.Contains(t, resp.Header.Get("Access-Control-Allow-Headers"), "Authorization")
	assert.Contains(t, resp.Header.Get("Access-Control-Allow-Methods"), "POST")
	assert.Empty(t, resp.Header.Get("WWW-Authenticate"), "a preflight is not challenged")

	for origin, want := range map[string]int{
		inspector:                  http.StatusUnauthorized,
		e.issuer:                   http.StatusUnauthorized,
		"https://attacker.example": http.StatusForbidden,
		"null":                     http.StatusForbidden,
	} {
		req, err = http.NewRequest(http.MethodPost, e.issuer+"/mcp", strings.NewReader(`{}`))
		require.NoError(t, err)
		req.Header.Set("Origin", origin)
		req.Header.Set("Content-Type", "application/json")
		resp, body = fetch(t, http.DefaultClient, req)
		require.Equal(t, want, resp.StatusCode, "%s: %s", origin, body)
		if want == http.StatusForbidden {
			assert.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"), origin)
			assert.Empty(t, resp.Header.Get("WWW-Authenticate"), "%s: refused before bearer auth", origin)
			continue
		}
		assert.Equal(t, origin, resp.Header.Get("Access-Control-Allow-Origin"))
		assert.Contains(t, resp.Header.Get("Access-Control-Expose-Headers"), "WWW-Authenticate")
		assert.Contains(t, resp.Header.Get("Access-Control-Expose-Headers"), "Mcp-Session-Id")
	}
	assert.Contains(t, e.logs.String(), `msg="refused request from a foreign origin" origin=https://attacker.example`)
}
