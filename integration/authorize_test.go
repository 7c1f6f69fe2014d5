package integration_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
)

// TestAuthorizeShowsErrorsUntilRedirectURIIsVerified: OAuth 2.1 §4.1.2.1 and
// RFC 9700 §4.11: with a bad client or redirect URI the error is shown, never
// redirected (zitadel #640).
func TestAuthorizeShowsErrorsUntilRedirectURIIsVerified(t *testing.T) {
	h := newHarness(t)
	id := h.publicClient()
	for name, tc := range map[string]struct {
		mutate func(url.Values)
		code   string
	}{
		"missing client_id":       {func(v url.Values) { v.Del("client_id") }, "invalid_request"},
		"unknown client_id":       {func(v url.Values) { v.Set("client_id", "nope") }, "invalid_client"},
		"repeated client_id":      {func(v url.Values) { v.Add("client_id", id) }, "invalid_request"},
		"unregistered redirect":   {func(v url.Values) { v.Set("redirect_uri", "https://evil.example.com/cb") }, "invalid_request"},
		"redirect case variant":   {func(v url.Values) { v.Set("redirect_uri", "https://client.example.com/CB") }, "invalid_request"},
		"redirect with fragment":  {func(v url.Values) { v.Set("redirect_uri", testRedirect+"#x") }, "invalid_request"},
		"redirect extra path":     {func(v url.Values) { v.Set("redirect_uri", testRedirect+"/x") }, "invalid_request"},
		"repeated redirect_uri":   {func(v url.Values) { v.Add("redirect_uri", testRedirect) }, "invalid_request"},
		"redirect on suffix host": {func(v url.Values) { v.Set("redirect_uri", "https://evilclient.example.com/cb") }, "invalid_request"},
	} {
		t.Run(name, func(t *testing.T) {
			p := authorizeParams(id)
			tc.mutate(p)
			w := h.authorize(&browser{}, p)
			require.Equal(t, http.StatusBadRequest, w.Code)
			require.Empty(t, w.Header().Get("Location"))
			require.Equal(t, tc.code, oauthError(t, w))
		})
	}
}

// TestAuthorizeRedirectsLaterErrors: once the redirect URI is trusted,
// errors go back to it with error, state (only if sent) and iss (RFC 9207).
func TestAuthorizeRedirectsLaterErrors(t *testing.T) {
	h := newHarness(t, func(c *mcpoauth.Config) { c.StrictResource = true })
	id := h.publicClient()
	for name, tc := range map[string]struct {
		mutate func(url.Values)
		code   string
	}{
		"missing response_type":     {func(v url.Values) { v.Del("response_type") }, "invalid_request"},
		"implicit response_type":    {func(v url.Values) { v.Set("response_type", "token") }, "unsupported_response_type"},
		"missing code_challenge":    {func(v url.Values) { v.Del("code_challenge") }, "invalid_request"},
		"plain PKCE":                {func(v url.Values) { v.Set("code_challenge_method", "plain") }, "invalid_request"},
		"missing challenge method":  {func(v url.Values) { v.Del("code_challenge_method") }, "invalid_request"},
		"malformed challenge":       {func(v url.Values) { v.Set("code_challenge", "short") }, "invalid_request"},
		"unsupported scope":         {func(v url.Values) { v.Set("scope", "mcp:tools other") }, "invalid_scope"},
		"malformed scope":           {func(v url.Values) { v.Set("scope", "mcp:tools  mcp:admin") }, "invalid_scope"},
		"missing resource (strict)": {func(v url.Values) { v.Del("resource") }, "invalid_target"},
		"foreign resource":          {func(v url.Values) { v.Set("resource", "https://other.example.com/mcp") }, "invalid_target"},
		"resource with fragment":    {func(v url.Values) { v.Set("resource", testResource+"#x") }, "invalid_target"},
		"prefix resource":           {func(v url.Values) { v.Set("resource", testResource+"/sub") }, "invalid_target"},
		"two resources":             {func(v url.Values) { v.Add("resource", testResource) }, "invalid_target"},
		"repeated scope":            {func(v url.Values) { v.Add("scope", testScope) }, "invalid_request"},
	} {
		t.Run(name, func(t *testing.T) {
			p := authorizeParams(id)
			tc.mutate(p)
			w := h.authorize(&browser{}, p)
			require.Equal(t, http.StatusFound, w.Code, w.Body.String())
			loc, err := url.Parse(w.Header().Get("Location"))
			require.NoError(t, err)
			require.Equal(t, "client.example.com", loc.Host)
			q := loc.Query()
			require.Equal(t, tc.code, q.Get("error"))
			require.Equal(t, "xyz", q.Get("state"))
			require.Equal(t, testIssuer, q.Get("iss"))
			require.Empty(t, q.Get("code"))
		})
	}
}

func TestAuthorizeErrorWithoutStateHasNoState(t *testing.T) {
	h := newHarness(t)
	p := authorizeParams(h.publicClient())
	p.Del("state")
	p.Set("response_type", "token")
	w := h.authorize(&browser{}, p)
	loc, err := url.Parse(w.Header().Get("Location"))
	require.NoError(t, err)
	_, has := loc.Query()["state"]
	require.False(t, has, "state must be absent when not sent")
	require.Equal(t, testIssuer, loc.Query().Get("iss"))
}

// TestAuthorizeRefusesClientWithoutCodeGrant: a client not registered for
// the authorization_code grant is refused at /authorize (the TypeScript
// original issued it a code that then failed at /token).
func TestAuthorizeRefusesClientWithoutCodeGrant(t *testing.T) {
	h := newHarness(t)
	out := h.preRegisterJSON(map[string]any{"redirect_uris": []string{testRedirect}, "grant_types": []string{"refresh_token"}, "response_types": []string{}})
	w := h.authorize(&browser{}, authorizeParams(out["client_id"].(string)))
	require.Equal(t, http.StatusFound, w.Code)
	require.Contains(t, w.Header().Get("Location"), "error=unauthorized_client")
}

func TestAuthorizeStoresPendingRequestAndRedirectsToConsent(t *testing.T) {
	h := newHarness(t)
	id := h.publicClient()
	b := &browser{}
	w := h.authorize(b, authorizeParams(id))
	require.Equal(t, http.StatusFound, w.Code)
	require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	require.Empty(t, w.Header().Get("Access-Control-Allow-Origin"), "no CORS on the authorization endpoint (RFC 9700 §2.6)")
	loc, _ := url.Parse(w.Header().Get("Location"))
	// Only an opaque id leaves: no challenge, scope or state in the URL.
	require.Equal(t, []string{"request_id"}, mapKeys(loc.Query()))
	p := h.pending(b, w)
	require.Equal(t, id, p.ClientID)
	require.Equal(t, "Test Client", p.ClientName)
	require.Equal(t, "client.example.com", p.RedirectHost)
	require.Equal(t, []string{testScope}, p.Scopes)
	require.Equal(t, testResource, p.Resource)
	require.NotEmpty(t, p.CSRFToken)
}

func TestAuthorizeAcceptsPOST(t *testing.T) {
	h := newHarness(t)
	w := h.postForm("/authorize", authorizeParams(h.publicClient()))
	require.Equal(t, http.StatusSeeOther, w.Code, w.Body.String())
	require.True(t, strings.HasPrefix(w.Header().Get("Location"), testConsentURL))
}

// pendingWith is the request the consent page shows for a valid
// authorization request of a new public client that edit changed.
func pendingWith(t *testing.T, edit func(url.Values)) mcpoauth.PendingAuthorization {
	t.Helper()
	h := newHarness(t)
	p := authorizeParams(h.publicClient())
	edit(p)
	return h.consent(p)
}

// TestAuthorizeDefaultsScope: a request without scope gets ScopesSupported
// (the TypeScript original promised it and issued empty scopes).
func TestAuthorizeDefaultsScope(t *testing.T) {
	require.Equal(t, []string{testScope, "mcp:admin"}, pendingWith(t, func(p url.Values) { p.Del("scope") }).Scopes)
}

// TestAuthorizeDefaultsScopeToRegistered: a client that registered a scope
// is held to it (the TypeScript original never enforced a registered scope).
func TestAuthorizeDefaultsScopeToRegistered(t *testing.T) {
	h := newHarness(t)
	out := h.preRegisterJSON(map[string]any{"redirect_uris": []string{testRedirect}, "token_endpoint_auth_method": "none", "scope": testScope})
	id := out["client_id"].(string)
	p := authorizeParams(id)
	p.Del("scope")
	require.Equal(t, []string{testScope}, h.consent(p).Scopes)
	p.Set("scope", "mcp:admin")
	w := h.authorize(&browser{}, p)
	require.Contains(t, w.Header().Get("Location"), "error=invalid_scope")
}

// TestAuthorizeLenientResource: without StrictResource (the default) a
// missing resource defaults to ResourceServerURL.
func TestAuthorizeLenientResource(t *testing.T) {
	require.Equal(t, testResource, pendingWith(t, func(p url.Values) { p.Del("resource") }).Resource)
}

func TestAuthorizeCanonicalisesResource(t *testing.T) {
	require.Equal(t, testResource, pendingWith(t, func(p url.Values) { p.Set("resource", "HTTPS://AS.example.com:443/mcp/") }).Resource)
}

// TestAuthorizeOmittedRedirectURI: with one registered URI it may be omitted
// (OAuth 2.1 §2.3.2).
func TestAuthorizeOmittedRedirectURI(t *testing.T) {
	require.Equal(t, testRedirect, pendingWith(t, func(p url.Values) { p.Del("redirect_uri") }).RedirectURI)
}

// TestAuthorizeLoopbackAnyPort: RFC 8252 §7.3.
func TestAuthorizeLoopbackAnyPort(t *testing.T) {
	h := newHarness(t)
	out := h.registerClient(map[string]any{"redirect_uris": []string{"http://127.0.0.1/callback"}, "token_endpoint_auth_method": "none"})
	p := authorizeParams(out["client_id"].(string))
	p.Set("redirect_uri", "http://127.0.0.1:49152/callback")
	require.Equal(t, "http://127.0.0.1:49152/callback", h.consent(p).RedirectURI)
	p.Set("redirect_uri", "http://127.0.0.1:49152/callback?x=1")
	require.Equal(t, http.StatusBadRequest, h.authorize(&browser{}, p).Code, "only the port may vary (fosite CVE-2020-15233)")
	p.Set("redirect_uri", "http://localhost:49152/callback")
	require.Equal(t, http.StatusBadRequest, h.authorize(&browser{}, p).Code)
}

func TestAuthorizeModifyRedirectURL(t *testing.T) {
	h := newHarness(t, func(c *mcpoauth.Config) {
		c.ModifyAuthorizationRedirectURL = func(u *url.URL, client *mcpoauth.Client, req *mcpoauth.AuthorizationRequest) {
			q := u.Query()
			q.Set("client_name", client.Metadata.ClientName)
			q.Set("scopes", strings.Join(req.Scopes, " "))
			u.RawQuery = q.Encode()
		}
	})
	w := h.authorize(&browser{}, authorizeParams(h.publicClient()))
	loc, _ := url.Parse(w.Header().Get("Location"))
	require.Equal(t, "Test Client", loc.Query().Get("client_name"))
	require.Equal(t, testScope, loc.Query().Get("scopes"))
	require.NotEmpty(t, loc.Query().Get("request_id"))
}

func TestAuthorizeMethodGuard(t *testing.T) {
	h := newHarness(t)
	for _, m := range []string{http.MethodPut, http.MethodDelete, http.MethodOptions, http.MethodPatch} {
		w := h.do(newRequest(m, "/authorize", ""))
		require.Equal(t, http.StatusMethodNotAllowed, w.Code, m)
		require.Equal(t, "GET, HEAD, POST", w.Header().Get("Allow"))
	}
}

// TestAuthorizeNoOpenRedirectForUnvettedClients: RFC 9700 §4.11.2. Anyone
// can register a phishing page as a redirect URI; an error sent there with
// no user in the loop would make the server an open redirector (audit
// finding 2). A dynamically registered client's errors before the user
// acts are shown on the error page; after the user decides, the decision
// still goes back to the client with iss.
func TestAuthorizeNoOpenRedirectForUnvettedClients(t *testing.T) {
	h := newHarness(t)
	id := h.dynamicPublicClient()
	for name, mutate := range map[string]func(url.Values){
		"bare request (the audit's probe)": func(v url.Values) {
			for k := range v {
				if k != "client_id" && k != "response_type" {
					v.Del(k)
				}
			}
		},
		"missing response_type": func(v url.Values) { v.Del("response_type") },
		"unsupported scope":     func(v url.Values) { v.Set("scope", "mcp:root") },
		"missing PKCE":          func(v url.Values) { v.Del("code_challenge") },
	} {
		t.Run(name, func(t *testing.T) {
			p := authorizeParams(id)
			mutate(p)
			w := h.authorize(&browser{}, p)
			require.Equal(t, http.StatusBadRequest, w.Code, w.Body.String())
			require.Empty(t, w.Header().Get("Location"), "never redirected")
			require.True(t, strings.HasPrefix(w.Header().Get("Content-Type"), "text/html"))
		})
	}
	t.Run("the user's denial still goes back to the client", func(t *testing.T) {
		b, p := h.startConsent(id)
		w := h.decide(b, consentForm(p, "deny"))
		require.Equal(t, http.StatusSeeOther, w.Code)
		loc, _ := url.Parse(w.Header().Get("Location"))
		require.Equal(t, "access_denied", loc.Query().Get("error"))
		require.Equal(t, testIssuer, loc.Query().Get("iss"))
	})
	t.Run("a pre-registered client's errors are redirected", func(t *testing.T) {
		p := authorizeParams(h.publicClient())
		p.Del("response_type")
		w := h.authorize(&browser{}, p)
		require.Equal(t, http.StatusFound, w.Code)
		require.Contains(t, w.Header().Get("Location"), "error=invalid_request")
	})
}

// TestErrorPageHook: Config.ErrorPage renders every browser-facing error
// (authorization, consent, device verification); machine endpoints keep
// JSON (audit finding 12).
func TestErrorPageHook(t *testing.T) {
	var shown []string
	h := newDeviceHarness(t, func(c *mcpoauth.Config) {
		c.ErrorPage = func(w http.ResponseWriter, _ *http.Request, err *mcpoauth.OAuthError) {
			shown = append(shown, err.Code)
			w.WriteHeader(err.Status)
			_, _ = w.Write([]byte("custom page"))
		}
	})
	id := h.dynamicPublicClient()
	p := authorizeParams(id)
	p.Del("code_challenge")
	for name, w := range map[string]*httptest.ResponseRecorder{
		"authorize, unknown client":  h.authorize(&browser{}, authorizeParams("nope")),
		"authorize, unvetted client": h.authorize(&browser{}, p),
		"consent, forged":            h.decide(&browser{}, url.Values{"request_id": {"x"}, "csrf_token": {"y"}, "decision": {"approve"}}),
		"device approval, no cookie": h.decideDevice("ABCD-EFGH", "approve", "alice"),
	} {
		require.Equal(t, "custom page", w.Body.String(), name)
	}
	require.Len(t, shown, 4)
	w := h.postForm("/token", url.Values{"grant_type": {"authorization_code"}})
	require.Equal(t, "invalid_client", oauthError(t, w), "machine endpoints answer JSON")
}
