package integration_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/internal/cimd"
	"github.com/mcpoauth/mcpoauth/internal/cimd/cimdtest"
)

// The client ID metadata document of the tests, served by a loopback TLS
// fixture under a public-looking name.
const (
	cimdClientID = "https://app.example.com/oauth/client.json"
	cimdPath     = "/oauth/client.json"
)

// cimdFixture is a loopback TLS server that serves client ID metadata
// documents by path and counts fetches. Servers reach it through the
// test-only transport override (fetchFrom), whatever the URL's host;
// its certificate is httptest's, verified as example.com.
type cimdFixture struct {
	*httptest.Server
	mu   sync.Mutex
	docs map[string]cimdResponse
	hits map[string]int
}

// cimdResponse is what the fixture answers for a path.
type cimdResponse struct {
	status       int
	contentType  string
	cacheControl string
	location     string
	body         string
}

func newCIMDFixture(t *testing.T) *cimdFixture {
	t.Helper()
	f := &cimdFixture{docs: map[string]cimdResponse{}, hits: map[string]int{}}
	f.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.hits[r.URL.Path]++
		d, ok := f.docs[r.URL.Path]
		f.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		if d.location != "" {
			w.Header().Set("Location", d.location)
		}
		if d.cacheControl != "" {
			w.Header().Set("Cache-Control", d.cacheControl)
		}
		w.Header().Set("Content-Type", d.contentType)
		w.WriteHeader(d.status)
		_, _ = w.Write([]byte(d.body))
	}))
	t.Cleanup(f.Close)
	return f
}

// serve answers path with r.
func (f *cimdFixture) serve(path string, r cimdResponse) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if r.contentType == "" {
		r.contentType = "application/json"
	}
	f.docs[path] = r
}

// serveDoc serves a document for the client_id https://app.example.com+path
// with the members of extra changed (nil deletes one).
func (f *cimdFixture) serveDoc(t *testing.T, path string, extra map[string]any) {
	t.Helper()
	f.serve(path, cimdResponse{body: cimdDoc(t, "https://app.example.com"+path, extra)})
}

func (f *cimdFixture) hitCount(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[path]
}

// transport reaches the fixture for every URL.
func (f *cimdFixture) transport() http.RoundTripper { return cimdtest.Transport(f.Server) }

// fetchFrom makes every server built until the test ends fetch client ID
// metadata documents from f instead of through the guarded transport. The
// hook is global, so a test that uses it must not run in parallel.
func fetchFrom(t *testing.T, f *cimdFixture) {
	t.Helper()
	t.Cleanup(cimd.SetTestTransport(f.transport()))
}

// withCIMD enables client ID metadata documents, fetched from f.
func withCIMD(t *testing.T, f *cimdFixture, mutate ...func(*mcpoauth.CIMDConfig)) func(*mcpoauth.Config) {
	t.Helper()
	fetchFrom(t, f)
	return func(c *mcpoauth.Config) {
		c.ClientIDMetadataDocuments = mcpoauth.CIMDConfig{Enabled: true}
		for _, m := range mutate {
			m(&c.ClientIDMetadataDocuments)
		}
	}
}

// cimdDoc is a valid document for clientID, redirecting to testRedirect,
// with the members of extra changed (nil deletes one).
func cimdDoc(t *testing.T, clientID string, extra map[string]any) string {
	t.Helper()
	return string(cimdtest.Document(t, map[string]any{
		"client_id":     clientID,
		"client_name":   "Example App",
		"client_uri":    "https://app.example.com",
		"redirect_uris": []string{testRedirect},
	}, extra))
}

// newCIMDHarness is a harness with documents enabled and one valid document
// served for cimdClientID.
func newCIMDHarness(t *testing.T, mutate ...func(*mcpoauth.Config)) (*harness, *cimdFixture) {
	t.Helper()
	f := newCIMDFixture(t)
	f.serveDoc(t, cimdPath, nil)
	return newHarness(t, append([]func(*mcpoauth.Config){withCIMD(t, f)}, mutate...)...), f
}

// requireShownError checks an /authorize answer is an error shown to the
// browser, never a redirect, with the given code.
func requireShownError(t *testing.T, w *httptest.ResponseRecorder, code string) {
	t.Helper()
	require.Equal(t, http.StatusBadRequest, w.Code, w.Body.String())
	require.Empty(t, w.Header().Get("Location"), "never redirected")
	require.Equal(t, code, oauthError(t, w))
}

// TestCIMDMetadata: draft §6: the server metadata advertises support when
// documents are enabled, and only then.
func TestCIMDMetadata(t *testing.T) {
	h, _ := newCIMDHarness(t)
	require.Equal(t, true, rtDoc(t, rtServe(h, http.MethodGet, testIssuer+"/.well-known/oauth-authorization-server", ""))["client_id_metadata_document_supported"])
	require.True(t, h.srv.Metadata().ClientIDMetadataDocumentSupported)

	off := newHarness(t)
	_, ok := rtDoc(t, rtServe(off, http.MethodGet, testIssuer+"/.well-known/oauth-authorization-server", ""))["client_id_metadata_document_supported"]
	require.False(t, ok)
}

// TestCIMDDisabledByDefault: without the option a URL client_id is an
// unknown client, and nothing is fetched.
func TestCIMDDisabledByDefault(t *testing.T) {
	f := newCIMDFixture(t)
	f.serveDoc(t, cimdPath, nil)
	fetchFrom(t, f)
	h := newHarness(t)
	requireShownError(t, h.authorize(&browser{}, authorizeParams(cimdClientID)), "invalid_client")
	require.Zero(t, f.hitCount(cimdPath))
}

// TestCIMDAuthorizationCodeFlow: a client known only by its document runs
// the whole flow through the router: the consent page shows the client_id
// host (draft §8.5), the code redeems for a public client although the
// document lists no grant_types (the TypeScript original could not redeem
// such a code), and the token names the URL as its client.
func TestCIMDAuthorizationCodeFlow(t *testing.T) {
	h, f := newCIMDHarness(t)
	b := &browser{}
	p := h.pending(b, h.authorize(b, authorizeParams(cimdClientID)))
	require.Equal(t, cimdClientID, p.ClientID)
	require.Equal(t, "app.example.com", p.ClientIDHost)
	require.Equal(t, "Example App", p.ClientName)
	require.Equal(t, "client.example.com", p.RedirectHost)
	loc := h.approvePending(b, p, "alice")

	tw := h.postForm("/token", exchangeForm(cimdClientID, loc.Query().Get("code")))
	require.Equal(t, http.StatusOK, tw.Code, tw.Body.String())
	tr := decodeTokens(t, tw)
	require.Empty(t, tr.RefreshToken, "the document did not list refresh_token")
	mcp := h.callMCP(tr.AccessToken)
	require.Equal(t, http.StatusOK, mcp.Code, mcp.Body.String())
	require.Contains(t, mcp.Body.String(), `"client":"`+cimdClientID+`"`)
	require.Equal(t, 1, f.hitCount(cimdPath), "one fetch, then the cache")
	require.Zero(t, h.model.Stats().Clients, "nothing is registered")
	c, err := h.srv.Client(context.Background(), cimdClientID)
	require.NoError(t, err, "OAuthServer.Client resolves a document client")
	require.Equal(t, "Example App", c.Metadata.ClientName)
	require.Equal(t, 1, f.hitCount(cimdPath), "from the cache")

	// A client that is not public gets nothing: a document client has no
	// secret to present.
	form := exchangeForm(cimdClientID, h.code(cimdClientID))
	form.Set("client_secret", "guess")
	require.Equal(t, "invalid_client", oauthError(t, h.postForm("/token", form)))
	w401 := h.postForm("/token", exchangeForm("", "x"), cimdClientID, "guess")
	require.Equal(t, http.StatusUnauthorized, w401.Code)
}

// TestCIMDRefreshAndRevoke: the document's grant_types decide: with
// refresh_token listed, the client refreshes and revokes as a public
// client.
func TestCIMDRefreshAndRevoke(t *testing.T) {
	h, f := newCIMDHarness(t)
	f.serveDoc(t, cimdPath, map[string]any{"grant_types": []string{"authorization_code", "refresh_token"}})
	tr := h.tokens(cimdClientID)
	require.NotEmpty(t, tr.RefreshToken)
	w := h.postForm("/token", refreshForm(cimdClientID, tr.RefreshToken))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	next := decodeTokens(t, w)
	rvRequireRevokeOK(t, rvRevoke(h, cimdClientID, next.RefreshToken))
	require.Equal(t, http.StatusUnauthorized, h.callMCP(next.AccessToken).Code)
}

// TestCIMDRedirectURIs: draft §4.2 and RFC 9700 §4.1.3: the requested
// redirect URI must match one of the document's exactly. The one
// exception this server keeps for every client is RFC 8252 §7.3's: the
// port of a loopback redirect URI may vary (RFC 9700 §2.1 keeps it too;
// native MCP clients listen on an ephemeral port). Nothing else varies.
func TestCIMDRedirectURIs(t *testing.T) {
	h, f := newCIMDHarness(t)
	f.serveDoc(t, cimdPath, map[string]any{"redirect_uris": []string{testRedirect, "http://127.0.0.1/callback"}})
	for _, ok := range []string{testRedirect, "http://127.0.0.1/callback", "http://127.0.0.1:49152/callback"} {
		params := authorizeParams(cimdClientID)
		params.Set("redirect_uri", ok)
		w := h.authorize(&browser{}, params)
		require.Equal(t, http.StatusFound, w.Code, "%s: %s", ok, w.Body.String())
		require.True(t, strings.HasPrefix(w.Header().Get("Location"), testConsentURL), ok)
	}
	before := h.model.Stats()
	for _, bad := range []string{
		"https://client.example.com/cb/",
		"https://client.example.com/CB",
		"https://CLIENT.example.com/cb",
		"https://client.example.com/cb?x=1",
		"https://client.example.com/cb#",
		"https://client.example.com:443/cb",
		"http://client.example.com/cb",
		"https://evil.example.com/cb",
		"https://client.example.com.evil.com/cb",
		"https://client.example.com@evil.com/cb",
		"http://127.0.0.1:49152/callback?x=1",
		"http://127.0.0.1:49152/callback/",
		"http://localhost:49152/callback",
		"http://[::1]:49152/callback",
	} {
		params := authorizeParams(cimdClientID)
		params.Set("redirect_uri", bad)
		w := h.authorize(&browser{}, params)
		require.Equal(t, http.StatusBadRequest, w.Code, bad)
		require.Empty(t, w.Header().Get("Location"), bad)
	}
	require.Equal(t, before, h.model.Stats(), "no pending request was stored")

	// Several registered: the request must name one.
	requireShownError(t, h.authorize(&browser{}, withParam(authorizeParams(cimdClientID), "redirect_uri", "")), "invalid_request")
}

// TestCIMDRefusesUnsafeClientIDs: draft §3: URL client_ids that break the
// rules are refused before anything is fetched, and shown, never
// redirected.
func TestCIMDRefusesUnsafeClientIDs(t *testing.T) {
	h, f := newCIMDHarness(t)
	for name, id := range map[string]string{
		"no path":         "https://app.example.com",
		"root path":       "https://app.example.com/",
		"dot segment":     "https://app.example.com/oauth/../oauth/client.json",
		"encoded dot":     "https://app.example.com/oauth/%2e%2e/oauth/client.json",
		"fragment":        "https://app.example.com/oauth/client.json#x",
		"userinfo":        "https://user@app.example.com/oauth/client.json",
		"query":           "https://app.example.com/oauth/client.json?x=1",
		"ip literal":      "https://127.0.0.1/oauth/client.json",
		"metadata ip":     "https://169.254.169.254/latest/meta-data",
		"ipv6 literal":    "https://[::1]/oauth/client.json",
		"localhost":       "https://localhost/oauth/client.json",
		"single label":    "https://intranet/oauth/client.json",
		"uppercase":       "HTTPS://app.example.com/oauth/client.json",
		"uppercase host":  "https://APP.example.com/oauth/client.json",
		"backslash":       "https://app.example.com\\@evil.com/oauth/client.json",
		"encoded slash":   "https://app.example.com/oauth%2Fclient.json",
		"internal domain": "https://metadata.google.internal/computeMetadata/v1/",
	} {
		t.Run(name, func(t *testing.T) {
			w := h.authorize(&browser{}, authorizeParams(id))
			requireShownError(t, w, "invalid_client")
			require.NotContains(t, w.Body.String(), id, "the description never echoes the client_id")
		})
	}
	// http is not a document URL: it is looked up as an ordinary client.
	requireShownError(t, h.authorize(&browser{}, authorizeParams("http://app.example.com/oauth/client.json")), "invalid_client")
	f.mu.Lock()
	defer f.mu.Unlock()
	require.Equal(t, map[string]int{}, f.hits, "nothing was fetched")
}

// TestCIMDRefusesUnsafeDocuments: draft §4, §4.1 and the registration
// rules: every unusable document is refused at /authorize (shown, never
// redirected) and at /token, and is not cached.
func TestCIMDRefusesUnsafeDocuments(t *testing.T) {
	for name, extra := range map[string]map[string]any{
		"client_id differs":          {"client_id": "https://other.example.com/oauth/client.json"},
		"client_id missing":          {"client_id": nil},
		"client_secret":              {"client_secret": "0123456789abcdef0123456789abcdef"},
		"client_secret_expires_at":   {"client_secret_expires_at": 0},
		"client_secret_basic":        {"token_endpoint_auth_method": "client_secret_basic"},
		"client_secret_post":         {"token_endpoint_auth_method": "client_secret_post"},
		"client_secret_jwt":          {"token_endpoint_auth_method": "client_secret_jwt"},
		"private_key_jwt no keys":    {"token_endpoint_auth_method": "private_key_jwt"},
		"private_key_jwt http keys":  {"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "http://app.example.com/jwks"},
		"client_name missing":        {"client_name": nil},
		"redirect_uris missing":      {"redirect_uris": nil},
		"javascript redirect":        {"redirect_uris": []string{"javascript:alert(1)//"}},
		"data redirect":              {"redirect_uris": []string{"data:text/html,hi"}},
		"plain http redirect":        {"redirect_uris": []string{"http://client.example.com/cb"}},
		"redirect with fragment":     {"redirect_uris": []string{testRedirect + "#"}},
		"javascript logo_uri":        {"logo_uri": "javascript:alert(1)"},
		"javascript client_uri":      {"client_uri": "JavaScript:alert(1)"},
		"client_credentials only":    {"grant_types": []string{"client_credentials"}},
		"client_credentials in list": {"grant_types": []string{"authorization_code", "client_credentials"}},
		"unsupported scope":          {"scope": "admin:everything"},
		"implicit response type":     {"response_types": []string{"token"}},
		"NUL in name":                {"client_name": "Example\u0000App"},
		"control character in name":  {"client_name": "Example\nApp"},
	} {
		t.Run(name, func(t *testing.T) {
			f := newCIMDFixture(t)
			// Every grant on, so that no grant type is dropped unseen.
			h := newHarness(t, withAllGrants, withCIMD(t, f))
			f.serveDoc(t, cimdPath, extra)
			for i := 1; i <= 2; i++ {
				w := h.authorize(&browser{}, authorizeParams(cimdClientID))
				requireShownError(t, w, "invalid_client")
				require.Equal(t, i, f.hitCount(cimdPath), "an invalid document is not cached")
			}
			require.Equal(t, "invalid_client", oauthError(t, h.postForm("/token", exchangeForm(cimdClientID, "code"))))
			require.Zero(t, h.model.Stats().AuthorizationRequests)
		})
	}
}

// TestCIMDRefusesUnsafeResponses: draft §5 and §8.7: a redirect, a status
// other than 200, a body that is not JSON or is over 5 KB: refused, not
// cached.
func TestCIMDRefusesUnsafeResponses(t *testing.T) {
	for name, resp := range map[string]cimdResponse{
		"redirect":   {status: http.StatusFound, location: "/oauth/other.json"},
		"not found":  {status: http.StatusNotFound},
		"created":    {status: http.StatusCreated},
		"html":       {contentType: "text/html"},
		"too large":  {},
		"not JSON":   {body: "client_id=" + cimdClientID},
		"empty body": {body: ""},
	} {
		t.Run(name, func(t *testing.T) {
			f := newCIMDFixture(t)
			h := newHarness(t, withCIMD(t, f))
			if resp.body == "" && name != "empty body" {
				pad := ""
				if name == "too large" {
					pad = strings.Repeat("x", 5<<10)
				}
				resp.body = cimdDoc(t, cimdClientID, map[string]any{"padding": pad})
			}
			f.serve(cimdPath, resp)
			f.serveDoc(t, "/oauth/other.json", map[string]any{"client_id": cimdClientID})
			for i := 1; i <= 2; i++ {
				requireShownError(t, h.authorize(&browser{}, authorizeParams(cimdClientID)), "invalid_client")
				require.Equal(t, i, f.hitCount(cimdPath))
			}
			require.Zero(t, f.hitCount("/oauth/other.json"), "redirects are not followed")
		})
	}
}

// TestCIMDAllowClientID: draft §8.9: the application's domain policy is
// asked before any fetch; a refusal is invalid_client, and the policy's
// reason reaches ErrorHandler.
func TestCIMDAllowClientID(t *testing.T) {
	errDenied := errors.New("domain not on the allowlist")
	var asked []string
	var mu sync.Mutex
	allow := func(c *mcpoauth.CIMDConfig) {
		c.AllowClientID = func(u *url.URL) error {
			mu.Lock()
			defer mu.Unlock()
			asked = append(asked, u.Host)
			if u.Hostname() == "app.example.com" || strings.HasSuffix(u.Hostname(), ".trusted.example") {
				return nil
			}
			return errDenied
		}
	}
	f := newCIMDFixture(t)
	f.serveDoc(t, cimdPath, nil)
	h := newHarness(t, withCIMD(t, f, allow))
	f.serve("/evil.json", cimdResponse{body: cimdDoc(t, "https://evil.example.net/evil.json", nil)})
	w := h.authorize(&browser{}, authorizeParams("https://evil.example.net/evil.json"))
	requireShownError(t, w, "invalid_client")
	require.Contains(t, w.Body.String(), "not allowed")
	require.Zero(t, f.hitCount("/evil.json"))
	h.mu.Lock()
	require.ErrorIs(t, h.errs[len(h.errs)-1], errDenied)
	h.mu.Unlock()

	require.Equal(t, http.StatusFound, h.authorize(&browser{}, authorizeParams(cimdClientID)).Code)
	mu.Lock()
	require.Equal(t, []string{"evil.example.net", "app.example.com"}, asked)
	mu.Unlock()
}

// TestCIMDCacheFollowsCacheControl: the cache keeps a document for its
// max-age, within the configured bounds; a changed document takes effect
// once the cached one expires (draft §8.4), and no-store is never cached.
func TestCIMDCacheFollowsCacheControl(t *testing.T) {
	f := newCIMDFixture(t)
	h := newHarness(t, withCIMD(t, f, func(c *mcpoauth.CIMDConfig) { c.MinCacheTTL, c.MaxCacheTTL = time.Minute, time.Hour }))
	f.serve(cimdPath, cimdResponse{cacheControl: "max-age=86400", body: cimdDoc(t, cimdClientID, nil)})
	require.Equal(t, http.StatusFound, h.authorize(&browser{}, authorizeParams(cimdClientID)).Code)
	f.serve(cimdPath, cimdResponse{cacheControl: "max-age=86400", body: cimdDoc(t, cimdClientID, map[string]any{"redirect_uris": []string{"https://client.example.com/new"}})})
	h.clock.Advance(59 * time.Minute)
	require.Equal(t, http.StatusFound, h.authorize(&browser{}, authorizeParams(cimdClientID)).Code, "cached")
	require.Equal(t, 1, f.hitCount(cimdPath))
	h.clock.Advance(time.Minute) // MaxCacheTTL clamps the day to an hour
	requireShownError(t, h.authorize(&browser{}, authorizeParams(cimdClientID)), "invalid_request")
	require.Equal(t, 2, f.hitCount(cimdPath))

	f.serve(cimdPath, cimdResponse{cacheControl: "no-store", body: cimdDoc(t, cimdClientID, nil)})
	h.clock.Advance(time.Hour)
	for i := 3; i <= 4; i++ {
		require.Equal(t, http.StatusFound, h.authorize(&browser{}, authorizeParams(cimdClientID)).Code)
		require.Equal(t, i, f.hitCount(cimdPath))
	}
}

// TestCIMDDeviceFlow: a document client may use the device grant when its
// document lists it; the verification page sees the client_id host.
func TestCIMDDeviceFlow(t *testing.T) {
	f := newCIMDFixture(t)
	h := newDeviceHarness(t, withCIMD(t, f))
	f.serveDoc(t, cimdPath, map[string]any{"grant_types": []string{mcpoauth.GrantDeviceCode}})
	da := h.startDevice(cimdClientID)
	p := h.openDevicePage(&browser{}, da.UserCode)
	require.NotNil(t, p.Pending)
	require.Equal(t, "app.example.com", p.Pending.ClientIDHost)
	require.Equal(t, http.StatusSeeOther, h.decideDevice(da.UserCode, "approve", "alice").Code)
	w := h.pollDevice(cimdClientID, da.DeviceCode)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
}

// TestCIMDRegisterClientRefusesURLIDs: with documents on, a static client
// cannot take an id that would never be looked up.
func TestCIMDRegisterClientRefusesURLIDs(t *testing.T) {
	h, _ := newCIMDHarness(t)
	_, err := h.srv.RegisterClient(context.Background(), mcpoauthClientInfo(cimdClientID, testRedirect))
	require.Error(t, err)
	off := newHarness(t)
	_, err = off.srv.RegisterClient(context.Background(), mcpoauthClientInfo(cimdClientID, testRedirect))
	require.NoError(t, err, "without documents it is an ordinary id")
}

// TestCIMDConfigValidation: bad bounds are configuration errors; a
// disabled CIMDConfig is not checked.
func TestCIMDConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		field string
		c     mcpoauth.CIMDConfig
	}{
		{"CacheSize", mcpoauth.CIMDConfig{Enabled: true, CacheSize: -1}},
		{"MinCacheTTL", mcpoauth.CIMDConfig{Enabled: true, MinCacheTTL: -time.Second}},
		{"MaxCacheTTL", mcpoauth.CIMDConfig{Enabled: true, MaxCacheTTL: -time.Second}},
		{"CacheTTL", mcpoauth.CIMDConfig{Enabled: true, CacheTTL: -time.Second}},
		{"FetchTimeout", mcpoauth.CIMDConfig{Enabled: true, FetchTimeout: -time.Second}},
		{"MinCacheTTL", mcpoauth.CIMDConfig{Enabled: true, MinCacheTTL: 2 * time.Hour, MaxCacheTTL: time.Hour}},
	} {
		t.Run(tc.field, func(t *testing.T) {
			srv, err := cfgNew(t, func(cfg *mcpoauth.Config) { cfg.ClientIDMetadataDocuments = tc.c })
			cfgRequireInvalid(t, srv, err, "ClientIDMetadataDocuments."+tc.field)
		})
	}
	_, err := cfgNew(t, func(cfg *mcpoauth.Config) {
		cfg.ClientIDMetadataDocuments = mcpoauth.CIMDConfig{CacheSize: -1}
	})
	require.NoError(t, err)
}

// newCIMDLiveServer runs the library on a loopback port configured exactly
// as example/server configures it (issuer, consent page, MCP resource and
// name, scope, grants) with client ID metadata documents on, fetched from
// the fixture. The consent page answers its data as JSON, like
// newLiveServer's.
func newCIMDLiveServer(t *testing.T, f *cimdFixture) *liveServer {
	t.Helper()
	fetchFrom(t, f)
	return newLiveServer(t, func(issuer string, c *mcpoauth.Config) {
		c.ResourceName = "mcpoauth example MCP server"
		c.GrantTypes = []string{mcpoauth.GrantAuthorizationCode, mcpoauth.GrantRefreshToken,
			mcpoauth.GrantClientCredentials, mcpoauth.GrantDeviceCode}
		c.DeviceAuthorizationURL = issuer + "/activate"
		c.ClientIDMetadataDocuments = mcpoauth.CIMDConfig{Enabled: true}
	})
}

// TestIntegrationCIMD drives the authorization code flow end to end over
// loopback, as an MCP client that uses a client ID metadata document
// instead of registering (the MCP Go SDK's and conformance's auth/basic-cimd
// path): discovery shows client_id_metadata_document_supported, the client
// sends its document URL as client_id with a loopback redirect URI on an
// ephemeral port, the consent page shows the document's host and name,
// golang.org/x/oauth2 exchanges the code as a public client and refreshes,
// and the MCP endpoint sees the URL as the client.
func TestIntegrationCIMD(t *testing.T) {
	f := newCIMDFixture(t)
	f.serve(cimdPath, cimdResponse{cacheControl: "max-age=300", body: cimdDoc(t, cimdClientID, map[string]any{
		"client_name":                "CIMD Test Client",
		"redirect_uris":              []string{"http://127.0.0.1/callback", "http://localhost/callback"},
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"token_endpoint_auth_method": "none",
		"application_type":           "native",
		"logo_uri":                   "https://app.example.com/logo.png",
	})})
	ls := newCIMDLiveServer(t, f)
	ctx := context.Background()

	var meta struct {
		Issuer                            string   `json:"issuer"`
		AuthorizationEndpoint             string   `json:"authorization_endpoint"`
		TokenEndpoint                     string   `json:"token_endpoint"`
		RevocationEndpoint                string   `json:"revocation_endpoint"`
		ClientIDMetadataDocumentSupported bool     `json:"client_id_metadata_document_supported"`
		TokenEndpointAuthMethods          []string `json:"token_endpoint_auth_methods_supported"`
	}
	getJSON(t, ls.issuer+"/.well-known/oauth-authorization-server", &meta)
	require.True(t, meta.ClientIDMetadataDocumentSupported)
	require.Contains(t, meta.TokenEndpointAuthMethods, "none")

	// A native client: any port of its loopback redirect URI (RFC 8252 §7.3).
	cfg := &oauth2.Config{
		ClientID:    cimdClientID,
		Endpoint:    oauth2.Endpoint{AuthURL: meta.AuthorizationEndpoint, TokenURL: meta.TokenEndpoint, AuthStyle: oauth2.AuthStyleInParams},
		RedirectURL: "http://127.0.0.1:51234/callback",
		Scopes:      []string{testScope},
	}
	verifier := oauth2.GenerateVerifier()
	resourceOpt := oauth2.SetAuthURLParam("resource", ls.resource)
	authURL := cfg.AuthCodeURL("st4te", oauth2.S256ChallengeOption(verifier), resourceOpt)

	ua := userAgent(t)
	consent, p := openConsent(t, ua, authURL)
	require.Equal(t, "app.example.com", p.ClientIDHost)
	require.Equal(t, "CIMD Test Client", p.ClientName)
	require.Equal(t, "127.0.0.1:51234", p.RedirectHost)
	require.Equal(t, []string{testScope}, p.Scopes)
	loc := approveConsent(t, ua, consent, p)
	require.Equal(t, "127.0.0.1:51234", loc.Host)
	require.Equal(t, ls.issuer, loc.Query().Get("iss"))
	require.Equal(t, "st4te", loc.Query().Get("state"))

	tok, err := cfg.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier), resourceOpt)
	require.NoError(t, err)
	require.NotEmpty(t, tok.RefreshToken)
	status, who := ls.whoami(t, cfg.Client(ctx, tok))
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, map[string]string{"user": "alice", "client": cimdClientID}, who)

	refreshed, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	require.NoError(t, err)
	status, _ = ls.whoami(t, cfg.Client(ctx, refreshed))
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, 1, f.hitCount(cimdPath), "the document was fetched once and cached")

	// The client's registration is its document: one the server cannot
	// use is refused at the start of the next flow.
	f.serve(cimdPath, cimdResponse{body: cimdDoc(t, cimdClientID, map[string]any{"client_secret": "x"})})
	other := newCIMDLiveServer(t, f)
	resp, err := userAgent(t).Get(other.issuer + "/authorize?" + url.Values{
		"client_id": {cimdClientID}, "redirect_uri": {"http://127.0.0.1:51234/callback"}, "response_type": {"code"},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"}, "resource": {other.resource},
	}.Encode())
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Empty(t, resp.Header.Get("Location"))
}

// TestCIMDErrorsAreShownNotRedirected: RFC 9700 §4.11.2. A metadata
// document's client is vetted by nobody (its document is on a host anyone
// may own), so even after its redirect URI matched, an error found before
// the user acted is shown, never sent to that URI.
func TestCIMDErrorsAreShownNotRedirected(t *testing.T) {
	h, _ := newCIMDHarness(t)
	requireShownError(t, h.authorize(&browser{}, withParam(authorizeParams(cimdClientID), "response_type", "token")), "unsupported_response_type")
	requireShownError(t, h.authorize(&browser{}, withParam(authorizeParams(cimdClientID), "scope", "mcp:root")), "invalid_scope")
}
