package integration_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/metadata"
)

// ccClient pre-registers a confidential client_credentials client with the
// given extra metadata and returns its id and secret: /register refuses
// that grant (TestRegisterRefusesClientCredentials).
func (h *harness) ccClient(meta map[string]any) (id, secret string) {
	h.t.Helper()
	m := map[string]any{"grant_types": []string{mcpoauth.GrantClientCredentials}, "client_name": "Batch job"}
	for k, v := range meta {
		m[k] = v
	}
	out := h.preRegisterJSON(m)
	return out["client_id"].(string), out["client_secret"].(string)
}

func ccForm(extra ...string) url.Values {
	f := url.Values{"grant_type": {"client_credentials"}}
	for i := 0; i+1 < len(extra); i += 2 {
		f.Set(extra[i], extra[i+1])
	}
	return f
}

// TestClientCredentials: the MCP extension
// io.modelcontextprotocol/oauth-client-credentials: a confidential client
// authenticated by client_secret_basic or client_secret_post gets an access
// token acting for itself: no user on the AuthInfo, no refresh token (OAuth
// 2.1 §4.2.2), a fresh grant per exchange, bound to the
// configured resource server when the request names none (the MCP Go SDK
// omits resource).
func TestClientCredentials(t *testing.T) {
	for _, style := range []string{"client_secret_basic", "client_secret_post"} {
		t.Run(style, func(t *testing.T) {
			h := newHarness(t, withAllGrants)
			// Registered for refresh too: still no refresh token.
			id, sec := h.ccClient(map[string]any{
				"token_endpoint_auth_method": style,
				"grant_types":                []string{"client_credentials", "refresh_token"},
			})
			exchange := func() tokenResponse {
				f := ccForm("scope", testScope)
				var basic []string
				if style == "client_secret_basic" {
					basic = []string{id, sec}
				} else {
					f.Set("client_id", id)
					f.Set("client_secret", sec)
				}
				w := h.postForm("/token", f, basic...)
				require.Equal(t, http.StatusOK, w.Code, w.Body.String())
				require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
				var body map[string]any
				require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
				require.ElementsMatch(t, []string{"access_token", "token_type", "expires_in", "scope"}, mapKeys(body), "no refresh_token")
				return decodeTokens(t, w)
			}
			first, second := exchange(), exchange()
			require.Equal(t, testScope, first.Scope)
			require.EqualValues(t, 3600, first.ExpiresIn)

			mcp := h.callMCP(first.AccessToken)
			require.Equal(t, http.StatusOK, mcp.Code, mcp.Body.String())
			require.Contains(t, mcp.Body.String(), `"user":""`)
			require.Contains(t, mcp.Body.String(), `"client":"`+id+`"`)

			a, err := h.srv.VerifyAccessToken(context.Background(), first.AccessToken)
			require.NoError(t, err)
			b, err := h.srv.VerifyAccessToken(context.Background(), second.AccessToken)
			require.NoError(t, err)
			require.Empty(t, a.UserID)
			require.Equal(t, testResource, a.Resource, "omitted resource: the configured resource server")
			require.NotEmpty(t, a.GrantID)
			require.NotEqual(t, a.GrantID, b.GrantID, "each exchange is its own grant")
		})
	}
}

// TestClientCredentialsScopeAndResource: scope defaults (the client's
// registered scope, else every supported scope) and validation; the
// resource is optional even under StrictResource, and validated when sent.
func TestClientCredentialsScopeAndResource(t *testing.T) {
	h := newHarness(t, withAllGrants)
	wide, wideSecret := h.ccClient(nil)
	narrow, narrowSecret := h.ccClient(map[string]any{"scope": testScope})
	for name, tc := range map[string]struct {
		id, secret string
		form       url.Values
		scope      string // granted scope, or
		code       string // the OAuth error
	}{
		"no scope: every supported scope":       {wide, wideSecret, ccForm(), "mcp:tools mcp:admin", ""},
		"no scope: the client's registered one": {narrow, narrowSecret, ccForm(), testScope, ""},
		"a supported subset":                    {wide, wideSecret, ccForm("scope", "mcp:admin"), "mcp:admin", ""},
		"unsupported scope":                     {wide, wideSecret, ccForm("scope", "mcp:root"), "", "invalid_scope"},
		"beyond the registered scope":           {narrow, narrowSecret, ccForm("scope", "mcp:admin"), "", "invalid_scope"},
		"malformed scope":                       {wide, wideSecret, ccForm("scope", "a  b"), "", "invalid_scope"},
		"the served resource":                   {wide, wideSecret, ccForm("resource", testResource), "mcp:tools mcp:admin", ""},
		"another resource":                      {wide, wideSecret, ccForm("resource", "https://other.example.com/mcp"), "", "invalid_target"},
		"a malformed resource":                  {wide, wideSecret, ccForm("resource", "not a uri"), "", "invalid_target"},
		"repeated scope":                        {wide, wideSecret, addParam(ccForm("scope", testScope), "scope", testScope), "", "invalid_request"},
	} {
		t.Run(name, func(t *testing.T) {
			w := h.postForm("/token", tc.form, tc.id, tc.secret)
			if tc.code != "" {
				require.Equal(t, tc.code, oauthError(t, w), w.Body.String())
				return
			}
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			tr := decodeTokens(t, w)
			require.Equal(t, tc.scope, tr.Scope)
			info, err := h.srv.VerifyAccessToken(context.Background(), tr.AccessToken)
			require.NoError(t, err)
			require.Equal(t, testResource, info.Resource)
		})
	}
}

// TestClientCredentialsRejections: only authenticated confidential clients
// that registered the grant, on a server that enables it; a refused request
// issues nothing.
func TestClientCredentialsRejections(t *testing.T) {
	h := newHarness(t, withAllGrants)
	id, sec := h.ccClient(nil)
	codeID, codeSecret := h.confidentialClient()
	// A public client holding the grant cannot be registered (RFC 7591
	// validation refuses it), but a Model may still hold one.
	require.NoError(t, h.model.RegisterClient(context.Background(), &mcpoauth.Client{
		ID:       "public-cc",
		Metadata: metadata.ClientMetadata{GrantTypes: []string{mcpoauth.GrantClientCredentials}, TokenEndpointAuthMethod: "none"},
	}))
	for name, tc := range map[string]struct {
		form   url.Values
		basic  []string
		status int
		code   string
	}{
		"public client":              {ccForm("client_id", "public-cc"), nil, 400, "unauthorized_client"},
		"client without the grant":   {ccForm(), []string{codeID, codeSecret}, 400, "unauthorized_client"},
		"wrong secret (basic)":       {ccForm(), []string{id, "wrong"}, 401, "invalid_client"},
		"wrong secret (post)":        {ccForm("client_id", id, "client_secret", "wrong"), nil, 401, "invalid_client"},
		"no secret":                  {ccForm("client_id", id), nil, 401, "invalid_client"},
		"unknown client":             {ccForm(), []string{"nope", "x"}, 401, "invalid_client"},
		"two authentication methods": {ccForm("client_secret", sec), []string{id, sec}, 400, "invalid_request"},
	} {
		t.Run(name, func(t *testing.T) {
			w := h.postForm("/token", tc.form, tc.basic...)
			require.Equal(t, tc.status, w.Code, w.Body.String())
			require.Equal(t, tc.code, oauthError(t, w))
			if tc.status == http.StatusUnauthorized {
				require.Contains(t, w.Header().Get("WWW-Authenticate"), "Basic")
			}
		})
	}
	require.Zero(t, h.model.Stats().Tokens, "nothing issued")

	off := newHarness(t)
	w := off.postForm("/token", ccForm(), id, sec)
	require.Equal(t, "invalid_client", oauthError(t, w), "another server does not know the client")
	offID, offSecret := off.confidentialClient()
	require.Equal(t, "unsupported_grant_type", oauthError(t, off.postForm("/token", ccForm(), offID, offSecret)))
}

// TestClientCredentialsMetadata: the extension requires
// token_endpoint_auth_methods_supported to list client_secret_basic (MCP
// extension io.modelcontextprotocol/oauth-client-credentials);
// client_secret_post is its prose's method.
func TestClientCredentialsMetadata(t *testing.T) {
	h := newHarness(t, func(c *mcpoauth.Config) { c.GrantTypes = []string{mcpoauth.GrantClientCredentials} })
	var m struct {
		GrantTypes  []string `json:"grant_types_supported"`
		AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
		Authorize   *string  `json:"authorization_endpoint"`
	}
	w := h.do(newRequest(http.MethodGet, "/.well-known/oauth-authorization-server", ""))
	require.Equal(t, http.StatusOK, w.Code)
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &m))
	require.Equal(t, []string{"client_credentials"}, m.GrantTypes)
	require.Subset(t, m.AuthMethods, []string{"client_secret_basic", "client_secret_post"})
	require.Nil(t, m.Authorize)
}
