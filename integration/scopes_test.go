package integration_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/bearer"
)

// scopeHarness: mcp:admin implies mcp:tools (Config.ImpliedScopes), and
// calling the tool "delete" needs mcp:admin (Config.OperationScopes).
func scopeHarness(t *testing.T) *harness {
	return newHarness(t, func(c *mcpoauth.Config) {
		c.ImpliedScopes = func(s string) []string {
			if s == "mcp:admin" {
				return []string{testScope}
			}
			return nil
		}
		c.OperationScopes = bearer.ScopeRequirements{Tools: map[string][]string{"delete": {"mcp:admin"}}}.Scopes
	})
}

func (h *harness) tokensWithScope(clientID, scope string) tokenResponse {
	h.t.Helper()
	p := authorizeParams(clientID)
	p.Set("scope", scope)
	code := h.approve(p, "alice").Query().Get("code")
	tr := decodeTokens(h.t, h.postForm("/token", exchangeForm(clientID, code)))
	require.Equal(h.t, scope, tr.Scope)
	return tr
}

func (h *harness) callTool(token, name string) *httptest.ResponseRecorder {
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + name + `"}}`
	r := httptest.NewRequest(http.MethodPost, testResource, strings.NewReader(body))
	r.Header.Set("Authorization", "Bearer "+token)
	r.Header.Set("Mcp-Method", "tools/call")
	r.Header.Set("Mcp-Name", name)
	return h.do(r)
}

// TestScopeHierarchy: a scope implied by a granted one counts as granted
// at check time (MCP 2026-07-28: servers MUST account for hierarchies) and
// at grant time (a refresh may narrow to an implied scope, OAuth 2.1
// §4.3.1).
func TestScopeHierarchy(t *testing.T) {
	h := scopeHarness(t)
	id := h.publicClient()
	admin := h.tokensWithScope(id, "mcp:admin")
	require.Equal(t, http.StatusOK, h.callMCP(admin.AccessToken).Code, "hierarchy: mcp:admin passes the mcp:tools requirement")

	narrow := h.postForm("/token", withParam(refreshForm(id, admin.RefreshToken), "scope", testScope))
	require.Equal(t, http.StatusOK, narrow.Code, narrow.Body.String())
	tr := decodeTokens(t, narrow)
	require.Equal(t, testScope, tr.Scope, "the token carries the narrowed scope, not the implied set")
	require.Equal(t, http.StatusOK, h.callMCP(tr.AccessToken).Code)

	// Without the hierarchy the same narrowing exceeds the grant.
	plain := newHarness(t)
	pid := plain.publicClient()
	rt := plain.tokensWithScope(pid, "mcp:admin").RefreshToken
	require.Equal(t, "invalid_scope", oauthError(t, plain.postForm("/token", withParam(refreshForm(pid, rt), "scope", testScope))))
}

// TestOperationScopeStepUp: SEP-2350 end to end: a tools/call the token's
// scopes do not cover gets one complete challenge; re-authorizing with
// exactly its scope yields a token that passes.
func TestOperationScopeStepUp(t *testing.T) {
	h := scopeHarness(t)
	id := h.publicClient()
	tools := h.tokensWithScope(id, testScope)
	require.Equal(t, http.StatusOK, h.callTool(tools.AccessToken, "whoami").Code)

	w := h.callTool(tools.AccessToken, "delete")
	require.Equal(t, http.StatusForbidden, w.Code)
	ch := w.Header().Get("WWW-Authenticate")
	require.Contains(t, ch, `error="insufficient_scope"`)
	require.Contains(t, ch, `scope="mcp:tools mcp:admin"`)

	stepped := h.tokensWithScope(id, "mcp:tools mcp:admin")
	require.Equal(t, http.StatusOK, h.callTool(stepped.AccessToken, "delete").Code)
}
