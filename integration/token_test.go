package integration_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/internal/pkce"
)

func TestTokenExchangeSuccess(t *testing.T) {
	h := newHarness(t)
	id := h.publicClient()
	w := h.postForm("/token", exchangeForm(id, h.code(id)))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	var body map[string]any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
	// Exactly the RFC 6749 §5.1 members.
	require.ElementsMatch(t, []string{"access_token", "token_type", "expires_in", "refresh_token", "scope"}, mapKeys(body))
	require.Equal(t, "Bearer", body["token_type"])
	require.EqualValues(t, 3600, body["expires_in"])
	require.Equal(t, testScope, body["scope"])
	require.Regexp(t, `^[A-Za-z0-9_-]{43}$`, body["access_token"])
	require.Regexp(t, `^[A-Za-z0-9_-]{43}$`, body["refresh_token"])

	mcp := h.callMCP(body["access_token"].(string))
	require.Equal(t, http.StatusOK, mcp.Code, mcp.Body.String())
	require.Contains(t, mcp.Body.String(), `"user":"alice"`)
}

// TestTokenExchangeRejections: every check of OAuth 2.1 §4.1.3, and that a
// failed request burns nothing (the same code still redeems afterwards).
func TestTokenExchangeRejections(t *testing.T) {
	h := newHarness(t)
	id := h.publicClient()
	other := h.publicClient()
	for name, tc := range map[string]struct {
		mutate func(f url.Values)
		code   string
	}{
		"missing code":              {func(f url.Values) { f.Del("code") }, "invalid_request"},
		"unknown code":              {func(f url.Values) { f.Set("code", strings.Repeat("x", 43)) }, "invalid_grant"},
		"missing verifier":          {func(f url.Values) { f.Del("code_verifier") }, "invalid_request"},
		"wrong verifier":            {func(f url.Values) { f.Set("code_verifier", strings.Repeat("a", 43)) }, "invalid_grant"},
		"verifier = challenge":      {func(f url.Values) { f.Set("code_verifier", pkce.Challenge(testVerifier)) }, "invalid_grant"},
		"short verifier":            {func(f url.Values) { f.Set("code_verifier", "abc") }, "invalid_grant"},
		"other client":              {func(f url.Values) { f.Set("client_id", other) }, "invalid_grant"},
		"missing redirect_uri":      {func(f url.Values) { f.Del("redirect_uri") }, "invalid_grant"},
		"different redirect_uri":    {func(f url.Values) { f.Set("redirect_uri", testRedirect+"/x") }, "invalid_grant"},
		"different resource":        {func(f url.Values) { f.Set("resource", "https://other.example.com/mcp") }, "invalid_target"},
		"malformed resource":        {func(f url.Values) { f.Set("resource", "not a uri") }, "invalid_target"},
		"repeated code":             {func(f url.Values) { f.Add("code", "x") }, "invalid_request"},
		"missing grant_type":        {func(f url.Values) { f.Del("grant_type") }, "invalid_request"},
		"password grant":            {func(f url.Values) { f.Set("grant_type", "password") }, "unsupported_grant_type"},
		"client_credentials (off)":  {func(f url.Values) { f.Set("grant_type", "client_credentials") }, "unsupported_grant_type"},
		"implicit-ish grant":        {func(f url.Values) { f.Set("grant_type", "token") }, "unsupported_grant_type"},
		"unknown client":            {func(f url.Values) { f.Set("client_id", "nope") }, "invalid_client"},
		"missing client_id":         {func(f url.Values) { f.Del("client_id") }, "invalid_client"},
		"public client with secret": {func(f url.Values) { f.Set("client_secret", "x") }, "invalid_client"},
	} {
		t.Run(name, func(t *testing.T) {
			code := h.code(id)
			f := exchangeForm(id, code)
			tc.mutate(f)
			w := h.postForm("/token", f)
			require.Equal(t, tc.code, oauthError(t, w), w.Body.String())
			require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
			ok := h.postForm("/token", exchangeForm(id, code))
			require.Equal(t, http.StatusOK, ok.Code, "a failed request must not burn the code: %s", ok.Body.String())
		})
	}
}

func TestTokenExchangeWithoutResourceUsesCodeResource(t *testing.T) {
	h := newHarness(t)
	id := h.publicClient()
	f := exchangeForm(id, h.code(id))
	f.Del("resource")
	w := h.postForm("/token", f)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
}

func TestTokenExchangeExpiredCode(t *testing.T) {
	h := newHarness(t)
	id := h.publicClient()
	code := h.code(id)
	h.clock.Advance(5 * time.Minute)
	require.Equal(t, "invalid_grant", oauthError(t, h.postForm("/token", exchangeForm(id, code))))
}

// TestTokenOmittedRedirectURIAtAuthorize: when /authorize had no
// redirect_uri, the token request may omit it, and if sent it must match.
func TestTokenOmittedRedirectURIAtAuthorize(t *testing.T) {
	h := newHarness(t)
	id := h.publicClient()
	p := authorizeParams(id)
	p.Del("redirect_uri")
	code := h.approve(p, "bob").Query().Get("code")
	f := exchangeForm(id, code)
	f.Del("redirect_uri")
	require.Equal(t, http.StatusOK, h.postForm("/token", f).Code)
}

// TestTokenCodeReplayRevokesGrant: OAuth 2.1 §4.1.3 / RFC 9700 §4.5: the
// second valid redemption fails and revokes every token of the grant
// (the TypeScript original only refused it).
func TestTokenCodeReplayRevokesGrant(t *testing.T) {
	h := newHarness(t)
	id := h.publicClient()
	code := h.code(id)
	first := h.postForm("/token", exchangeForm(id, code))
	require.Equal(t, http.StatusOK, first.Code)
	var tr tokenResponse
	require.NoError(t, json.Unmarshal(first.Body.Bytes(), &tr))
	require.Equal(t, http.StatusOK, h.callMCP(tr.AccessToken).Code)

	replay := h.postForm("/token", exchangeForm(id, code))
	require.Equal(t, "invalid_grant", oauthError(t, replay))
	require.Equal(t, http.StatusUnauthorized, h.callMCP(tr.AccessToken).Code, "access token of the replayed code is revoked")
	rf := h.postForm("/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {id}, "refresh_token": {tr.RefreshToken}})
	require.Equal(t, "invalid_grant", oauthError(t, rf), "refresh token of the replayed code is revoked")
}

// TestTokenInvalidReplayRevokesNothing: a replay that itself fails
// validation (wrong verifier) must not revoke the grant (OAuth 2.1 §4.1.3:
// avoids a denial of service by whoever saw the code).
func TestTokenInvalidReplayRevokesNothing(t *testing.T) {
	h := newHarness(t)
	id := h.publicClient()
	code := h.code(id)
	var tr tokenResponse
	w := h.postForm("/token", exchangeForm(id, code))
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &tr))
	bad := exchangeForm(id, code)
	bad.Set("code_verifier", strings.Repeat("z", 43))
	require.Equal(t, "invalid_grant", oauthError(t, h.postForm("/token", bad)))
	other := exchangeForm(h.publicClient(), code)
	require.Equal(t, "invalid_grant", oauthError(t, h.postForm("/token", other)))
	require.Equal(t, http.StatusOK, h.callMCP(tr.AccessToken).Code)
}

// TestTokenRefreshOnlyWhenRegistered: a refresh token is issued only when
// the server enables the grant and the client registered it (the TypeScript
// original once issued one to any client).
func TestTokenRefreshOnlyWhenRegistered(t *testing.T) {
	h := newHarness(t)
	out := h.registerClient(map[string]any{"redirect_uris": []string{testRedirect}, "token_endpoint_auth_method": "none"})
	id := out["client_id"].(string)
	tr := h.tokens(id)
	require.NotEmpty(t, tr.AccessToken)
	require.Empty(t, tr.RefreshToken)

	h2 := newHarness(t, func(c *mcpoauth.Config) { c.GrantTypes = []string{mcpoauth.GrantAuthorizationCode} })
	id2 := h2.publicClient() // asks for refresh_token too; the server drops it
	require.Empty(t, h2.tokens(id2).RefreshToken)
}

func TestTokenConfidentialClientBasic(t *testing.T) {
	h := newHarness(t)
	id, sec := h.confidentialClient()
	h.basicTokens(id, sec)
}

func TestTokenConfidentialClientNeedsSecret(t *testing.T) {
	h := newHarness(t)
	id, _ := h.confidentialClient()
	w := h.postForm("/token", exchangeForm(id, h.code(id)))
	require.Equal(t, http.StatusUnauthorized, w.Code)
	require.Equal(t, "invalid_client", oauthError(t, w))
}

func TestTokenRejectsNonFormBodies(t *testing.T) {
	h := newHarness(t)
	id := h.publicClient()
	b, _ := json.Marshal(map[string]string{"grant_type": "authorization_code", "client_id": id})
	r := newRequest(http.MethodPost, "/token", string(b))
	r.Header.Set("Content-Type", "application/json")
	w := h.do(r)
	require.Equal(t, "invalid_request", oauthError(t, w))
	big := newRequest(http.MethodPost, "/token", "grant_type=x&pad="+strings.Repeat("a", 70<<10))
	require.Equal(t, http.StatusRequestEntityTooLarge, h.do(big).Code)
}

func TestTokenMethodGuard(t *testing.T) {
	h := newHarness(t)
	w := h.do(newRequest(http.MethodGet, "/token", ""))
	require.Equal(t, http.StatusMethodNotAllowed, w.Code)
	require.Equal(t, "POST", w.Header().Get("Allow"))
}

// TestTokenAccessTokenLifetimeCappedByGrant: no token outlives its grant.
func TestTokenAccessTokenLifetimeCappedByGrant(t *testing.T) {
	h := newHarness(t, func(c *mcpoauth.Config) {
		c.GrantLifetime = 30 * time.Minute
		c.AccessTokenLifetime = time.Hour
	})
	require.EqualValues(t, 1800, h.tokens(h.publicClient()).ExpiresIn)
}
