package integration_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
)

// mcpoauth.New validation: every refusal wraps ErrInvalidConfig and names the
// offending field.

// cfgValid is a valid configuration with its own memory model.
func cfgValid(t *testing.T) mcpoauth.Config {
	t.Helper()
	m := mcpoauth.NewMemoryModel(mcpoauth.MemoryModelOptions{SweepInterval: mcpoauth.NoSweep})
	t.Cleanup(func() { _ = m.Close() })
	return mcpoauth.Config{
		Model:             m,
		Issuer:            testIssuer,
		AuthorizationURL:  testConsentURL,
		ResourceServerURL: testResource,
		ScopesSupported:   []string{testScope},
		RateLimits:        mcpoauth.RateLimits{Disabled: true},
	}
}

// cfgNew builds a server from a mutated valid configuration.
func cfgNew(t *testing.T, mutate func(*mcpoauth.Config)) (*mcpoauth.OAuthServer, error) {
	t.Helper()
	c := cfgValid(t)
	mutate(&c)
	srv, err := mcpoauth.New(c)
	if err == nil {
		t.Cleanup(func() { _ = srv.Close() })
	}
	return srv, err
}

// cfgRequireInvalid asserts New refused the configuration for field.
func cfgRequireInvalid(t *testing.T, srv *mcpoauth.OAuthServer, err error, field string) {
	t.Helper()
	require.Error(t, err)
	require.Nil(t, srv)
	require.ErrorIs(t, err, mcpoauth.ErrInvalidConfig)
	require.Contains(t, err.Error(), field+":", "the error names the field")
}

// cfgRejectsEach asserts, in a subtest per name, that New refuses the
// configuration with each value set, naming field.
func cfgRejectsEach[V any](t *testing.T, field string, values map[string]V, set func(*mcpoauth.Config, V)) {
	t.Helper()
	for name, v := range values {
		t.Run(name, func(t *testing.T) {
			srv, err := cfgNew(t, func(c *mcpoauth.Config) { set(c, v) })
			cfgRequireInvalid(t, srv, err, field)
		})
	}
}

// cfgServeMetadata fetches the AS metadata document from the router.
func cfgServeMetadata(t *testing.T, srv *mcpoauth.OAuthServer, path string) map[string]any {
	t.Helper()
	w := httptest.NewRecorder()
	srv.Router().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "https://as.example.com"+path, nil))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var doc map[string]any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &doc))
	return doc
}

func TestConfigIssuerRules(t *testing.T) {
	cfgRejectsEach(t, "Issuer", map[string]string{
		"missing":                 "",
		"relative":                "/as",
		"no scheme":               "as.example.com",
		"http non-loopback":       "http://as.example.com",
		"http loopback lookalike": "http://localhost.example.com",
		"http private address":    "http://10.0.0.1",
		"ftp":                     "ftp://as.example.com",
		"query":                   "https://as.example.com?tenant=1",
		"empty query":             "https://as.example.com/?",
		"fragment":                "https://as.example.com#frag",
		"empty fragment":          "https://as.example.com/#",
		"userinfo":                "https://user:pass@as.example.com",
		"user only":               "https://user@as.example.com",
		"uppercase host":          "https://AS.example.com",
		"mixed-case host":         "https://As.Example.com/tenant1",
		"no host":                 "https:///tenant1",
		"space":                   "https://as.example.com/ten ant",
	}, func(c *mcpoauth.Config, v string) { c.Issuer = v })
}

// TestConfigIssuerAccepted: http only on loopback (development), and one
// canonical issuer string without a trailing slash everywhere (RFC 8414 §3.3,
// RFC 9207).
func TestConfigIssuerAccepted(t *testing.T) {
	for _, tc := range []struct {
		issuer, canonical, wellKnown string
	}{
		{"http://localhost", "http://localhost", "/.well-known/oauth-authorization-server"},
		{"http://localhost:3000", "http://localhost:3000", "/.well-known/oauth-authorization-server"},
		{"http://127.0.0.1:3000", "http://127.0.0.1:3000", "/.well-known/oauth-authorization-server"},
		{"http://[::1]:3000", "http://[::1]:3000", "/.well-known/oauth-authorization-server"},
		{"https://as.example.com", "https://as.example.com", "/.well-known/oauth-authorization-server"},
		{"https://as.example.com/", "https://as.example.com", "/.well-known/oauth-authorization-server"},
		{"https://as.example.com:8443/", "https://as.example.com:8443", "/.well-known/oauth-authorization-server"},
		{"https://as.example.com/tenant1/", "https://as.example.com/tenant1", "/.well-known/oauth-authorization-server/tenant1"},
	} {
		t.Run(tc.issuer, func(t *testing.T) {
			srv, err := cfgNew(t, func(c *mcpoauth.Config) { c.Issuer, c.AuthorizationURL = tc.issuer, "/consent" })
			require.NoError(t, err)
			require.Equal(t, tc.canonical, srv.Issuer())
			require.Equal(t, tc.canonical, srv.Metadata().Issuer)
			doc := cfgServeMetadata(t, srv, tc.wellKnown)
			require.Equal(t, tc.canonical, doc["issuer"])
			require.Equal(t, tc.canonical+"/token", doc["token_endpoint"])
			require.Equal(t, []string{tc.canonical}, srv.ProtectedResourceMetadata().AuthorizationServers)
		})
	}
}

// TestConfigIssuerUppercaseScheme: url.Parse lowercases the scheme, so an
// issuer written "HTTPS://..." passes the https check; the canonical issuer
// must then not keep the uppercase spelling (clients compare iss byte for
// byte, RFC 9207 §2.4): either refuse it like an uppercase host, or
// lowercase it.
func TestConfigIssuerUppercaseScheme(t *testing.T) {
	srv, err := cfgNew(t, func(c *mcpoauth.Config) { c.Issuer = "HTTPS://as.example.com" })
	if err != nil {
		cfgRequireInvalid(t, srv, err, "Issuer")
		return
	}
	require.Equal(t, testIssuer, srv.Issuer())
	require.Equal(t, testIssuer, srv.Metadata().Issuer)
	// The issuer is https, so the browser-binding cookie must be Secure
	// with the __Host- prefix (MCP Security Best Practices, consent cookies).
	info := mcpoauthClientInfo("uppercase-scheme-client", testRedirect)
	info.TokenEndpointAuthMethod = "none"
	_, err = srv.RegisterClient(context.Background(), info)
	require.NoError(t, err)
	w := httptest.NewRecorder()
	srv.Router().ServeHTTP(w, httptest.NewRequest(http.MethodGet, testIssuer+"/authorize?"+authorizeParams(info.ClientID).Encode(), nil))
	require.Equal(t, http.StatusFound, w.Code, w.Body.String())
	cookies := w.Result().Cookies()
	require.Len(t, cookies, 1)
	require.True(t, strings.HasPrefix(cookies[0].Name, "__Host-"), cookies[0].Name)
	require.True(t, cookies[0].Secure)
}

func TestConfigBaseURLRules(t *testing.T) {
	cfgRejectsEach(t, "BaseURL", map[string]string{
		"http non-loopback": "http://as.example.com/oauth",
		"query":             "https://as.example.com/oauth?x=1",
		"fragment":          "https://as.example.com/oauth#x",
		"relative":          "/oauth",
	}, func(c *mcpoauth.Config, v string) { c.BaseURL = v })
	srv, err := cfgNew(t, func(c *mcpoauth.Config) { c.BaseURL = "https://as.example.com/oauth/" })
	require.NoError(t, err)
	require.Equal(t, "https://as.example.com/oauth/token", srv.Metadata().TokenEndpoint)
}

func TestConfigAuthorizationURL(t *testing.T) {
	cfgRejectsEach(t, "AuthorizationURL", map[string]func(*mcpoauth.Config){
		"missing with the code grant": func(c *mcpoauth.Config) { c.AuthorizationURL = "" },
		"missing with default grants": func(c *mcpoauth.Config) { c.AuthorizationURL, c.GrantTypes = "", nil },
		"relative without slash":      func(c *mcpoauth.Config) { c.AuthorizationURL = "consent" },
		"protocol-relative":           func(c *mcpoauth.Config) { c.AuthorizationURL = "//evil.example.com/consent" },
		"javascript":                  func(c *mcpoauth.Config) { c.AuthorizationURL = "javascript:alert(1)" },
		"fragment":                    func(c *mcpoauth.Config) { c.AuthorizationURL = "https://as.example.com/consent#x" },
		"ftp":                         func(c *mcpoauth.Config) { c.AuthorizationURL = "ftp://as.example.com/consent" },
	}, func(c *mcpoauth.Config, mutate func(*mcpoauth.Config)) { mutate(c) })
	// Without the code grant no consent page is needed.
	srv, err := cfgNew(t, func(c *mcpoauth.Config) {
		c.AuthorizationURL = ""
		c.GrantTypes = []string{mcpoauth.GrantRefreshToken}
	})
	require.NoError(t, err)
	require.Empty(t, srv.Metadata().AuthorizationEndpoint)
}

// TestConfigRelativeAuthorizationURL: a path is resolved against the
// issuer's origin; /authorize sends the browser there.
func TestConfigRelativeAuthorizationURL(t *testing.T) {
	for _, tc := range []struct {
		issuer, authURL, want string
	}{
		{testIssuer, "/consent", testConsentURL},
		{testIssuer, "/consent?tenant=a", testConsentURL + "?tenant=a"},
		{testIssuer + "/tenant1", "/consent", testConsentURL},
	} {
		t.Run(tc.issuer+" "+tc.authURL, func(t *testing.T) {
			h := newHarness(t, func(c *mcpoauth.Config) {
				c.Issuer = tc.issuer
				c.AuthorizationURL = tc.authURL
			})
			info := mcpoauthClientInfo("relative-consent-client", testRedirect)
			info.TokenEndpointAuthMethod = "none"
			_, err := h.srv.RegisterClient(context.Background(), info)
			require.NoError(t, err)
			id := info.ClientID
			authorizePath := strings.TrimPrefix(tc.issuer, testIssuer) + "/authorize"
			r := httptest.NewRequest(http.MethodGet, testIssuer+authorizePath+"?"+authorizeParams(id).Encode(), nil)
			w := h.do(r)
			require.Equal(t, http.StatusFound, w.Code, w.Body.String())
			loc, err := url.Parse(w.Header().Get("Location"))
			require.NoError(t, err)
			want, err := url.Parse(tc.want)
			require.NoError(t, err)
			require.Equal(t, want.Scheme, loc.Scheme)
			require.Equal(t, want.Host, loc.Host)
			require.Equal(t, want.Path, loc.Path)
			require.NotEmpty(t, loc.Query().Get("request_id"))
			for k, v := range want.Query() {
				require.Equal(t, v, loc.Query()[k], "the consent URL's own query is kept")
			}
		})
	}
}

func TestConfigGrantTypes(t *testing.T) {
	cfgRejectsEach(t, "GrantTypes", map[string][]string{
		"unknown":        {"password"},
		"implicit":       {"implicit"},
		"one unknown":    {mcpoauth.GrantAuthorizationCode, "urn:example:custom"},
		"empty":          {},
		"empty string":   {""},
		"case variant":   {"Authorization_Code"},
		"trailing space": {"refresh_token "},
	}, func(c *mcpoauth.Config, v []string) { c.GrantTypes = v })
	srv, err := cfgNew(t, func(c *mcpoauth.Config) { c.GrantTypes = nil })
	require.NoError(t, err)
	require.Equal(t, []string{"authorization_code", "refresh_token"}, srv.Metadata().GrantTypesSupported, "nil means the defaults")
}

// registrarlessModel has exactly the Model methods: embedding the interface
// (not the MemoryModel) hides RegisterClient.
type registrarlessModel struct{ mcpoauth.Model }

func TestConfigDynamicClientRegistrationNeedsRegistrar(t *testing.T) {
	m := mcpoauth.NewMemoryModel(mcpoauth.MemoryModelOptions{SweepInterval: mcpoauth.NoSweep})
	t.Cleanup(func() { _ = m.Close() })
	model := registrarlessModel{Model: m}
	_, ok := any(model).(mcpoauth.ClientRegistrar)
	require.False(t, ok, "test premise: the model cannot register clients")

	srv, err := cfgNew(t, func(c *mcpoauth.Config) { c.Model = model })
	cfgRequireInvalid(t, srv, err, "DisableDynamicClientRegistration")

	srv, err = cfgNew(t, func(c *mcpoauth.Config) {
		c.Model = model
		c.DisableDynamicClientRegistration = true
	})
	require.NoError(t, err)
	require.Empty(t, srv.Metadata().RegistrationEndpoint)
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, testIssuer+"/register", strings.NewReader(`{"redirect_uris":["`+testRedirect+`"]}`))
	r.Header.Set("Content-Type", "application/json")
	srv.Router().ServeHTTP(w, r)
	require.Equal(t, http.StatusNotFound, w.Code)
	_, err = srv.RegisterClient(context.Background(), mcpoauthClientInfo("static", testRedirect))
	require.Error(t, err, "static registration needs a ClientRegistrar too")
}

// registerOnlyModel can register clients but neither update nor delete
// them: a Model written before ClientRegistrar had those methods.
type registerOnlyModel struct{ mcpoauth.Model }

func (registerOnlyModel) RegisterClient(context.Context, *mcpoauth.Client) error { return nil }

// TestConfigNamesMissingClientRegistrarMethods: a Model that lacks some of
// ClientRegistrar's methods is told which.
func TestConfigNamesMissingClientRegistrarMethods(t *testing.T) {
	m := mcpoauth.NewMemoryModel(mcpoauth.MemoryModelOptions{SweepInterval: mcpoauth.NoSweep})
	t.Cleanup(func() { _ = m.Close() })
	srv, err := cfgNew(t, func(c *mcpoauth.Config) { c.Model = registerOnlyModel{Model: m} })
	cfgRequireInvalid(t, srv, err, "DisableDynamicClientRegistration")
	require.Contains(t, err.Error(), "missing DeleteClient, UpdateClient")
}

func TestConfigLifetimes(t *testing.T) {
	fields := map[string]func(*mcpoauth.Config, time.Duration){
		"AccessTokenLifetime":       func(c *mcpoauth.Config, d time.Duration) { c.AccessTokenLifetime = d },
		"RefreshTokenLifetime":      func(c *mcpoauth.Config, d time.Duration) { c.RefreshTokenLifetime = d },
		"GrantLifetime":             func(c *mcpoauth.Config, d time.Duration) { c.GrantLifetime = d },
		"AuthorizationCodeLifetime": func(c *mcpoauth.Config, d time.Duration) { c.AuthorizationCodeLifetime = d },
		"ClientSecretLifetime":      func(c *mcpoauth.Config, d time.Duration) { c.ClientSecretLifetime = d },
	}
	for field, set := range fields {
		for _, d := range []time.Duration{time.Nanosecond, 999 * time.Millisecond, -time.Second, -time.Hour, mcpoauth.NoExpiry} {
			if field == "ClientSecretLifetime" && d == mcpoauth.NoExpiry {
				continue
			}
			t.Run(field+" "+d.String(), func(t *testing.T) {
				srv, err := cfgNew(t, func(c *mcpoauth.Config) { set(c, d) })
				cfgRequireInvalid(t, srv, err, field)
			})
		}
		t.Run(field+" 1s", func(t *testing.T) {
			_, err := cfgNew(t, func(c *mcpoauth.Config) { set(c, time.Second) })
			require.NoError(t, err)
		})
	}
	t.Run("ClientSecretLifetime NoExpiry", func(t *testing.T) {
		_, err := cfgNew(t, func(c *mcpoauth.Config) { c.ClientSecretLifetime = mcpoauth.NoExpiry })
		require.NoError(t, err)
	})
}

func TestConfigScopesSupported(t *testing.T) {
	cfgRejectsEach(t, "ScopesSupported", map[string]string{
		"empty":         "",
		"space":         "mcp tools",
		"quote":         `mcp:"tools"`,
		"backslash":     `mcp\tools`,
		"tab":           "mcp\ttools",
		"NUL":           "mcp\x00",
		"DEL":           "mcp\x7f",
		"non-ASCII":     "mcp:tööls",
		"leading space": " mcp:tools",
	}, func(c *mcpoauth.Config, v string) { c.ScopesSupported = []string{testScope, v} })
	_, err := cfgNew(t, func(c *mcpoauth.Config) {
		c.ScopesSupported = []string{"mcp:tools", "offline_access", "a!#$%&'()*+,-./:;<=>?@[]^_`{|}~"}
	})
	require.NoError(t, err)
}

func TestConfigResourceServerURL(t *testing.T) {
	cfgRejectsEach(t, "ResourceServerURL", map[string]string{
		"not a URL":  "not a url",
		"relative":   "/mcp",
		"ftp":        "ftp://as.example.com/mcp",
		"fragment":   "https://as.example.com/mcp#frag",
		"empty frag": "https://as.example.com/mcp#",
		"userinfo":   "https://user@as.example.com/mcp",
		"no host":    "https:///mcp",
		"urn":        "urn:example:mcp",
	}, func(c *mcpoauth.Config, v string) { c.ResourceServerURL = v })
}

func TestConfigRateLimits(t *testing.T) {
	fields := map[string]func(*mcpoauth.RateLimits, mcpoauth.RateLimit){
		"RateLimits.Authorize":    func(r *mcpoauth.RateLimits, l mcpoauth.RateLimit) { r.Authorize = l },
		"RateLimits.Authenticate": func(r *mcpoauth.RateLimits, l mcpoauth.RateLimit) { r.Authenticate = l },
		"RateLimits.Token":        func(r *mcpoauth.RateLimits, l mcpoauth.RateLimit) { r.Token = l },
		"RateLimits.Register":     func(r *mcpoauth.RateLimits, l mcpoauth.RateLimit) { r.Register = l },
		"RateLimits.Revoke":       func(r *mcpoauth.RateLimits, l mcpoauth.RateLimit) { r.Revoke = l },
	}
	for field, set := range fields {
		for _, l := range []mcpoauth.RateLimit{
			{Requests: 0, Window: time.Minute},
			{Requests: -1, Window: time.Minute},
			{Requests: 10, Window: 0},
			{Requests: 10, Window: -time.Second},
			{Requests: -5, Window: -time.Second},
		} {
			t.Run(fmt.Sprintf("%s %d per %v", field, l.Requests, l.Window), func(t *testing.T) {
				srv, err := cfgNew(t, func(c *mcpoauth.Config) {
					c.RateLimits = mcpoauth.RateLimits{}
					set(&c.RateLimits, l)
				})
				cfgRequireInvalid(t, srv, err, field)
			})
		}
	}
	_, err := cfgNew(t, func(c *mcpoauth.Config) {
		c.RateLimits = mcpoauth.RateLimits{
			Token:          mcpoauth.RateLimit{Requests: 1, Window: time.Second},
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		}
	})
	require.NoError(t, err)
}

// TestConfigDefaultLifetimes: the documented defaults are applied: access
// tokens 1 hour (expires_in 3600), codes 5 minutes, refresh tokens 14 days,
// client secrets 90 days.
func TestConfigDefaultLifetimes(t *testing.T) {
	t.Run("access token", func(t *testing.T) {
		h := newHarness(t)
		tr := h.tokens(h.publicClient())
		require.Equal(t, int64(3600), tr.ExpiresIn)
		require.Equal(t, "Bearer", tr.TokenType)
		h.clock.Advance(time.Hour - time.Second)
		require.Equal(t, http.StatusOK, h.callMCP(tr.AccessToken).Code)
		h.clock.Advance(time.Second)
		require.Equal(t, http.StatusUnauthorized, h.callMCP(tr.AccessToken).Code)
	})
	t.Run("configured access token", func(t *testing.T) {
		h := newHarness(t, func(c *mcpoauth.Config) { c.AccessTokenLifetime = 90 * time.Second })
		require.Equal(t, int64(90), h.tokens(h.publicClient()).ExpiresIn)
	})
	t.Run("authorization code", func(t *testing.T) {
		h := newHarness(t)
		id := h.publicClient()
		code := h.code(id)
		h.clock.Advance(5 * time.Minute)
		w := h.postForm("/token", exchangeForm(id, code))
		require.Equal(t, http.StatusBadRequest, w.Code)
		require.Equal(t, "invalid_grant", oauthError(t, w))
		code = h.code(id)
		h.clock.Advance(5*time.Minute - time.Second)
		require.Equal(t, http.StatusOK, h.postForm("/token", exchangeForm(id, code)).Code)
	})
	t.Run("refresh token", func(t *testing.T) {
		h := newHarness(t)
		id := h.publicClient()
		early, late := h.tokens(id), h.tokens(id)
		h.clock.Advance(14*24*time.Hour - time.Second)
		require.Equal(t, http.StatusOK, rvRefresh(h, id, early.RefreshToken).Code)
		h.clock.Advance(time.Second)
		w := rvRefresh(h, id, late.RefreshToken)
		require.Equal(t, http.StatusBadRequest, w.Code)
		require.Equal(t, "invalid_grant", oauthError(t, w))
	})
	t.Run("client secret", func(t *testing.T) {
		h := newHarness(t)
		out := h.registerClient(map[string]any{"redirect_uris": []string{testRedirect}})
		require.Equal(t, out["client_id_issued_at"].(float64)+90*24*3600, out["client_secret_expires_at"])
	})
}

// TestConfigKeepsItsOwnSlices: New copies the slices it keeps, so a caller
// reusing or changing its Config afterwards does not silently change the
// server's policy (which scopes it grants) or its metadata.
func TestConfigKeepsItsOwnSlices(t *testing.T) {
	scopes := []string{testScope, "mcp:admin"}
	grants := []string{mcpoauth.GrantAuthorizationCode, mcpoauth.GrantRefreshToken}
	h := newHarness(t, func(c *mcpoauth.Config) {
		c.ScopesSupported = scopes
		c.GrantTypes = grants
	})
	scopes[1] = "mcp:root"
	grants[1] = "authorization_code"
	require.Equal(t, []string{testScope, "mcp:admin", "offline_access"}, h.srv.Metadata().ScopesSupported)
	require.Equal(t, []string{"authorization_code", "refresh_token"}, h.srv.Metadata().GrantTypesSupported)
	p := authorizeParams(h.publicClient())
	p.Set("scope", "mcp:root")
	w := h.authorize(&browser{}, p)
	require.Contains(t, w.Header().Get("Location"), "error=invalid_scope", "mcp:root was never configured")
}

func TestConfigErrorsAreDistinct(t *testing.T) {
	_, err := mcpoauth.New(mcpoauth.Config{})
	require.ErrorIs(t, err, mcpoauth.ErrInvalidConfig)
	require.Contains(t, err.Error(), "Issuer")
	require.False(t, errors.Is(err, mcpoauth.ErrNotFound))
}

// TestConfigPagesOnTheEndpointsHost: the consent and device pages must be
// on the host where /authorize sets the browser-binding cookie (BaseURL's,
// else the issuer's): on any other host the cookie is never seen and every
// decision fails (audit finding 8). Ports do not matter: cookies ignore
// them.
func TestConfigPagesOnTheEndpointsHost(t *testing.T) {
	for name, tc := range map[string]struct {
		mutate func(*mcpoauth.Config)
		field  string // "" means accepted
	}{
		"consent page on another host": {func(c *mcpoauth.Config) { c.AuthorizationURL = "https://login.example.com/consent" }, "AuthorizationURL"},
		"device page on another host": {func(c *mcpoauth.Config) {
			withAllGrants(c)
			c.DeviceAuthorizationURL = "https://tv.example.com/activate"
		}, "DeviceAuthorizationURL"},
		"consent page on the issuer while BaseURL is elsewhere": {func(c *mcpoauth.Config) { c.BaseURL = "https://oauth.example.com" }, "AuthorizationURL"},
		"consent page on BaseURL's host": {func(c *mcpoauth.Config) {
			c.BaseURL, c.AuthorizationURL = "https://oauth.example.com/x", "https://oauth.example.com/consent"
		}, ""},
		"consent page on the issuer's host, another port": {func(c *mcpoauth.Config) { c.AuthorizationURL = "https://as.example.com:8443/consent" }, ""},
		"host case does not matter":                       {func(c *mcpoauth.Config) { c.AuthorizationURL = "https://AS.example.com/consent" }, ""},
	} {
		t.Run(name, func(t *testing.T) {
			srv, err := cfgNew(t, tc.mutate)
			if tc.field == "" {
				require.NoError(t, err)
				return
			}
			cfgRequireInvalid(t, srv, err, tc.field)
			require.Contains(t, err.Error(), "cookie", "the error says why")
		})
	}
}

// TestConfigScopeMisconfigurationFailsEarly: audit finding 11. A scope
// RequireBearerAuth requires but the server never grants panics at
// construction; an empty ScopesSupported is warned about at New; and a
// request without scope when there is no default is invalid_scope saying
// what to configure, not a token with no scope that every call refuses.
func TestConfigScopeMisconfigurationFailsEarly(t *testing.T) {
	t.Run("RequireBearerAuth with a scope outside ScopesSupported", func(t *testing.T) {
		srv, err := cfgNew(t, func(*mcpoauth.Config) {})
		require.NoError(t, err)
		require.PanicsWithValue(t, `mcpoauth: RequireBearerAuth: scope "mcp:tool" is not in Config.ScopesSupported ["mcp:tools"], so no token can hold it`,
			func() { srv.RequireBearerAuth("mcp:tool") })
		require.NotPanics(t, func() { srv.RequireBearerAuth(testScope) })
	})
	t.Run("New warns when ScopesSupported is empty", func(t *testing.T) {
		var logs bytes.Buffer
		_, err := cfgNew(t, func(c *mcpoauth.Config) {
			c.ScopesSupported = nil
			c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		})
		require.NoError(t, err)
		require.Contains(t, logs.String(), "level=WARN")
		require.Contains(t, logs.String(), "ScopesSupported is empty")
		logs.Reset()
		_, err = cfgNew(t, func(c *mcpoauth.Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
		require.NoError(t, err)
		require.NotContains(t, logs.String(), "ScopesSupported")
	})
	t.Run("no scope requested and no default: invalid_scope", func(t *testing.T) {
		h := newHarness(t, func(c *mcpoauth.Config) { c.ScopesSupported = nil })
		p := authorizeParams(h.publicClient())
		p.Del("scope")
		w := h.authorize(&browser{}, p)
		require.Equal(t, http.StatusFound, w.Code)
		loc, err := url.Parse(w.Header().Get("Location"))
		require.NoError(t, err)
		require.Equal(t, "invalid_scope", loc.Query().Get("error"))
		require.Contains(t, loc.Query().Get("error_description"), "ScopesSupported")
		// A client that registered a scope has a default.
		out := h.preRegisterJSON(map[string]any{"redirect_uris": []string{testRedirect}, "token_endpoint_auth_method": "none", "scope": "files:read"})
		p = authorizeParams(out["client_id"].(string))
		p.Del("scope")
		require.Equal(t, []string{"files:read"}, h.consent(p).Scopes)
	})
}
