package integration_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
)

// rtServe sends a request to the library's Router alone (not the harness's
// ServeMux, which cleans paths and redirects on its own).
func rtServe(h *harness, method, target string, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	w := httptest.NewRecorder()
	h.srv.Router().ServeHTTP(w, r)
	return w
}

// rtDoc decodes a JSON document response.
func rtDoc(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var doc map[string]any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &doc), w.Body.String())
	return doc
}

// rtList is a JSON array of strings as encoding/json decodes it.
func rtList(s ...string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// TestASMetadataDocument: RFC 8414 and "What real clients require": the
// document exactly, explicit values for every member whose default would
// mislead (PKCE, auth methods, grant types), no device endpoint.
func TestASMetadataDocument(t *testing.T) {
	h := newHarness(t)
	doc := rtDoc(t, rtServe(h, http.MethodGet, testIssuer+"/.well-known/oauth-authorization-server", ""))
	methods := rtList("none", "client_secret_basic", "client_secret_post", "private_key_jwt")
	require.Equal(t, map[string]any{
		"issuer":                                           testIssuer,
		"authorization_endpoint":                           testIssuer + "/authorize",
		"token_endpoint":                                   testIssuer + "/token",
		"registration_endpoint":                            testIssuer + "/register",
		"revocation_endpoint":                              testIssuer + "/revoke",
		"scopes_supported":                                 rtList(testScope, "mcp:admin", "offline_access"), // SEP-2207: the refresh grant is on
		"response_types_supported":                         rtList("code"),
		"response_modes_supported":                         rtList("query"),
		"grant_types_supported":                            rtList("authorization_code", "refresh_token"),
		"token_endpoint_auth_methods_supported":            methods,
		"revocation_endpoint_auth_methods_supported":       methods,
		"introspection_endpoint":                           testIssuer + "/introspect",
		"introspection_endpoint_auth_methods_supported":    rtList("client_secret_basic", "client_secret_post", "private_key_jwt"),
		"token_endpoint_auth_signing_alg_values_supported": rtList("RS256", "PS256", "ES256", "EdDSA"),
		"code_challenge_methods_supported":                 rtList("S256"),
		"authorization_response_iss_parameter_supported":   true,
	}, doc)
	require.NotContains(t, doc, "device_authorization_endpoint")
}

func TestASMetadataHTTP(t *testing.T) {
	h := newHarness(t)
	const path = testIssuer + "/.well-known/oauth-authorization-server"
	get := rtServe(h, http.MethodGet, path, "")
	require.Equal(t, http.StatusOK, get.Code)
	require.Equal(t, "application/json", get.Header().Get("Content-Type"))
	require.Equal(t, "*", get.Header().Get("Access-Control-Allow-Origin"))
	require.NotEmpty(t, get.Body.Bytes())

	head := rtServe(h, http.MethodHead, path, "")
	require.Equal(t, http.StatusOK, head.Code)
	require.Equal(t, "application/json", head.Header().Get("Content-Type"))
	require.Equal(t, "*", head.Header().Get("Access-Control-Allow-Origin"))
	require.Empty(t, head.Body.Bytes(), "HEAD has no body")

	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		w := rtServe(h, m, path, "")
		require.Equal(t, http.StatusMethodNotAllowed, w.Code, m)
		require.Equal(t, "GET, HEAD", w.Header().Get("Allow"), m)
	}

	r := httptest.NewRequest(http.MethodOptions, path, nil)
	r.Header.Set("Origin", "https://app.example.org")
	r.Header.Set("Access-Control-Request-Method", "GET")
	w := httptest.NewRecorder()
	h.srv.Router().ServeHTTP(w, r)
	require.Equal(t, http.StatusNoContent, w.Code)
	require.Equal(t, "*", w.Header().Get("Access-Control-Allow-Origin"))
}

// TestMetadataReturnsCopies: Metadata and ProtectedResourceMetadata are
// public; a caller changing a slice of the returned document must not change
// what the server accepts (the auth methods slice is the package-level list
// registration is validated against, shared by every server in the process).
func TestMetadataReturnsCopies(t *testing.T) {
	h := newHarness(t)
	m := h.srv.Metadata()
	prm := h.srv.ProtectedResourceMetadata()
	lists := [][]string{
		m.TokenEndpointAuthMethodsSupported, m.RevocationEndpointAuthMethodsSupported,
		m.ScopesSupported, m.GrantTypesSupported, m.ResponseTypesSupported,
		m.CodeChallengeMethodsSupported, prm.ScopesSupported, prm.AuthorizationServers,
		prm.BearerMethodsSupported, m.TokenEndpointAuthSigningAlgValuesSupported,
	}
	saved := make([][]string, len(lists))
	for i, l := range lists {
		saved[i] = append([]string(nil), l...)
	}
	// Restore through the same slices, so that a failure here does not
	// leak into other tests through shared package state.
	defer func() {
		for i, l := range lists {
			copy(l, saved[i])
		}
	}()
	for _, l := range lists {
		for j := range l {
			l[j] = "tampered"
		}
	}

	require.Equal(t, []string{"none", "client_secret_basic", "client_secret_post", "private_key_jwt"}, h.srv.Metadata().TokenEndpointAuthMethodsSupported)
	require.Equal(t, []string{testScope, "mcp:admin", "offline_access"}, h.srv.Metadata().ScopesSupported)
	require.Equal(t, []string{"authorization_code", "refresh_token"}, h.srv.Metadata().GrantTypesSupported)
	require.Equal(t, []string{"S256"}, h.srv.Metadata().CodeChallengeMethodsSupported)
	require.Equal(t, []string{testIssuer}, h.srv.ProtectedResourceMetadata().AuthorizationServers)
	require.Equal(t, []string{"header"}, h.srv.ProtectedResourceMetadata().BearerMethodsSupported)
	// Policy is unchanged: a public client still registers and is granted
	// its scope, on this server and on a new one.
	for _, srv := range []*harness{h, newHarness(t)} {
		tr := srv.tokens(srv.publicClient())
		require.Equal(t, testScope, tr.Scope)
	}
}

// rtRequireEndpoints asserts the AS metadata doc names issuer and each
// endpoint under base (RFC 8414 §2).
func rtRequireEndpoints(t *testing.T, doc map[string]any, issuer, base string) {
	t.Helper()
	require.Equal(t, issuer, doc["issuer"])
	for member, path := range map[string]string{
		"authorization_endpoint": "/authorize",
		"token_endpoint":         "/token",
		"registration_endpoint":  "/register",
		"revocation_endpoint":    "/revoke",
		"introspection_endpoint": "/introspect",
	} {
		require.Equal(t, base+path, doc[member], member)
	}
}

// TestIssuerWithPath: RFC 8414 §3.1: the well-known suffix is inserted
// before the issuer's path; the endpoints live under it.
func TestIssuerWithPath(t *testing.T) {
	const issuer = testIssuer + "/tenant1"
	h := newHarness(t, func(c *mcpoauth.Config) { c.Issuer = issuer })
	doc := rtDoc(t, rtServe(h, http.MethodGet, testIssuer+"/.well-known/oauth-authorization-server/tenant1", ""))
	rtRequireEndpoints(t, doc, issuer, issuer)

	for _, p := range []string{
		"/.well-known/oauth-authorization-server",
		"/tenant1/.well-known/oauth-authorization-server",
		"/token", "/register", "/revoke", "/introspect", "/authorize",
	} {
		require.Equal(t, http.StatusNotFound, rtServe(h, http.MethodPost, testIssuer+p, "a=b").Code, p)
	}
	// The endpoints answer under the path.
	w := rtServe(h, http.MethodPost, issuer+"/token", "grant_type=refresh_token&refresh_token=x&client_id=nope")
	require.Equal(t, "invalid_client", oauthError(t, w))
	r := httptest.NewRequest(http.MethodPost, issuer+"/register", strings.NewReader(`{"redirect_uris":["`+testRedirect+`"],"token_endpoint_auth_method":"none"}`))
	r.Header.Set("Content-Type", "application/json")
	rw := httptest.NewRecorder()
	h.srv.Router().ServeHTTP(rw, r)
	require.Equal(t, http.StatusCreated, rw.Code, rw.Body.String())
	var reg map[string]any
	require.NoError(t, json.Unmarshal(rw.Body.Bytes(), &reg))
	w = rtServe(h, http.MethodGet, issuer+"/authorize?"+authorizeParams(reg["client_id"].(string)).Encode(), "")
	require.Equal(t, http.StatusFound, w.Code, w.Body.String())
	// The PRM names the issuer with its path.
	prm := rtDoc(t, rtServe(h, http.MethodGet, testIssuer+"/.well-known/oauth-protected-resource/mcp", ""))
	require.Equal(t, rtList(issuer), prm["authorization_servers"])
}

// TestBaseURL: endpoints under BaseURL's path; the metadata stays at the
// issuer's well-known URL (the TypeScript original used baseUrl's path
// there).
func TestBaseURL(t *testing.T) {
	h := newHarness(t, func(c *mcpoauth.Config) { c.BaseURL = testIssuer + "/oauth" })
	doc := rtDoc(t, rtServe(h, http.MethodGet, testIssuer+"/.well-known/oauth-authorization-server", ""))
	rtRequireEndpoints(t, doc, testIssuer, testIssuer+"/oauth")
	require.Equal(t, http.StatusNotFound, rtServe(h, http.MethodGet, testIssuer+"/.well-known/oauth-authorization-server/oauth", "").Code)
	for _, p := range []string{"/token", "/register", "/revoke", "/introspect", "/authorize"} {
		require.Equal(t, http.StatusNotFound, rtServe(h, http.MethodPost, testIssuer+p, "a=b").Code, p)
		require.NotEqual(t, http.StatusNotFound, rtServe(h, http.MethodPost, testIssuer+"/oauth"+p, "a=b").Code, p)
	}
}

// TestProtectedResourceMetadata: RFC 9728: served at the path-inserted
// well-known URL; resource byte for byte what clients connect to.
func TestProtectedResourceMetadata(t *testing.T) {
	h := newHarness(t, func(c *mcpoauth.Config) { c.ResourceName = "Test MCP" })
	const path = testIssuer + "/.well-known/oauth-protected-resource/mcp"
	w := rtServe(h, http.MethodGet, path, "")
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	require.Equal(t, "*", w.Header().Get("Access-Control-Allow-Origin"))
	require.Equal(t, map[string]any{
		"resource":                 testResource,
		"authorization_servers":    rtList(testIssuer),
		"scopes_supported":         rtList(testScope, "mcp:admin"),
		"bearer_methods_supported": rtList("header"),
		"resource_name":            "Test MCP",
	}, rtDoc(t, w))
	require.Contains(t, w.Body.String(), `"resource":"`+testResource+`"`, "byte for byte")
	head := rtServe(h, http.MethodHead, path, "")
	require.Equal(t, http.StatusOK, head.Code)
	require.Empty(t, head.Body.Bytes())
	post := rtServe(h, http.MethodPost, path, "")
	require.Equal(t, http.StatusMethodNotAllowed, post.Code)
	require.Equal(t, "GET, HEAD", post.Header().Get("Allow"))
	require.Equal(t, http.StatusNotFound, rtServe(h, http.MethodGet, testIssuer+"/.well-known/oauth-protected-resource", "").Code)
}

// TestProtectedResourceMetadataResourceVerbatim: RFC 9728 §3.3: resource is
// identical to the identifier the client built the well-known URL from; the
// go-sdk compares with !=. A ResourceServerURL the server would rewrite
// (trailing slash, uppercase host, default port) must be refused by New or
// published as configured, never silently changed.
func TestProtectedResourceMetadataResourceVerbatim(t *testing.T) {
	for _, res := range []string{
		testIssuer + "/mcp/",
		"https://AS.example.com/mcp",
		"https://as.example.com:443/mcp",
		"HTTPS://as.example.com/mcp",
	} {
		t.Run(res, func(t *testing.T) {
			c := cfgValid(t)
			c.ResourceServerURL = res
			srv, err := mcpoauth.New(c)
			if err != nil {
				require.ErrorIs(t, err, mcpoauth.ErrInvalidConfig)
				require.Contains(t, err.Error(), "ResourceServerURL")
				return
			}
			t.Cleanup(func() { _ = srv.Close() })
			require.Equal(t, res, srv.ProtectedResourceMetadata().Resource)
		})
	}
}

// TestEndpointMethodGuards: 405 with Allow on each POST endpoint.
func TestEndpointMethodGuards(t *testing.T) {
	h := newHarness(t)
	for _, p := range []string{"/token", "/revoke", "/introspect", "/register"} {
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions} {
			w := rtServe(h, m, testIssuer+p, "")
			require.Equal(t, http.StatusMethodNotAllowed, w.Code, "%s %s", m, p)
			require.Equal(t, "POST", w.Header().Get("Allow"), "%s %s", m, p)
			if m != http.MethodHead {
				require.Equal(t, "method_not_allowed", oauthError(t, w))
			}
		}
	}
	w := rtServe(h, http.MethodDelete, testIssuer+"/authorize", "")
	require.Equal(t, "GET, HEAD, POST", w.Header().Get("Allow"))
}

// TestEndpointMethodGuardUnknownMethod: RFC 9110 §15.5.6: a 405 MUST carry
// Allow, also for a method outside chi's list (PROPFIND, a WebDAV scanner's
// favourite); and a path that does not exist is 404 whatever the method.
func TestEndpointMethodGuardUnknownMethod(t *testing.T) {
	h := newHarness(t)
	for _, p := range []string{"/token", "/revoke", "/introspect", "/register"} {
		for _, m := range []string{"PROPFIND", "FOO"} {
			w := rtServe(h, m, testIssuer+p, "")
			require.Equal(t, http.StatusMethodNotAllowed, w.Code, "%s %s", m, p)
			require.Equal(t, "POST", w.Header().Get("Allow"), "%s %s", m, p)
			require.Equal(t, "method_not_allowed", oauthError(t, w))
		}
	}
	require.Equal(t, http.StatusNotFound, rtServe(h, "PROPFIND", testIssuer+"/nope", "").Code)
}

// TestRouterNoRedirectSlashes (chi GHSA-vrw8-fxc6-2r93): no
// path is ever answered with a redirect, so no open redirect.
func TestRouterNoRedirectSlashes(t *testing.T) {
	h := newHarness(t)
	for _, target := range []string{
		testIssuer + "/token/",
		testIssuer + "/register/",
		testIssuer + "/authorize/",
		testIssuer + "//evil.com/",
		testIssuer + "//evil.com",
		testIssuer + "//evil.com/token",
		testIssuer + "/%2F%2Fevil.com/",
		testIssuer + "/\\evil.com/",
		testIssuer + "/.well-known/oauth-authorization-server/",
		testIssuer + "/.well-known/oauth-protected-resource/mcp/",
		testIssuer + "/TOKEN",
		testIssuer + "/nope",
	} {
		for _, m := range []string{http.MethodGet, http.MethodPost} {
			w := rtServe(h, m, target, "")
			require.Equal(t, http.StatusNotFound, w.Code, "%s %s", m, target)
			require.Empty(t, w.Header().Get("Location"), "%s %s", m, target)
		}
	}
}

// rtTokenFrom posts an empty token request from a peer, with optional
// X-Forwarded-For values.
func rtTokenFrom(h *harness, remoteAddr string, xff ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, testIssuer+"/token", strings.NewReader("grant_type=refresh_token"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.RemoteAddr = remoteAddr
	for _, v := range xff {
		r.Header.Add("X-Forwarded-For", v)
	}
	return h.do(r)
}

func rtRequireLimited(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	require.Equal(t, http.StatusTooManyRequests, w.Code, w.Body.String())
	ra, err := strconv.Atoi(w.Header().Get("Retry-After"))
	require.NoError(t, err, "Retry-After is delay-seconds")
	require.Positive(t, ra)
	require.Equal(t, "too_many_requests", oauthError(t, w))
}

func rtRequirePassed(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	require.NotEqual(t, http.StatusTooManyRequests, w.Code, w.Body.String())
	require.Contains(t, []int{http.StatusBadRequest, http.StatusUnauthorized}, w.Code, "reached the endpoint")
}

func rtLimitedHarness(t *testing.T, trusted ...netip.Prefix) *harness {
	return newHarness(t, func(c *mcpoauth.Config) {
		c.RateLimits = mcpoauth.RateLimits{
			Token:          mcpoauth.RateLimit{Requests: 2, Window: time.Minute},
			TrustedProxies: trusted,
		}
	})
}

// TestRateLimitThroughRouter: per-IP limits (RFC 7591 §5 asks for them on
// registration; the defaults are the TypeScript original's), keyed by the
// TCP peer.
func TestRateLimitThroughRouter(t *testing.T) {
	h := rtLimitedHarness(t)
	rtRequirePassed(t, rtTokenFrom(h, "192.0.2.1:1111"))
	rtRequirePassed(t, rtTokenFrom(h, "192.0.2.1:2222"))
	rtRequireLimited(t, rtTokenFrom(h, "192.0.2.1:3333"))
	rtRequirePassed(t, rtTokenFrom(h, "192.0.2.2:1111")) // another client has its own budget
	// Other endpoints have their own limits.
	w := rvRevoke(h, "nope", "x")
	require.Equal(t, "invalid_client", oauthError(t, w))
	// The fake clock refills the bucket: 2 per minute is one per 30s.
	h.clock.Advance(30 * time.Second)
	rtRequirePassed(t, rtTokenFrom(h, "192.0.2.1:4444"))
	rtRequireLimited(t, rtTokenFrom(h, "192.0.2.1:5555"))
}

// TestRateLimitMethodGuardFirst: a 405 costs nothing (the guard sits
// outside the limiter).
func TestRateLimitMethodGuardFirst(t *testing.T) {
	h := rtLimitedHarness(t)
	for range 5 {
		r := httptest.NewRequest(http.MethodGet, testIssuer+"/token", nil)
		r.RemoteAddr = "192.0.2.1:1111"
		require.Equal(t, http.StatusMethodNotAllowed, h.do(r).Code)
	}
	rtRequirePassed(t, rtTokenFrom(h, "192.0.2.1:1111"))
}

// TestRateLimitIgnoresSpoofedXFF (chi RealIP advisories): an
// untrusted peer cannot pick its key with X-Forwarded-For.
func TestRateLimitIgnoresSpoofedXFF(t *testing.T) {
	h := rtLimitedHarness(t)
	rtRequirePassed(t, rtTokenFrom(h, "192.0.2.1:1111", "198.51.100.1"))
	rtRequirePassed(t, rtTokenFrom(h, "192.0.2.1:1111", "198.51.100.2"))
	rtRequireLimited(t, rtTokenFrom(h, "192.0.2.1:1111", "198.51.100.3"))
	rtRequireLimited(t, rtTokenFrom(h, "192.0.2.1:1111", "198.51.100.4, 198.51.100.5"))
	rtRequireLimited(t, rtTokenFrom(h, "192.0.2.1:1111", "198.51.100.6", "198.51.100.7"))
}

// TestRateLimitTrustedProxies: behind a trusted proxy, the address the proxy
// appended identifies the client; what the client wrote to the left does not.
func TestRateLimitTrustedProxies(t *testing.T) {
	h := rtLimitedHarness(t, netip.MustParsePrefix("10.0.0.0/8"))
	const proxy = "10.0.0.1:40000"
	rtRequirePassed(t, rtTokenFrom(h, proxy, "198.51.100.1"))
	rtRequirePassed(t, rtTokenFrom(h, proxy, "198.51.100.1"))
	rtRequireLimited(t, rtTokenFrom(h, proxy, "198.51.100.1"))
	rtRequirePassed(t, rtTokenFrom(h, proxy, "198.51.100.2")) // a distinct client behind the proxy
	// The client prepends a fresh address; the proxy's entry still wins.
	rtRequireLimited(t, rtTokenFrom(h, proxy, "203.0.113.9, 198.51.100.1"))
	// A chain of trusted proxies is walked from the right.
	rtRequireLimited(t, rtTokenFrom(h, proxy, "198.51.100.1, 10.0.0.2"))
	rtRequirePassed(t, rtTokenFrom(h, proxy, "198.51.100.3, 10.0.0.2"))
}

// TestAuthorizeHasNoCORS: RFC 9700 §2.6: CORS MUST NOT be enabled on the
// authorization endpoint; token, register and revoke have it.
func TestAuthorizeHasNoCORS(t *testing.T) {
	h := newHarness(t)
	id := h.publicClient()
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodOptions} {
		var r *http.Request
		if m == http.MethodGet {
			r = httptest.NewRequest(m, testIssuer+"/authorize?"+authorizeParams(id).Encode(), nil)
		} else {
			r = newRequest(m, "/authorize", authorizeParams(id).Encode())
		}
		r.Header.Set("Origin", "https://evil.example.org")
		r.Header.Set("Access-Control-Request-Method", "POST")
		w := h.do(r)
		require.Empty(t, w.Header().Get("Access-Control-Allow-Origin"), m)
		require.Empty(t, w.Header().Get("Access-Control-Allow-Methods"), m)
		require.NotEqual(t, http.StatusNoContent, w.Code, m)
	}
	for _, p := range []string{"/token", "/revoke", "/introspect"} {
		r := newRequest(http.MethodPost, p, "a=b")
		r.Header.Set("Origin", "https://app.example.org")
		require.Equal(t, "*", h.do(r).Header().Get("Access-Control-Allow-Origin"), p)
	}
}

// TestBearerChallenge: RFC 6750 §3 and MCP: no credentials → 401 with
// resource_metadata and scope and no error code; a token in the query →
// 400 (MCP: tokens MUST NOT be in the query string).
func TestBearerChallenge(t *testing.T) {
	h := newHarness(t)
	w := h.do(httptest.NewRequest(http.MethodGet, testResource, nil))
	require.Equal(t, http.StatusUnauthorized, w.Code)
	require.Equal(t, `Bearer resource_metadata="https://as.example.com/.well-known/oauth-protected-resource/mcp", scope="mcp:tools"`,
		w.Header().Get("WWW-Authenticate"))
	require.NotContains(t, w.Header().Get("WWW-Authenticate"), "error=")
	require.Equal(t, mcpoauth.ProtectedResourceMetadataURL(testResource), "https://as.example.com/.well-known/oauth-protected-resource/mcp")

	tr := h.tokens(h.publicClient())
	for name, r := range map[string]*http.Request{
		"query only":        httptest.NewRequest(http.MethodGet, testResource+"?access_token="+url.QueryEscape(tr.AccessToken), nil),
		"query beside hdr":  httptest.NewRequest(http.MethodGet, testResource+"?access_token="+url.QueryEscape(tr.AccessToken), nil),
		"empty query token": httptest.NewRequest(http.MethodGet, testResource+"?access_token=", nil),
	} {
		t.Run(name, func(t *testing.T) {
			if name == "query beside hdr" {
				r.Header.Set("Authorization", "Bearer "+tr.AccessToken)
			}
			w := h.do(r)
			require.Equal(t, http.StatusBadRequest, w.Code)
			require.Equal(t, "invalid_request", oauthError(t, w))
			require.NotContains(t, w.Body.String(), tr.AccessToken)
		})
	}

	w = h.callMCP("not-a-valid-token")
	require.Equal(t, http.StatusUnauthorized, w.Code)
	require.Contains(t, w.Header().Get("WWW-Authenticate"), `error="invalid_token"`)
	require.Contains(t, w.Header().Get("WWW-Authenticate"), `resource_metadata="https://as.example.com/.well-known/oauth-protected-resource/mcp"`)
	require.Equal(t, http.StatusOK, h.callMCP(tr.AccessToken).Code)
}
