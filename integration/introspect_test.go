package integration_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/metadata"
)

// The resource server's client at the introspection endpoint.
const (
	testRSClientID     = "mcp-resource-server"
	testRSClientSecret = "rs-secret-0123456789abcdefghijklmnopqrstuvwxyz"
)

// newIntrospectionHarness is a harness with client_credentials on and a
// resource server client listed in IntrospectionClients.
func newIntrospectionHarness(t *testing.T, mutate ...func(*mcpoauth.Config)) *harness {
	t.Helper()
	h := newHarness(t, append([]func(*mcpoauth.Config){func(c *mcpoauth.Config) {
		c.GrantTypes = []string{mcpoauth.GrantAuthorizationCode, mcpoauth.GrantRefreshToken, mcpoauth.GrantClientCredentials}
		c.IntrospectionClients = []string{testRSClientID}
	}}, mutate...)...)
	_, err := h.srv.RegisterClient(context.Background(), metadata.ClientInformation{
		ClientID:       testRSClientID,
		ClientSecret:   testRSClientSecret,
		ClientMetadata: metadata.ClientMetadata{ClientName: "MCP resource server", GrantTypes: []string{mcpoauth.GrantClientCredentials}},
	})
	require.NoError(t, err)
	return h
}

// introspect posts to /introspect with HTTP Basic credentials (none if id
// is empty).
func (h *harness) introspect(form url.Values, id, secret string) *httptest.ResponseRecorder {
	if id == "" {
		return h.postForm("/introspect", form)
	}
	return h.postForm("/introspect", form, id, secret)
}

// confidentialTokens runs the code flow for a confidential client
// authenticating with HTTP Basic.
func (h *harness) confidentialTokens(id, secret string) tokenResponse {
	h.t.Helper()
	w := h.postForm("/token", exchangeForm(id, h.code(id)), id, secret)
	require.Equal(h.t, http.StatusOK, w.Code, w.Body.String())
	var tr tokenResponse
	require.NoError(h.t, json.Unmarshal(w.Body.Bytes(), &tr))
	return tr
}

// decodeIntrospection decodes a 200 introspection response, checking the
// headers every answer carries.
func decodeIntrospection(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	var out map[string]any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &out), w.Body.String())
	return out
}

var inactive = map[string]any{"active": false}

// TestIntrospection: RFC 7662 §2.1-2.2 and the visibility rule: a
// confidential client sees its own access and refresh tokens; a resource
// server listed in IntrospectionClients sees every access token bound to
// ResourceServerURL and nobody's refresh token; every other token, and
// every unknown, revoked or rotated one, is exactly {"active":false}.
// token_type_hint changes nothing.
func TestIntrospection(t *testing.T) {
	h := newIntrospectionHarness(t)
	confID, confSecret := h.confidentialClient()
	conf := h.confidentialTokens(confID, confSecret)
	pubID := h.publicClient()
	pub := h.tokens(pubID)
	m2mID, m2mSecret := h.ccClient(nil)
	w := h.postForm("/token", ccForm("scope", testScope), m2mID, m2mSecret)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var m2m tokenResponse
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &m2m))
	otherID, otherSecret := h.confidentialClient()

	// A rotated refresh token and a revoked access token of another grant.
	spent := h.confidentialTokens(confID, confSecret)
	w = h.postForm("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {spent.RefreshToken}}, confID, confSecret)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, http.StatusOK, h.postForm("/revoke", url.Values{"token": {spent.AccessToken}}, confID, confSecret).Code)

	now := h.clock.Now()
	exp := float64(now.Add(mcpoauth.DefaultAccessTokenLifetime).Unix())
	userAccess := func(clientID string) map[string]any {
		return map[string]any{
			"active": true, "token_type": "Bearer", "client_id": clientID, "sub": "alice", "scope": testScope,
			"aud": testResource, "iss": testIssuer, "exp": exp, "iat": float64(now.Unix()),
		}
	}
	confRefresh := map[string]any{
		"active": true, "client_id": confID, "sub": "alice", "scope": testScope, "aud": testResource, "iss": testIssuer,
		"exp": float64(now.Add(mcpoauth.DefaultRefreshTokenLifetime).Unix()), "iat": float64(now.Unix()),
	}
	m2mAccess := map[string]any{
		"active": true, "token_type": "Bearer", "client_id": m2mID, "scope": testScope,
		"aud": testResource, "iss": testIssuer, "exp": exp, "iat": float64(now.Unix()),
	}

	for _, tc := range []struct {
		name       string
		id, secret string
		token      string
		hint       string
		want       map[string]any
	}{
		{"own access token", confID, confSecret, conf.AccessToken, "", userAccess(confID)},
		{"own access token, wrong hint", confID, confSecret, conf.AccessToken, "refresh_token", userAccess(confID)},
		{"own access token, unknown hint", confID, confSecret, conf.AccessToken, "jwt", userAccess(confID)},
		{"own refresh token: no token_type", confID, confSecret, conf.RefreshToken, "refresh_token", confRefresh},
		{"own client_credentials token: no sub", m2mID, m2mSecret, m2m.AccessToken, "", m2mAccess},
		{"another client's access token", otherID, otherSecret, conf.AccessToken, "", inactive},
		{"another client's refresh token", otherID, otherSecret, conf.RefreshToken, "", inactive},
		{"a public client's token, by another", confID, confSecret, pub.AccessToken, "", inactive},
		{"resource server: any access token", testRSClientID, testRSClientSecret, pub.AccessToken, "", userAccess(pubID)},
		{"resource server: a confidential client's access token", testRSClientID, testRSClientSecret, conf.AccessToken, "", userAccess(confID)},
		{"resource server: a client_credentials token", testRSClientID, testRSClientSecret, m2m.AccessToken, "", m2mAccess},
		{"resource server: never a refresh token", testRSClientID, testRSClientSecret, pub.RefreshToken, "refresh_token", inactive},
		{"unknown token", confID, confSecret, "no-such-token", "", inactive},
		{"unknown token, resource server", testRSClientID, testRSClientSecret, "no-such-token", "", inactive},
		{"rotated refresh token", confID, confSecret, spent.RefreshToken, "", inactive},
		{"revoked access token", confID, confSecret, spent.AccessToken, "", inactive},
		{"revoked access token, resource server", testRSClientID, testRSClientSecret, spent.AccessToken, "", inactive},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := url.Values{"token": {tc.token}}
			if tc.hint != "" {
				form.Set("token_type_hint", tc.hint)
			}
			w := h.introspect(form, tc.id, tc.secret)
			require.Equal(t, tc.want, decodeIntrospection(t, w))
			require.NotContains(t, w.Body.String(), tc.token)
			if tc.want["active"] == false {
				require.Equal(t, `{"active":false}`, w.Body.String(), "an inactive token tells nothing more")
			}
		})
	}

	t.Run("client_secret_post", func(t *testing.T) {
		w := h.postForm("/introspect", url.Values{"token": {conf.AccessToken}, "client_id": {confID}, "client_secret": {confSecret}})
		require.Equal(t, userAccess(confID), decodeIntrospection(t, w))
	})

	t.Run("expired", func(t *testing.T) {
		h.clock.Advance(mcpoauth.DefaultAccessTokenLifetime)
		require.Equal(t, inactive, decodeIntrospection(t, h.introspect(url.Values{"token": {conf.AccessToken}}, confID, confSecret)))
		require.Equal(t, inactive, decodeIntrospection(t, h.introspect(url.Values{"token": {pub.AccessToken}}, testRSClientID, testRSClientSecret)))
		// The refresh token lives on.
		require.Equal(t, true, decodeIntrospection(t, h.introspect(url.Values{"token": {conf.RefreshToken}}, confID, confSecret))["active"])
		h.clock.Advance(mcpoauth.DefaultRefreshTokenLifetime)
		require.Equal(t, inactive, decodeIntrospection(t, h.introspect(url.Values{"token": {conf.RefreshToken}}, confID, confSecret)))
	})
}

// TestIntrospectionRequest: RFC 7662 §2.1 and §2.3: the caller must
// authenticate as a confidential client (a public client, no credentials
// or a wrong secret get invalid_client; 401 with a Basic challenge where
// Basic applies), token is required and single, only POST is served, and
// every answer is no-store. Nothing is revealed about the token on error.
func TestIntrospectionRequest(t *testing.T) {
	h := newIntrospectionHarness(t)
	confID, confSecret := h.confidentialClient()
	pubID := h.publicClient()
	tr := h.tokens(pubID)

	for _, tc := range []struct {
		name      string
		form      url.Values
		id, sec   string
		status    int
		code      string
		challenge bool
	}{
		{"public client", url.Values{"token": {tr.AccessToken}, "client_id": {pubID}}, "", "", http.StatusUnauthorized, "invalid_client", true},
		{"no client authentication", url.Values{"token": {tr.AccessToken}}, "", "", http.StatusUnauthorized, "invalid_client", true},
		{"wrong secret, Basic", url.Values{"token": {tr.AccessToken}}, confID, "wrong", http.StatusUnauthorized, "invalid_client", true},
		{"wrong secret, post", url.Values{"token": {tr.AccessToken}, "client_id": {confID}, "client_secret": {"wrong"}}, "", "", http.StatusUnauthorized, "invalid_client", true},
		{"unknown client", url.Values{"token": {tr.AccessToken}}, "nobody", "secret", http.StatusUnauthorized, "invalid_client", true},
		{"resource server, wrong secret", url.Values{"token": {tr.AccessToken}}, testRSClientID, "wrong", http.StatusUnauthorized, "invalid_client", true},
		{"token missing", url.Values{}, confID, confSecret, http.StatusBadRequest, "invalid_request", false},
		{"token empty", url.Values{"token": {""}}, confID, confSecret, http.StatusBadRequest, "invalid_request", false},
		{"token repeated", url.Values{"token": {tr.AccessToken, tr.AccessToken}}, testRSClientID, testRSClientSecret, http.StatusBadRequest, "invalid_request", false},
		{"hint repeated", url.Values{"token": {tr.AccessToken}, "token_type_hint": {"a", "b"}}, testRSClientID, testRSClientSecret, http.StatusBadRequest, "invalid_request", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := h.introspect(tc.form, tc.id, tc.sec)
			require.Equal(t, tc.status, w.Code, w.Body.String())
			require.Equal(t, tc.code, oauthError(t, w))
			require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
			require.Equal(t, tc.challenge, strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Basic "), w.Header().Get("WWW-Authenticate"))
			require.NotContains(t, w.Body.String(), "active")
		})
	}

	t.Run("JSON body refused", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodPost, testIssuer+"/introspect", strings.NewReader(`{"token":"x"}`))
		r.Header.Set("Content-Type", "application/json")
		r.SetBasicAuth(testRSClientID, testRSClientSecret)
		w := h.do(r)
		require.Equal(t, http.StatusBadRequest, w.Code)
		require.Equal(t, "invalid_request", oauthError(t, w))
	})
	t.Run("token in the query is not read", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodPost, testIssuer+"/introspect?token="+url.QueryEscape(tr.AccessToken), strings.NewReader(""))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.SetBasicAuth(testRSClientID, testRSClientSecret)
		w := h.do(r)
		require.Equal(t, http.StatusBadRequest, w.Code)
		require.Equal(t, "invalid_request", oauthError(t, w))
	})
	for _, m := range []string{http.MethodGet, http.MethodPut} {
		t.Run(m, func(t *testing.T) {
			w := h.do(httptest.NewRequest(m, testIssuer+"/introspect?token=x", nil))
			require.Equal(t, http.StatusMethodNotAllowed, w.Code)
			require.Equal(t, "POST", w.Header().Get("Allow"))
		})
	}
}

// tokenStoreDown fails GetToken only, so that client authentication
// passes and the token lookup fails.
type tokenStoreDown struct{ *mcpoauth.MemoryModel }

func (m tokenStoreDown) GetToken(context.Context, mcpoauth.Digest) (*mcpoauth.Token, error) {
	return nil, errStorage
}

// TestIntrospectionStorageError: a failed lookup is 500 server_error with
// no internals, never a false {"active":false}, and ErrorHandler gets the
// cause.
func TestIntrospectionStorageError(t *testing.T) {
	h := newIntrospectionHarness(t, func(c *mcpoauth.Config) {
		c.Model = tokenStoreDown{c.Model.(*mcpoauth.MemoryModel)}
	})
	w := h.introspect(url.Values{"token": {"some-token"}}, testRSClientID, testRSClientSecret)
	require.Equal(t, http.StatusInternalServerError, w.Code)
	require.Equal(t, "server_error", oauthError(t, w))
	require.NotContains(t, w.Body.String(), "hunter2")
	require.NotContains(t, w.Body.String(), "active")
	h.mu.Lock()
	defer h.mu.Unlock()
	require.NotEmpty(t, h.errs)
	require.True(t, errors.Is(h.errs[len(h.errs)-1], errStorage))
}

// TestIntrospectionRateLimit: RateLimits.Introspect limits the endpoint
// per client IP.
func TestIntrospectionRateLimit(t *testing.T) {
	h := newIntrospectionHarness(t, func(c *mcpoauth.Config) {
		c.RateLimits = mcpoauth.RateLimits{Introspect: mcpoauth.RateLimit{Requests: 2, Window: time.Hour}}
	})
	form := url.Values{"token": {"x"}}
	for range 2 {
		require.Equal(t, http.StatusOK, h.introspect(form, testRSClientID, testRSClientSecret).Code)
	}
	rtRequireLimited(t, h.introspect(form, testRSClientID, testRSClientSecret))
}

// TestIntrospectionConfig: IntrospectionClients needs the resource they
// serve, and names clients.
func TestIntrospectionConfig(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*mcpoauth.Config)
	}{
		{"without ResourceServerURL", func(c *mcpoauth.Config) {
			c.ResourceServerURL = ""
			c.IntrospectionClients = []string{"rs"}
		}},
		{"empty client ID", func(c *mcpoauth.Config) { c.IntrospectionClients = []string{"rs", ""} }},
		{"bad rate limit", func(c *mcpoauth.Config) {
			c.RateLimits = mcpoauth.RateLimits{Introspect: mcpoauth.RateLimit{Requests: -1, Window: time.Minute}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cfgValid(t)
			tc.mutate(&c)
			_, err := mcpoauth.New(c)
			require.ErrorIs(t, err, mcpoauth.ErrInvalidConfig)
			require.Contains(t, err.Error(), "Introspect")
		})
	}
	t.Run("the server keeps its own copy of the list", func(t *testing.T) {
		list := []string{testRSClientID}
		h := newIntrospectionHarness(t, func(c *mcpoauth.Config) { c.IntrospectionClients = list })
		list[0] = "someone-else"
		tr := h.tokens(h.publicClient())
		w := h.introspect(url.Values{"token": {tr.AccessToken}}, testRSClientID, testRSClientSecret)
		require.Equal(t, true, decodeIntrospection(t, w)["active"])
	})
}
