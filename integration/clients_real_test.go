package integration_test

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth/internal/pkce"
)

// What the real clients post to /register, as clients-2026.md
// ("Clients") records it.
const (
	cursorRegistration = `{"client_name":"Cursor","redirect_uris":["cursor://anysphere.cursor-mcp/oauth/callback",` +
		`"https://www.cursor.com/agents/mcp/oauth/callback","http://localhost:8787/callback"],` +
		`"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"token_endpoint_auth_method":"none"}`
	vscodeRegistration = `{"client_name":"Visual Studio Code","application_type":"native","redirect_uris":["https://vscode.dev/redirect",` +
		`"http://127.0.0.1/","http://127.0.0.1:33418/"],"grant_types":["authorization_code","refresh_token"],` +
		`"response_types":["code"],"token_endpoint_auth_method":"none"}`
	claudeAIRegistration = `{"client_name":"Claude","redirect_uris":["https://claude.ai/api/mcp/auth_callback"],` +
		`"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"token_endpoint_auth_method":"none"}`
	chatGPTRegistration = `{"client_name":"ChatGPT","redirect_uris":["https://chatgpt.com/connector/oauth/g-4f6a2c9e1b"],` +
		`"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"token_endpoint_auth_method":"client_secret_post"}`
	claudeCodeRegistration = `{"client_name":"Claude Code","redirect_uris":["http://localhost:53117/callback"],` +
		`"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"token_endpoint_auth_method":"none"}`
	inspectorRegistration = `{"client_name":"MCP Inspector","redirect_uris":["http://localhost:6274/oauth/callback"],` +
		`"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"token_endpoint_auth_method":"none"}`
)

// TestRealClientRedirectURIs registers each client at /register exactly as
// that client does, then sends /authorize with the redirect URI it uses and
// expects the browser to reach the consent page. The payloads are from
// /work/shared/reference/clients-2026.md ("Clients"), which collects them
// from the clients' public issue threads and changelogs.
func TestRealClientRedirectURIs(t *testing.T) {
	for _, tc := range []struct {
		name string
		// register is the JSON body the client posts to /register.
		register string
		// use is the redirect_uri of its authorization request.
		use string
	}{
		{
			// Cursor: one DCR request with a private-use scheme (RFC 8252
			// §7.1), an https and a loopback URI; refusing any one of them
			// fails the whole registration.
			name:     "cursor registers private-use, https and loopback at once (RFC 8252 §7.1, §7.3)",
			register: cursorRegistration,
			use:      "cursor://anysphere.cursor-mcp/oauth/callback",
		},
		{
			name:     "cursor uses its https callback",
			register: cursorRegistration,
			use:      "https://www.cursor.com/agents/mcp/oauth/callback",
		},
		{
			name:     "cursor uses its loopback callback",
			register: cursorRegistration,
			use:      "http://localhost:8787/callback",
		},
		{
			// VS Code: registers http://127.0.0.1/ without a port and then
			// listens on a random one when 33418 is busy.
			name:     "vscode portless loopback used with a random port (RFC 8252 §7.3)",
			register: vscodeRegistration,
			use:      "http://127.0.0.1:51234/",
		},
		{
			name:     "vscode fixed loopback port",
			register: vscodeRegistration,
			use:      "http://127.0.0.1:33418/",
		},
		{
			// A native client may use a claimed https redirect beside its
			// loopback ones (RFC 8252 §7.2).
			name:     "vscode native client uses its https redirect (RFC 8252 §7.2)",
			register: vscodeRegistration,
			use:      "https://vscode.dev/redirect",
		},
		{
			name:     "claude.ai web callback",
			register: claudeAIRegistration,
			use:      "https://claude.ai/api/mcp/auth_callback",
		},
		{
			name: "claude.com web callback",
			register: `{"client_name":"Claude","redirect_uris":["https://claude.com/api/mcp/auth_callback"],` +
				`"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"token_endpoint_auth_method":"none"}`,
			use: "https://claude.com/api/mcp/auth_callback",
		},
		{
			// ChatGPT registers a confidential client with
			// client_secret_post and one connector callback per connector.
			name:     "chatgpt connector callback with client_secret_post",
			register: chatGPTRegistration,
			use:      "https://chatgpt.com/connector/oauth/g-4f6a2c9e1b",
		},
		{
			name: "chatgpt legacy connector callback",
			register: `{"client_name":"ChatGPT","redirect_uris":["https://chatgpt.com/connector_platform_oauth_redirect"],` +
				`"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"token_endpoint_auth_method":"client_secret_post"}`,
			use: "https://chatgpt.com/connector_platform_oauth_redirect",
		},
		{
			// Claude Code listens on a loopback port of its choosing.
			name:     "claude code localhost callback on its port (RFC 8252 §7.3)",
			register: claudeCodeRegistration,
			use:      "http://localhost:53117/callback",
		},
		{
			name:     "mcp inspector browser callback",
			register: inspectorRegistration,
			use:      "http://localhost:6274/oauth/callback",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			w := h.register(tc.register)
			require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
			var out map[string]any
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &out))
			var sent map[string]any
			require.NoError(t, json.Unmarshal([]byte(tc.register), &sent))
			require.Equal(t, sent["redirect_uris"], out["redirect_uris"], "every redirect URI is registered as sent")
			if at, ok := sent["application_type"]; ok {
				require.Equal(t, at, out["application_type"], "application_type is echoed")
			}
			clientID, _ := out["client_id"].(string)
			require.NotEmpty(t, clientID)

			params := authorizeParams(clientID)
			params.Set("redirect_uri", tc.use)
			aw := h.authorize(&browser{}, params)
			require.Equal(t, http.StatusFound, aw.Code, aw.Body.String())
			require.True(t, strings.HasPrefix(aw.Header().Get("Location"), testConsentURL+"?"), aw.Header().Get("Location"))
		})
	}
}

// TestWebClientsGetNoNativeRedirects: an application_type "web" client may
// not register a loopback or private-use redirect URI (OIDC Registration
// §2, MCP 2026-07-28: apps on the user's device register as "native"); a
// "native" one may register https beside them (RFC 8252 §7.2, VS Code); no
// application_type means no check (older clients send none).
func TestWebClientsGetNoNativeRedirects(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		name, appType string
		uris          []string
		want          int
	}{
		{"web with a loopback URI", "web", []string{"https://app.example.com/cb", "http://127.0.0.1/cb"}, http.StatusBadRequest},
		{"web with a private-use scheme", "web", []string{"cursor://anysphere.cursor-mcp/oauth/callback"}, http.StatusBadRequest},
		{"web with https only", "web", []string{"https://app.example.com/cb"}, http.StatusCreated},
		{"native with https beside loopback (VS Code)", "native", []string{"https://vscode.dev/redirect", "http://127.0.0.1/"}, http.StatusCreated},
		{"no application_type, loopback", "", []string{"http://localhost:8787/callback"}, http.StatusCreated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			meta := map[string]any{"redirect_uris": tc.uris, "token_endpoint_auth_method": "none"}
			if tc.appType != "" {
				meta["application_type"] = tc.appType
			}
			w := h.register(regJSON(t, meta))
			require.Equal(t, tc.want, w.Code, w.Body.String())
			if tc.want == http.StatusBadRequest {
				require.Equal(t, "invalid_redirect_uri", oauthError(t, w))
			}
		})
	}
}

// realClient is how one MCP client signs in, as
// /work/shared/reference/clients-2026.md ("Clients") describes it: what it
// registers, which redirect URI it listens on, what it sends to /authorize
// and /token.
type realClient struct {
	// register is the JSON body the client posts to /register; empty for a
	// client known by its metadata document (clientID).
	register string
	// clientID is the metadata document URL a client presents instead of
	// registering.
	clientID string
	// redirect is the redirect_uri it sends; it may differ from the
	// registered one in the port of a loopback URI (RFC 8252 §7.3).
	redirect string
	// origin is the page origin of a client that runs in a browser: its
	// calls to registration and token need CORS.
	origin string
	// scope is the scope it asks for; empty takes it from the 401
	// challenge, as Claude does (else from the PRM scopes_supported).
	scope string
	// noResource: the client sends no RFC 8707 resource (Claude Code 2.1).
	noResource bool
	// refresh: the client refreshes its token before its next call.
	refresh bool
}

// signIn runs c from discovery to a token accepted at /mcp, then refreshes
// if c does, and returns the client_id the server knows it by.
func (c realClient) signIn(t *testing.T, h *harness) string {
	t.Helper()
	// Discovery: the unauthenticated call's challenge names the protected
	// resource metadata and the scope (RFC 9728 §5.1, RFC 6750 §3).
	w := h.do(httptest.NewRequest(http.MethodPost, testResource, strings.NewReader(`{}`)))
	require.Equal(t, http.StatusUnauthorized, w.Code, w.Body.String())
	challenge := w.Header().Get("WWW-Authenticate")
	prmURL := challengeParam(t, challenge, "resource_metadata")
	prm := rtDoc(t, h.do(httptest.NewRequest(http.MethodGet, prmURL, nil)))
	require.Equal(t, testResource, prm["resource"], "Claude: the PRM resource equals the URL the user entered")
	require.Equal(t, []any{testIssuer}, prm["authorization_servers"])
	as := rtDoc(t, h.do(c.fromPage(httptest.NewRequest(http.MethodGet, testIssuer+"/.well-known/oauth-authorization-server", nil))))
	require.Contains(t, as["code_challenge_methods_supported"], "S256")
	scope := c.scope
	if scope == "" {
		scope = challengeParam(t, challenge, "scope")
	}

	clientID, secret := c.clientID, ""
	if c.register != "" {
		var sent map[string]any
		require.NoError(t, json.Unmarshal([]byte(c.register), &sent))
		require.Contains(t, as["token_endpoint_auth_methods_supported"], sent["token_endpoint_auth_method"])
		r := httptest.NewRequest(http.MethodPost, as["registration_endpoint"].(string), strings.NewReader(c.register))
		r.Header.Set("Content-Type", "application/json")
		w := h.do(c.fromPage(r))
		require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
		c.requireCORS(t, w)
		out := regDecode(t, w)
		// ChatGPT refuses a registration that echoes another method.
		require.Equal(t, sent["token_endpoint_auth_method"], out["token_endpoint_auth_method"])
		require.Equal(t, sent["redirect_uris"], out["redirect_uris"])
		clientID, _ = out["client_id"].(string)
		secret, _ = out["client_secret"].(string)
		require.Equal(t, sent["token_endpoint_auth_method"] != "none", secret != "", "a secret exactly for a confidential client")
	}

	// The authorization request, with a fresh PKCE pair and state.
	verifier, state := rand.Text()+rand.Text(), rand.Text()
	params := url.Values{
		"client_id":             {clientID},
		"redirect_uri":          {c.redirect},
		"response_type":         {"code"},
		"code_challenge":        {pkce.Challenge(verifier)},
		"code_challenge_method": {"S256"},
		"scope":                 {scope},
		"state":                 {state},
	}
	if !c.noResource {
		params.Set("resource", testResource)
	}
	back := h.approve(params, "alice")
	require.True(t, strings.HasPrefix(back.String(), c.redirect+"?"), "back to %s: %s", c.redirect, back)
	require.Equal(t, state, back.Query().Get("state"))
	require.Equal(t, testIssuer, back.Query().Get("iss"), "RFC 9207, SEP-2468")

	// The token request, authenticated as the client registered.
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"client_id":     {clientID},
		"code":          {back.Query().Get("code")},
		"code_verifier": {verifier},
		"redirect_uri":  {c.redirect},
	}
	if !c.noResource {
		form.Set("resource", testResource)
	}
	if secret != "" {
		form.Set("client_secret", secret) // client_secret_post
	}
	tr := c.token(t, h, as["token_endpoint"].(string), form)
	require.Equal(t, "Bearer", tr.TokenType)
	require.Equal(t, scope, tr.Scope)
	requireMCPCaller(t, h, tr.AccessToken, clientID)

	if c.refresh {
		require.NotEmpty(t, tr.RefreshToken)
		form = url.Values{"grant_type": {"refresh_token"}, "client_id": {clientID}, "refresh_token": {tr.RefreshToken}}
		if secret != "" {
			form.Set("client_secret", secret)
		}
		next := c.token(t, h, as["token_endpoint"].(string), form)
		require.NotEqual(t, tr.RefreshToken, next.RefreshToken, "rotated")
		requireMCPCaller(t, h, next.AccessToken, clientID)
	}
	return clientID
}

// token posts a token request from the client and decodes the answer.
func (c realClient) token(t *testing.T, h *harness, endpoint string, form url.Values) tokenResponse {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := h.do(c.fromPage(r))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	c.requireCORS(t, w)
	return decodeTokens(t, w)
}

// fromPage adds the Origin header a browser sends from the client's page.
func (c realClient) fromPage(r *http.Request) *http.Request {
	if c.origin != "" {
		r.Header.Set("Origin", c.origin)
	}
	return r
}

// requireCORS checks a page of the client's origin may read the answer.
func (c realClient) requireCORS(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	if c.origin != "" {
		require.Equal(t, "*", w.Header().Get("Access-Control-Allow-Origin"), c.origin)
	}
}

// requireMCPCaller checks /mcp accepts token as clientID's, for alice.
func requireMCPCaller(t *testing.T, h *harness, token, clientID string) {
	t.Helper()
	w := h.callMCP(token)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var caller struct{ User, Client string }
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &caller))
	require.Equal(t, "alice", caller.User)
	require.Equal(t, clientID, caller.Client)
}

// challengeParam is one auth-param of a Bearer challenge.
func challengeParam(t *testing.T, challenge, name string) string {
	t.Helper()
	m := regexp.MustCompile(`[ ,]` + name + `="([^"]*)"`).FindStringSubmatch(challenge)
	require.NotNil(t, m, "no %s in %q", name, challenge)
	return m[1]
}

// TestRealClientsReachMCP: each client of clients-2026.md ("Clients") signs
// in as it does in the wild, from the 401 challenge to a token that /mcp
// accepts. The payloads are the ones TestRealClientRedirectURIs registers;
// the browser origin of the MCP Inspector at /mcp (mcphttp.CORS) is tested
// by TestMCPCORS in example/server.
func TestRealClientsReachMCP(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    realClient
	}{
		{
			// Claude (claude.ai, Desktop): DCR as a public client when the
			// AS offers no metadata documents; the scope from the 401
			// challenge; refreshes.
			name: "claude web",
			c: realClient{
				register: claudeAIRegistration,
				redirect: "https://claude.ai/api/mcp/auth_callback",
				refresh:  true,
			},
		},
		{
			// Claude Code: a loopback callback on its port; some 2.1.x
			// versions send no resource, at /authorize or /token
			// (Config.StrictResource off: the resource server applies).
			name: "claude code",
			c: realClient{
				register:   claudeCodeRegistration,
				redirect:   "http://localhost:53117/callback",
				noResource: true,
				refresh:    true,
			},
		},
		{
			// ChatGPT: DCR asking for client_secret_post, a connector
			// callback; refreshes only because the AS metadata lists
			// offline_access (SEP-2207); its calls come from chatgpt.com.
			name: "chatgpt",
			c: realClient{
				register: chatGPTRegistration,
				redirect: "https://chatgpt.com/connector/oauth/g-4f6a2c9e1b",
				origin:   "https://chatgpt.com",
				scope:    testScope + " offline_access",
				refresh:  true,
			},
		},
		{
			// VS Code: a native client registering three redirect URIs,
			// listening on a random loopback port when 33418 is busy; sends
			// resource.
			name: "vscode",
			c: realClient{
				register: vscodeRegistration,
				redirect: "http://127.0.0.1:51234/",
				scope:    testScope,
				refresh:  true,
			},
		},
		{
			// Cursor: one DCR request with a private-use, an https and a
			// loopback redirect URI; comes back through its private-use
			// scheme (RFC 8252 §7.1).
			name: "cursor",
			c: realClient{
				register: cursorRegistration,
				redirect: "cursor://anysphere.cursor-mcp/oauth/callback",
				refresh:  true,
			},
		},
		{
			// MCP Inspector: a page at http://localhost:6274; metadata,
			// registration and token need CORS.
			name: "mcp inspector",
			c: realClient{
				register: inspectorRegistration,
				redirect: "http://localhost:6274/oauth/callback",
				origin:   "http://localhost:6274",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			tc.c.signIn(t, h)
			require.Equal(t, 1, h.model.Stats().Clients)
		})
	}
}

// TestRealClientsByMetadataDocument: VS Code and Claude Code present the URL
// of their client ID metadata document when the AS metadata advertises
// documents and lists "none"; they register nothing and end with a token
// /mcp accepts. VS Code's URL is from clients-2026.md (and
// microsoft/vscode#270811), Claude Code's from anomalyco/opencode#25961.
// The documents' members follow what those clients register by DCR (above);
// the published documents were not fetched.
func TestRealClientsByMetadataDocument(t *testing.T) {
	f := newCIMDFixture(t)
	h := newHarness(t, withCIMD(t, f))
	as := h.srv.Metadata()
	require.True(t, as.ClientIDMetadataDocumentSupported)
	require.Contains(t, as.TokenEndpointAuthMethodsSupported, "none")
	for _, tc := range []struct {
		name, clientID, path, doc string
		c                         realClient
	}{
		{
			name:     "vscode",
			clientID: "https://vscode.dev/oauth/client-metadata.json",
			doc: `{"client_id":"https://vscode.dev/oauth/client-metadata.json","client_name":"Visual Studio Code",` +
				`"application_type":"native","redirect_uris":["https://vscode.dev/redirect","http://127.0.0.1/","http://127.0.0.1:33418/"],` +
				`"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"token_endpoint_auth_method":"none"}`,
			c: realClient{redirect: "http://127.0.0.1:40001/", scope: testScope, refresh: true},
		},
		{
			name:     "claude code",
			clientID: "https://claude.ai/oauth/claude-code-client-metadata",
			doc: `{"client_id":"https://claude.ai/oauth/claude-code-client-metadata","client_name":"Claude Code",` +
				`"redirect_uris":["http://localhost/callback","http://127.0.0.1/callback"],` +
				`"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"token_endpoint_auth_method":"none"}`,
			c: realClient{redirect: "http://localhost:53117/callback", noResource: true, refresh: true},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(tc.clientID)
			require.NoError(t, err)
			f.serve(u.Path, cimdResponse{body: tc.doc})
			tc.c.clientID = tc.clientID
			require.Equal(t, tc.clientID, tc.c.signIn(t, h))
		})
	}
	require.Zero(t, h.model.Stats().Clients, "nothing is registered")
}

// TestStepUpAccumulatesScopes: MCP 2026-07-28 (SEP-2350). A 403
// insufficient_scope names every scope the operation needs in one
// challenge; the client asks again for what it holds plus what the
// challenge names, and the new token serves both the old and the new
// operation.
func TestStepUpAccumulatesScopes(t *testing.T) {
	h := newHarness(t)
	admin := h.srv.RequireBearerAuth(testScope, "mcp:admin")(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	callAdmin := func(token string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, testResource, strings.NewReader(`{}`))
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		admin.ServeHTTP(w, r)
		return w
	}
	id := h.dynamicPublicClient()
	first := h.tokens(id)
	require.Equal(t, testScope, first.Scope)

	w := callAdmin(first.AccessToken)
	require.Equal(t, http.StatusForbidden, w.Code)
	challenge := w.Header().Get("WWW-Authenticate")
	require.Equal(t, "insufficient_scope", challengeParam(t, challenge, "error"))
	needed := challengeParam(t, challenge, "scope")
	require.Equal(t, testScope+" mcp:admin", needed, "every scope the operation needs, in one challenge")

	// The client's union of what it holds and what the challenge names.
	scopes := strings.Fields(first.Scope)
	for _, s := range strings.Fields(needed) {
		if !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	p := authorizeParams(id)
	p.Set("scope", strings.Join(scopes, " "))
	tw := h.postForm("/token", exchangeForm(id, h.approve(p, "alice").Query().Get("code")))
	require.Equal(t, http.StatusOK, tw.Code, tw.Body.String())
	second := decodeTokens(t, tw)
	require.Equal(t, testScope+" mcp:admin", second.Scope)
	require.Equal(t, http.StatusOK, callAdmin(second.AccessToken).Code)
	requireMCPCaller(t, h, second.AccessToken, id)
}
