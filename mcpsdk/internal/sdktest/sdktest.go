// Package sdktest is what the tests of the MCP SDK adapters (gosdk, mcpgo)
// share: a verifier of fixed tokens, a client transport whose token changes
// within a session, raw requests to a session, and the operation scope
// rules both must keep.
package sdktest

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpoauth/mcpoauth/bearer"
)

const (
	// Resource is the MCP endpoint the tokens are for.
	Resource = "https://mcp.example.com/mcp"
	// ResourceMetadataURL is Resource's protected resource metadata.
	ResourceMetadataURL = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
)

// Verifier maps tokens to AuthInfos; any other token is invalid.
type Verifier map[string]*bearer.AuthInfo

func (v Verifier) VerifyAccessToken(_ context.Context, token string) (*bearer.AuthInfo, error) {
	if info, ok := v[token]; ok {
		return info, nil
	}
	return nil, bearer.ErrInvalidToken
}

// User is a token's AuthInfo for Resource, valid for an hour, of the grant
// "grant-<userID>-<clientID>".
func User(userID, clientID string, scopes ...string) *bearer.AuthInfo {
	return &bearer.AuthInfo{
		UserID: userID, ClientID: clientID, Scopes: scopes, Resource: Resource,
		ExpiresAt: time.Now().Add(time.Hour), GrantID: "grant-" + userID + "-" + clientID,
	}
}

// Bearer is an http.RoundTripper that sends the current token: Set changes
// it between the requests of one session, as a client that refreshed does.
type Bearer struct {
	mu    sync.Mutex
	token string
}

// NewBearer returns a Bearer sending token.
func NewBearer(token string) *Bearer { return &Bearer{token: token} }

// Set makes the next requests send token.
func (b *Bearer) Set(token string) {
	b.mu.Lock()
	b.token = token
	b.mu.Unlock()
}

func (b *Bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	b.mu.Lock()
	token := b.token
	b.mu.Unlock()
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+token)
	return http.DefaultTransport.RoundTrip(r)
}

// Request sends one raw streamable HTTP request to the MCP endpoint url:
// for POST a tools/list message, with token unless it is empty, naming each
// of sessionIDs. It returns the response and its body, except for an event
// stream opened by GET, whose end it does not wait for.
func Request(t testing.TB, method, url, token string, sessionIDs ...string) (*http.Response, string) {
	t.Helper()
	body := ""
	if method == http.MethodPost {
		body = `{"jsonrpc":"2.0","id":7,"method":"tools/list","params":{}}`
	}
	h := http.Header{}
	for _, id := range sessionIDs {
		h.Add("Mcp-Session-Id", id)
	}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return send(t, method, url, body, h)
}

// send sends one raw streamable HTTP request to url, with body unless it is
// empty, the headers every request carries, and h. It returns the response
// and its body, except for an event stream opened by GET, whose end it does
// not wait for.
func send(t testing.TB, method, url, body string, h http.Header) (*http.Response, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if method == http.MethodGet && resp.StatusCode == http.StatusOK {
		return resp, ""
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// Requirements are the operation scopes of the adapters' tests: calling the
// tool "delete" needs files:write, which files:admin implies (Implied).
var Requirements = bearer.ScopeRequirements{Tools: map[string][]string{"delete": {"files:write"}}}

// Implied is the scope hierarchy of the adapters' tests.
func Implied(scope string) []string {
	if scope == "files:admin" {
		return []string{"files:write"}
	}
	return nil
}

// OperationScopesAuth is RequireBearerAuth as the adapters' operation
// scope tests put it in front of an SDK's handler: mcp:tools required,
// Requirements and Implied, and the tokens "tools" (mcp:tools alone),
// "write" (with files:write) and "admin" (with files:admin).
func OperationScopesAuth() func(http.Handler) http.Handler {
	return bearer.RequireBearerAuth(bearer.Options{
		Verifier: Verifier{
			"tools": User("alice", "app", "mcp:tools"),
			"write": User("alice", "app", "mcp:tools", "files:write"),
			"admin": User("alice", "app", "mcp:tools", "files:admin"),
		},
		RequiredScopes:      []string{"mcp:tools"},
		Resource:            Resource,
		ResourceMetadataURL: ResourceMetadataURL,
		OperationScopes:     Requirements.Scopes,
		ImpliedScopes:       Implied,
	})
}

// RequireOperationScopes runs, through an SDK's own client behind
// OperationScopesAuth, the per-operation scope rules on tools/call by name,
// in subtests named client+"/"+rule: call connects as token, calls tool
// and checks that the answer names the tool, returning the call's error.
// The calls the rules refuse must fail.
func RequireOperationScopes(t *testing.T, client string, call func(t *testing.T, token, tool string) error) {
	t.Helper()
	for _, tc := range []struct {
		name, token, tool string
		ok                bool
	}{
		{"tools/call by name: whoami needs only the required scope", "tools", "whoami", true},
		{"tools/call by name: delete with files:write", "write", "delete", true},
		{"hierarchy: files:admin implies files:write", "admin", "delete", true},
		{"tools/call by name: delete without files:write is refused", "tools", "delete", false},
	} {
		t.Run(client+"/"+tc.name, func(t *testing.T) {
			err := call(t, tc.token, tc.tool)
			switch {
			case !tc.ok && err == nil:
				t.Fatalf("calling %s with token %q succeeded, want an error", tc.tool, tc.token)
			case tc.ok && err != nil:
				t.Fatalf("calling %s with token %q: %v", tc.tool, tc.token, err)
			}
		})
	}
}

// CallTool posts one raw tools/call of tool with token in session
// sessionID, with the MCP 2026-07-28 headers Mcp-Method and Mcp-Name (the
// latter set to nameHeader; "" omits it). It returns the response and its
// body.
func CallTool(t testing.TB, url, token, sessionID, tool, nameHeader string) (*http.Response, string) {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"` + tool + `","arguments":{}}}`
	h := http.Header{}
	h.Set("Mcp-Method", "tools/call")
	if nameHeader != "" {
		h.Set("Mcp-Name", nameHeader)
	}
	if sessionID != "" {
		h.Set("Mcp-Session-Id", sessionID)
	}
	h.Set("Authorization", "Bearer "+token)
	return send(t, http.MethodPost, url, body, h)
}

// RequireRawOperationScopes runs, with raw requests in session sessionID as
// token "tools" (which holds mcp:tools only), the per-operation scope rules
// both adapters must keep behind RequireBearerAuth with the "delete" tool
// needing files:write: one complete 403 challenge (SEP-2350), an Mcp-Name
// header that lies about the tool refused (400), and matching headers let
// through.
func RequireRawOperationScopes(t *testing.T, url, sessionID string) {
	t.Helper()
	for _, tc := range []struct {
		name, tool, nameHeader string
		status                 int
		challenge              string
	}{
		{name: "SEP-2350 complete challenge: needed and held scopes in one 403", tool: "delete", nameHeader: "delete",
			status: http.StatusForbidden, challenge: `scope="mcp:tools files:write"`},
		{name: "header vs body: Mcp-Name naming an allowed tool does not let delete through", tool: "delete", nameHeader: "whoami",
			status: http.StatusBadRequest},
		{name: "header vs body: matching headers reach the SDK", tool: "whoami", nameHeader: "whoami", status: http.StatusOK},
	} {
		t.Run("raw/"+tc.name, func(t *testing.T) {
			resp, body := CallTool(t, url, "tools", sessionID, tc.tool, tc.nameHeader)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.challenge != "" {
				ch := resp.Header.Get("WWW-Authenticate")
				if !strings.Contains(ch, tc.challenge) || !strings.Contains(ch, `error="insufficient_scope"`) {
					t.Fatalf("challenge %q, want %s and error=\"insufficient_scope\"", ch, tc.challenge)
				}
			}
		})
	}
}
