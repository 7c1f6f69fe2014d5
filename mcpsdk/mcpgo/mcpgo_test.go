package mcpgo_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth/bearer"
	"github.com/mcpoauth/mcpoauth/internal/testclock"
	"github.com/mcpoauth/mcpoauth/mcpsdk/internal/sdktest"
	"github.com/mcpoauth/mcpoauth/mcpsdk/mcpgo"
	"github.com/mcpoauth/mcpoauth/record"
)

var tokens = sdktest.Verifier{
	"alice-1":     sdktest.User("alice", "app", "mcp:tools"),
	"alice-2":     sdktest.User("alice", "app", "mcp:tools", "more"),
	"alice-other": sdktest.User("alice", "other-app", "mcp:tools"),
	"bob":         sdktest.User("bob", "app", "mcp:tools"),
	"service":     sdktest.User("", "app", "mcp:tools"),
	"carol":       withIdentity(sdktest.User("carol", "app", "mcp:tools")),
}

// withIdentity gives info an upstream identity, as RequireBearerAuth does
// for a user who signed in through package upstream.
func withIdentity(info *bearer.AuthInfo) *bearer.AuthInfo {
	info.Identity = &record.Identity{Issuer: "https://idp.example.com", Subject: "c-1", Email: "carol@example.com"}
	return info
}

// newEnv serves an mcp-go server with a whoami tool behind the bearer
// middleware and BindSessions.
func newEnv(t *testing.T, opts mcpgo.BindOptions) string {
	t.Helper()
	return newEnvWith(t, mcpgo.BindSessions(opts))
}

// newEnvWith serves the whoami server behind the bearer middleware and
// bind.
func newEnvWith(t *testing.T, bind func(http.Handler) http.Handler) string {
	t.Helper()
	s := server.NewMCPServer("test", "1.0.0")
	s.AddTool(mcp.NewTool("whoami"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		info, ok := bearer.FromContext(ctx)
		if !ok {
			return mcp.NewToolResultError("no AuthInfo in the tool's context"), nil
		}
		out := map[string]any{"user_id": info.UserID, "client_id": info.ClientID, "scopes": info.Scopes}
		if info.Identity != nil {
			out["email"] = info.Identity.Email
		}
		return mcp.NewToolResultStructuredOnly(out), nil
	})
	protect := bearer.RequireBearerAuth(bearer.Options{Verifier: tokens, RequiredScopes: []string{"mcp:tools"}, Resource: sdktest.Resource, ResourceMetadataURL: sdktest.ResourceMetadataURL})
	ts := httptest.NewServer(protect(bind(server.NewStreamableHTTPServer(s))))
	t.Cleanup(ts.Close)
	return ts.URL + "/mcp"
}

func connect(t *testing.T, url string, tok *sdktest.Bearer) *client.Client {
	t.Helper()
	c, err := client.NewStreamableHttpClient(url, transport.WithHTTPBasicClient(&http.Client{Transport: tok, Timeout: 10 * time.Second}))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	_, err = c.Initialize(context.Background(), mcp.InitializeRequest{Params: mcp.InitializeParams{
		ProtocolVersion: "2025-11-25",
		ClientInfo:      mcp.Implementation{Name: "test", Version: "1"},
	}})
	require.NoError(t, err)
	require.NotEmpty(t, c.GetSessionId(), "a session")
	return c
}

func whoami(t *testing.T, c *client.Client) map[string]any {
	t.Helper()
	res, err := c.CallTool(context.Background(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "whoami"}})
	require.NoError(t, err)
	require.False(t, res.IsError, "%v", res.Content)
	out, ok := res.StructuredContent.(map[string]any)
	require.True(t, ok, "%T", res.StructuredContent)
	return out
}

func TestToolsSeeTheRequestContext(t *testing.T) {
	url := newEnv(t, mcpgo.BindOptions{})
	tok := sdktest.NewBearer("alice-1")
	c := connect(t, url, tok)
	require.Equal(t, map[string]any{"user_id": "alice", "client_id": "app", "scopes": []any{"mcp:tools"}}, whoami(t, c))

	// mcp-go hands each tool call the context of its own HTTP request: a
	// refreshed token is what the tool sees.
	tok.Set("alice-2")
	require.Equal(t, []any{"mcp:tools", "more"}, whoami(t, c)["scopes"])

	// The bearer middleware in front answers for bad tokens.
	resp, body := sdktest.Request(t, http.MethodPost, url, "unknown", c.GetSessionId())
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, body)
	require.Contains(t, resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`)
	resp, body = sdktest.Request(t, http.MethodPost, url, "", c.GetSessionId())
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, body)
	require.NotContains(t, resp.Header.Get("WWW-Authenticate"), "error=")
}

func TestBindSessions(t *testing.T) {
	url := newEnv(t, mcpgo.BindOptions{})
	alice := connect(t, url, sdktest.NewBearer("alice-1"))
	service := connect(t, url, sdktest.NewBearer("service"))
	id := alice.GetSessionId()

	tests := []struct {
		name   string
		method string
		token  string
		ids    []string
		want   int
	}{
		{"owner, another token", http.MethodPost, "alice-2", []string{id}, http.StatusOK},
		{"another user", http.MethodPost, "bob", []string{id}, http.StatusForbidden},
		{"same user, another client", http.MethodPost, "alice-other", []string{id}, http.StatusForbidden},
		{"the client acting for itself", http.MethodPost, "service", []string{id}, http.StatusForbidden},
		{"user on the client's own session", http.MethodPost, "alice-1", []string{service.GetSessionId()}, http.StatusForbidden},
		{"another user's GET stream", http.MethodGet, "bob", []string{id}, http.StatusForbidden},
		{"another user's DELETE", http.MethodDelete, "bob", []string{id}, http.StatusForbidden},
		{"unknown session", http.MethodPost, "alice-1", []string{"mcp-session-00000000-0000-4000-8000-000000000000"}, http.StatusNotFound},
		{"GET under an id never handed out", http.MethodGet, "alice-1", []string{"mcp-session-00000000-0000-4000-8000-000000000000"}, http.StatusNotFound},
		{"two session headers", http.MethodPost, "alice-1", []string{id, id}, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := sdktest.Request(t, tt.method, url, tt.token, tt.ids...)
			require.Equal(t, tt.want, resp.StatusCode, body)
			if tt.want != http.StatusOK {
				require.NotContains(t, body, id, "nothing is echoed")
			}
		})
	}

	// The refusals changed nothing; the owner still works, then ends the
	// session, after which its id is unknown.
	require.Equal(t, "alice", whoami(t, alice)["user_id"])
	resp, body := sdktest.Request(t, http.MethodDelete, url, "alice-1", id)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	resp, body = sdktest.Request(t, http.MethodPost, url, "alice-1", id)
	require.Equal(t, http.StatusNotFound, resp.StatusCode, body)
	require.Equal(t, "app", whoami(t, service)["client_id"])
}

// TestMCPGoHasNoBindingOfItsOwn pins the mcp-go behaviour BindSessions
// exists for: without it, any authenticated caller may use any session id.
// If this test fails, mcp-go gained a binding of its own.
func TestMCPGoHasNoBindingOfItsOwn(t *testing.T) {
	url := newEnvWith(t, func(h http.Handler) http.Handler { return h })
	alice := connect(t, url, sdktest.NewBearer("alice-1"))
	resp, body := sdktest.Request(t, http.MethodPost, url, "bob", alice.GetSessionId())
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
}

// fakeMCP hands out a session id on every POST without one, as an MCP
// handler answers initialize, and answers 200 otherwise.
func fakeMCP(next *int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Mcp-Session-Id") == "" && r.Method == http.MethodPost {
			*next++
			w.Header().Set("Mcp-Session-Id", "s"+string(rune('0'+*next)))
		}
		_, _ = w.Write([]byte("ok"))
	})
}

// serveAs sends a request as info through h and returns the status and the
// session id handed out.
func serveAs(h http.Handler, info *bearer.AuthInfo, method, sessionID string) (int, string) {
	req := httptest.NewRequest(method, "/mcp", nil)
	if sessionID != "" {
		req.Header.Set("Mcp-Session-Id", sessionID)
	}
	if info != nil {
		req = req.WithContext(bearer.ContextWithAuthInfo(req.Context(), info))
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Header().Get("Mcp-Session-Id")
}

func TestBindSessionsIdleTimeout(t *testing.T) {
	clock := testclock.New(time.Unix(1_700_000_000, 0))
	var n int
	h := mcpgo.BindSessions(mcpgo.BindOptions{IdleTimeout: time.Hour, Now: clock.Now})(fakeMCP(&n))
	alice := sdktest.User("alice", "app")

	_, s1 := serveAs(h, alice, http.MethodPost, "")
	clock.Advance(59 * time.Minute)
	code, _ := serveAs(h, alice, http.MethodPost, s1)
	require.Equal(t, http.StatusOK, code, "each request restarts the idle timer")
	clock.Advance(59 * time.Minute)
	code, _ = serveAs(h, alice, http.MethodGet, s1)
	require.Equal(t, http.StatusOK, code)
	clock.Advance(time.Hour)
	code, _ = serveAs(h, alice, http.MethodPost, s1)
	require.Equal(t, http.StatusNotFound, code, "an idle binding is forgotten")
	code, _ = serveAs(h, sdktest.User("bob", "app"), http.MethodPost, s1)
	require.Equal(t, http.StatusNotFound, code, "and is not handed to anyone")
}

func TestBindSessionsPerOwnerLimit(t *testing.T) {
	clock := testclock.New(time.Unix(1_700_000_000, 0))
	var n int
	h := mcpgo.BindSessions(mcpgo.BindOptions{MaxSessionsPerOwner: 2, Now: clock.Now})(fakeMCP(&n))
	alice, bob := sdktest.User("alice", "app"), sdktest.User("bob", "app")

	_, b1 := serveAs(h, bob, http.MethodPost, "")
	clock.Advance(time.Second)
	_, a1 := serveAs(h, alice, http.MethodPost, "")
	clock.Advance(time.Second)
	_, a2 := serveAs(h, alice, http.MethodPost, "")
	clock.Advance(time.Second)
	code, _ := serveAs(h, alice, http.MethodPost, a1) // a1 is now the most recent
	require.Equal(t, http.StatusOK, code)
	clock.Advance(time.Second)
	_, a3 := serveAs(h, alice, http.MethodPost, "") // evicts a2, alice's least recently used

	for id, want := range map[string]int{a1: 200, a2: 404, a3: 200} {
		code, _ := serveAs(h, alice, http.MethodPost, id)
		require.Equal(t, want, code, id)
	}
	code, _ = serveAs(h, bob, http.MethodPost, b1)
	require.Equal(t, http.StatusOK, code, "one owner cannot evict another's sessions")
}

func TestBindSessionsMisuse(t *testing.T) {
	var n int
	h := mcpgo.BindSessions(mcpgo.BindOptions{})(fakeMCP(&n))
	code, id := serveAs(h, nil, http.MethodPost, "")
	require.Equal(t, http.StatusInternalServerError, code, "without bearer.RequireBearerAuth in front")
	require.Empty(t, id)
	require.Zero(t, n, "the MCP handler never ran")
	require.PanicsWithValue(t, "mcpgo: BindSessions: nil handler", func() { mcpgo.BindSessions(mcpgo.BindOptions{})(nil) })
}

func TestBindSessionsIgnoresFailedResponses(t *testing.T) {
	h := mcpgo.BindSessions(mcpgo.BindOptions{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Mcp-Session-Id", "s-fail")
		http.Error(w, "nope", http.StatusBadRequest)
	}))
	code, _ := serveAs(h, sdktest.User("alice", "app"), http.MethodPost, "")
	require.Equal(t, http.StatusBadRequest, code)
	code, _ = serveAs(h, sdktest.User("alice", "app"), http.MethodPost, "s-fail")
	require.Equal(t, http.StatusNotFound, code, "only a 2xx hands out a session")
}

func TestOwner(t *testing.T) {
	require.Equal(t, `"alice" "app"`, mcpgo.Owner(sdktest.User("alice", "app")))
	require.NotEqual(t, mcpgo.Owner(sdktest.User("a b", "c")), mcpgo.Owner(sdktest.User("a", "b c")))
	require.NotEqual(t, mcpgo.Owner(sdktest.User(`a" "b`, "c")), mcpgo.Owner(sdktest.User("a", `b" "c`)))
}

// TestToolsSeeTheUpstreamIdentity: a tool reads the user's upstream
// identity from the AuthInfo in its context.
func TestToolsSeeTheUpstreamIdentity(t *testing.T) {
	c := connect(t, newEnv(t, mcpgo.BindOptions{}), sdktest.NewBearer("carol"))
	require.Equal(t, "carol@example.com", whoami(t, c)["email"])
}
