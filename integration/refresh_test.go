package integration_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
)

func refreshForm(clientID, rt string) url.Values {
	return url.Values{"grant_type": {"refresh_token"}, "client_id": {clientID}, "refresh_token": {rt}}
}

func decodeTokens(t *testing.T, w interface{ Result() *http.Response }) tokenResponse {
	t.Helper()
	var tr tokenResponse
	require.NoError(t, json.NewDecoder(w.Result().Body).Decode(&tr))
	return tr
}

// TestRefreshRotates: OAuth 2.1 §4.3.1 (MCP: public clients MUST rotate).
func TestRefreshRotates(t *testing.T) {
	h := newHarness(t)
	id := h.publicClient()
	first := h.tokens(id)
	w := h.postForm("/token", refreshForm(id, first.RefreshToken))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	next := decodeTokens(t, w)
	require.NotEqual(t, first.RefreshToken, next.RefreshToken)
	require.NotEqual(t, first.AccessToken, next.AccessToken)
	require.Equal(t, testScope, next.Scope)
	require.Equal(t, http.StatusOK, h.callMCP(next.AccessToken).Code)
	require.Equal(t, http.StatusOK, h.callMCP(first.AccessToken).Code, "rotation does not revoke the live access token")
}

// TestRefreshReplayRevokesGrant: a rotated refresh token presented again
// revokes the grant, current tokens included (RFC 9700 §4.14.2; the
// TypeScript original only refused the replay).
func TestRefreshReplayRevokesGrant(t *testing.T) {
	h := newHarness(t)
	id := h.publicClient()
	first := h.tokens(id)
	next := decodeTokens(t, h.postForm("/token", refreshForm(id, first.RefreshToken)))
	// RFC 9700 §4.14.2, once the reuse interval is over.
	h.clock.Advance(mcpoauth.DefaultRefreshTokenReuseInterval + time.Second)
	replay := h.postForm("/token", refreshForm(id, first.RefreshToken))
	require.Equal(t, "invalid_grant", oauthError(t, replay))
	require.Equal(t, http.StatusUnauthorized, h.callMCP(next.AccessToken).Code)
	require.Equal(t, "invalid_grant", oauthError(t, h.postForm("/token", refreshForm(id, next.RefreshToken))))
}

// TestRefreshMistakesBurnNothing: scope, resource and client errors leave
// the refresh token usable (in the TypeScript original a missing resource
// destroyed the session).
func TestRefreshMistakesBurnNothing(t *testing.T) {
	h := newHarness(t)
	id := h.publicClient()
	other := h.publicClient()
	rt := h.tokens(id).RefreshToken
	for name, tc := range map[string]struct {
		form url.Values
		code string
	}{
		"wider scope":     {withParam(refreshForm(id, rt), "scope", "mcp:tools mcp:admin"), "invalid_scope"},
		"malformed scope": {withParam(refreshForm(id, rt), "scope", "a  b"), "invalid_scope"},
		"other resource":  {withParam(refreshForm(id, rt), "resource", "https://x.example.com/mcp"), "invalid_target"},
		"other client":    {refreshForm(other, rt), "invalid_grant"},
		"access token":    {refreshForm(id, h.tokens(id).AccessToken), "invalid_grant"},
		"missing token":   {withParam(refreshForm(id, rt), "refresh_token", ""), "invalid_request"},
	} {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.code, oauthError(t, h.postForm("/token", tc.form)))
		})
	}
	require.Equal(t, http.StatusOK, h.postForm("/token", refreshForm(id, rt)).Code)
}

func withParam(v url.Values, k, val string) url.Values {
	c := url.Values{}
	for key, vals := range v {
		c[key] = append([]string(nil), vals...)
	}
	if val == "" {
		c.Del(k)
	} else {
		c.Set(k, val)
	}
	return c
}

// TestRefreshNarrowsAccessScopeOnly: the access token may narrow; the new
// refresh token keeps the grant's scope (OAuth 2.1 §4.3.3).
func TestRefreshNarrowsAccessScopeOnly(t *testing.T) {
	h := newHarness(t)
	id := h.publicClient()
	p := authorizeParams(id)
	p.Set("scope", "mcp:tools mcp:admin")
	code := h.approve(p, "alice").Query().Get("code")
	first := decodeTokens(t, h.postForm("/token", exchangeForm(id, code)))
	require.Equal(t, "mcp:tools mcp:admin", first.Scope)
	narrow := decodeTokens(t, h.postForm("/token", withParam(refreshForm(id, first.RefreshToken), "scope", "mcp:admin")))
	require.Equal(t, "mcp:admin", narrow.Scope)
	require.Equal(t, http.StatusForbidden, h.callMCP(narrow.AccessToken).Code, "narrowed token lacks mcp:tools")
	wide := decodeTokens(t, h.postForm("/token", refreshForm(id, narrow.RefreshToken)))
	require.Equal(t, "mcp:tools mcp:admin", wide.Scope)
}

// TestRefreshWithoutResource: golang.org/x/oauth2 omits resource on refresh;
// the grant's resource applies.
func TestRefreshWithoutResource(t *testing.T) {
	h := newHarness(t)
	id := h.publicClient()
	tr := decodeTokens(t, h.postForm("/token", refreshForm(id, h.tokens(id).RefreshToken)))
	require.Equal(t, http.StatusOK, h.callMCP(tr.AccessToken).Code)
	f := withParam(refreshForm(id, tr.RefreshToken), "resource", testResource+"/")
	require.Equal(t, http.StatusOK, h.postForm("/token", f).Code, "canonically equal resource accepted")
}

func TestRefreshExpires(t *testing.T) {
	h := newHarness(t, func(c *mcpoauth.Config) { c.RefreshTokenLifetime = time.Hour })
	id := h.publicClient()
	rt := h.tokens(id).RefreshToken
	h.clock.Advance(time.Hour)
	require.Equal(t, "invalid_grant", oauthError(t, h.postForm("/token", refreshForm(id, rt))))
}

// TestRefreshAbsoluteGrantLifetime: rotation never extends a grant past
// GrantLifetime (the TypeScript original's expiry slid forever).
func TestRefreshAbsoluteGrantLifetime(t *testing.T) {
	h := newHarness(t, func(c *mcpoauth.Config) {
		c.RefreshTokenLifetime = 2 * time.Hour
		c.GrantLifetime = 3 * time.Hour
	})
	id := h.publicClient()
	rt := h.tokens(id).RefreshToken
	for range 2 {
		h.clock.Advance(time.Hour + 30*time.Minute - time.Second)
		w := h.postForm("/token", refreshForm(id, rt))
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		rt = decodeTokens(t, w).RefreshToken
	}
	h.clock.Advance(2 * time.Second) // now past 3 hours since consent
	require.Equal(t, "invalid_grant", oauthError(t, h.postForm("/token", refreshForm(id, rt))))
}

// TestRefreshDisabledGrant: refresh_token off → unsupported_grant_type.
func TestRefreshDisabledGrant(t *testing.T) {
	h := newHarness(t, func(c *mcpoauth.Config) { c.GrantTypes = []string{mcpoauth.GrantAuthorizationCode} })
	id := h.publicClient()
	require.Equal(t, "unsupported_grant_type", oauthError(t, h.postForm("/token", refreshForm(id, "x"))))
}

// TestRefreshUnregisteredClient: the server enables refresh but the client
// did not register it → unauthorized_client.
func TestRefreshUnregisteredClient(t *testing.T) {
	h := newHarness(t)
	out := h.registerClient(map[string]any{"redirect_uris": []string{testRedirect}, "token_endpoint_auth_method": "none"})
	id := out["client_id"].(string)
	require.Equal(t, "unauthorized_client", oauthError(t, h.postForm("/token", refreshForm(id, "x"))))
}
