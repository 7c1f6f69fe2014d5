package integration_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
)

// TestOfflineAccessMetadata: MCP SEP-2207. The server metadata lists
// offline_access while the refresh grant is on (ChatGPT refreshes only when
// it sees it there), the protected resource metadata never does, not even
// when the operator put it in ScopesSupported.
func TestOfflineAccessMetadata(t *testing.T) {
	for _, tc := range []struct {
		name      string
		supported []string
		grants    []string
		wantAS    []string
	}{
		{"refresh grant on: listed", []string{testScope}, nil, []string{testScope, "offline_access"}},
		{"refresh grant off: not listed", []string{testScope}, []string{mcpoauth.GrantAuthorizationCode}, []string{testScope}},
		{"operator listed it: once, last", []string{"offline_access", testScope}, nil, []string{testScope, "offline_access"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *mcpoauth.Config) { c.ScopesSupported, c.GrantTypes = tc.supported, tc.grants })
			require.Equal(t, tc.wantAS, h.srv.Metadata().ScopesSupported)
			require.Equal(t, []string{testScope}, h.srv.ProtectedResourceMetadata().ScopesSupported, "SEP-2207: never at the resource")
		})
	}
}

// TestOfflineAccessGovernsRefreshTokens: SEP-2207 and OpenID Connect Core
// §11. A client that registered only the code grant (the RFC 7591 default)
// gets a refresh token when it asks for offline_access, although
// ScopesSupported does not list it, and may use it; without offline_access
// it gets none. A client registered for the refresh grant gets one either
// way (most MCP clients do not ask).
func TestOfflineAccessGovernsRefreshTokens(t *testing.T) {
	h := newHarness(t)
	codeOnly := h.preRegisterJSON(map[string]any{"redirect_uris": []string{testRedirect}, "token_endpoint_auth_method": "none"})["client_id"].(string)
	exchange := func(clientID, scope string) tokenResponse {
		t.Helper()
		p := authorizeParams(clientID)
		p.Set("scope", scope)
		code := h.approve(p, "alice").Query().Get("code")
		w := h.postForm("/token", exchangeForm(clientID, code))
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		return decodeTokens(t, w)
	}

	tr := exchange(codeOnly, testScope+" offline_access")
	require.NotEmpty(t, tr.RefreshToken, "asked for offline_access")
	require.Equal(t, testScope+" offline_access", tr.Scope)
	w := h.postForm("/token", refreshForm(codeOnly, tr.RefreshToken))
	require.Equal(t, http.StatusOK, w.Code, "the grant's offline_access lets it refresh: %s", w.Body.String())

	require.Empty(t, exchange(codeOnly, testScope).RefreshToken, "did not ask, not registered")
	w = h.postForm("/token", refreshForm(codeOnly, "no-such-token"))
	require.Equal(t, "unauthorized_client", oauthError(t, w))

	require.NotEmpty(t, exchange(h.publicClient(), testScope).RefreshToken, "registered for the refresh grant")
}
