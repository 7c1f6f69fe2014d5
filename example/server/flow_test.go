package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/interop/output"
)

// testRedirect is where the test clients want the browser sent. Nothing
// listens there: the browsers below do not follow redirects.
const testRedirect = "http://127.0.0.1:8765/callback"

// testEnv is the example server on a loopback port, with issuer
// http://127.0.0.1:PORT, driven over real HTTP as an outside tool would.
type testEnv struct {
	t      *testing.T
	issuer string
	ts     *httptest.Server
	app    *exampleServer
	logs   *output.Buffer
}

func newTestEnv(t *testing.T, clientsFile string) *testEnv {
	t.Helper()
	return newTestEnvWith(t, options{clientsFile: clientsFile})
}

// newTestEnvWith serves the example built from opts; addr, issuer and
// logger are filled in.
func newTestEnvWith(t *testing.T, opts options) *testEnv {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	e := &testEnv{t: t, ts: ts, issuer: "http://" + ts.Listener.Addr().String(), logs: &output.Buffer{}}
	opts.addr = ts.Listener.Addr().String()
	opts.issuer = e.issuer
	opts.logger = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	app, err := newServer(opts)
	require.NoError(t, err)
	e.app = app
	ts.Config.Handler = app
	ts.Start()
	t.Cleanup(func() {
		// End the MCP streams first: Close waits for active connections.
		_ = app.Close()
		ts.Close()
	})
	return e
}

// newBrowser is a user agent with cookies that does not follow redirects, so
// each hop can be inspected.
func newBrowser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &http.Client{
		Jar:           jar,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// fetch sends a request and returns the response with its body read.
func fetch(t *testing.T, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// seeOther checks that a form's answer is a 303 and returns where it sends
// the browser.
func seeOther(t *testing.T, resp *http.Response, body string) *url.URL {
	t.Helper()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	return loc
}

// assertPageMethods checks that the page at u refuses a method other than
// GET, HEAD and POST with 405 and an Allow header naming those three.
func assertPageMethods(t *testing.T, b *http.Client, u string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, u, nil)
	require.NoError(t, err)
	resp, _ := fetch(t, b, req)
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.Equal(t, "GET, HEAD, POST", resp.Header.Get("Allow"))
}

func (e *testEnv) get(c *http.Client, u string) (*http.Response, string) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(e.t, err)
	return fetch(e.t, c, req)
}

func (e *testEnv) postForm(c *http.Client, u string, form url.Values, basic ...string) (*http.Response, string) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	require.NoError(e.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if len(basic) == 2 {
		// RFC 6749 §2.3.1: form-encode, then base64.
		req.SetBasicAuth(url.QueryEscape(basic[0]), url.QueryEscape(basic[1]))
	}
	return fetch(e.t, c, req)
}

// registerClient registers a client with metadata meta through /register
// and returns its client_id and client_secret.
func (e *testEnv) registerClient(meta map[string]any) (id, secret string) {
	e.t.Helper()
	body, err := json.Marshal(meta)
	require.NoError(e.t, err)
	req, err := http.NewRequest(http.MethodPost, e.issuer+"/register", bytes.NewReader(body))
	require.NoError(e.t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, out := fetch(e.t, http.DefaultClient, req)
	require.Equal(e.t, http.StatusCreated, resp.StatusCode, out)
	var info struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	require.NoError(e.t, json.Unmarshal([]byte(out), &info))
	require.NotEmpty(e.t, info.ClientID)
	return info.ClientID, info.ClientSecret
}

// register registers a public authorization code client through /register.
func (e *testEnv) register(clientName string) string {
	e.t.Helper()
	id, secret := e.registerClient(map[string]any{
		"client_name":                clientName,
		"redirect_uris":              []string{testRedirect},
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"token_endpoint_auth_method": "none",
	})
	require.Empty(e.t, secret, "a public client gets no secret")
	return id
}

// pkcePair returns an RFC 7636 verifier and its S256 challenge.
func pkcePair() (verifier, challenge string) {
	verifier = base64.RawURLEncoding.EncodeToString(randomBytes(32))
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// authorizeURL is the authorization request of a client for the MCP
// endpoint, with PKCE.
func (e *testEnv) authorizeURL(clientID, redirectURI, challenge, state string) string {
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {clientID},
		"redirect_uri":          {redirectURI},
		"code_challenge":        {challenge},
		"code_challenge_method": {"S256"},
		"scope":                 {scopeTools},
		"resource":              {e.issuer + "/mcp"},
		"state":                 {state},
	}
	return e.issuer + "/authorize?" + q.Encode()
}

// authorize opens /authorize in the browser and returns the consent page URL
// it redirects to.
func (e *testEnv) authorize(b *http.Client, clientID, challenge, state string) string {
	e.t.Helper()
	resp, body := e.get(b, e.authorizeURL(clientID, testRedirect, challenge, state))
	require.Equal(e.t, http.StatusFound, resp.StatusCode, body)
	loc := resp.Header.Get("Location")
	require.True(e.t, strings.HasPrefix(loc, e.issuer+"/consent?request_id="), loc)
	return loc
}

// startConsent registers a public client named clientName and opens
// /authorize for it in a new browser; it returns the browser and the
// consent page URL.
func (e *testEnv) startConsent(clientName, state string) (*http.Client, string) {
	e.t.Helper()
	clientID := e.register(clientName)
	_, challenge := pkcePair()
	b := newBrowser(e.t)
	return b, e.authorize(b, clientID, challenge, state)
}

// htmlForm is the one POST form of a page, as a browser would submit it.
type htmlForm struct {
	action    string
	hidden    url.Values
	text      url.Values // text inputs and their values
	textNames []string   // in page order
	decisions []string   // values of the submit buttons named "decision"
}

var (
	formRE   = regexp.MustCompile(`<form method="post" action="([^"]*)">`)
	hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
	textRE   = regexp.MustCompile(`<input type="text" ([^>]*)>`)
	attrRE   = regexp.MustCompile(`([a-z]+)="([^"]*)"`)
	buttonRE = regexp.MustCompile(`<button type="submit" name="([^"]*)" value="([^"]*)"`)
)

// parseHTMLForm reads the form out of the templates' well-formed output.
func parseHTMLForm(t *testing.T, page string) htmlForm {
	t.Helper()
	forms := formRE.FindAllStringSubmatch(page, -1)
	require.Len(t, forms, 1, "exactly one POST form")
	f := htmlForm{action: html.UnescapeString(forms[0][1]), hidden: url.Values{}, text: url.Values{}}
	for _, m := range hiddenRE.FindAllStringSubmatch(page, -1) {
		f.hidden.Add(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	for _, m := range textRE.FindAllStringSubmatch(page, -1) {
		attrs := map[string]string{}
		for _, a := range attrRE.FindAllStringSubmatch(m[1], -1) {
			attrs[a[1]] = html.UnescapeString(a[2])
		}
		f.text.Set(attrs["name"], attrs["value"])
		f.textNames = append(f.textNames, attrs["name"])
	}
	for _, m := range buttonRE.FindAllStringSubmatch(page, -1) {
		require.Equal(t, "decision", html.UnescapeString(m[1]))
		f.decisions = append(f.decisions, html.UnescapeString(m[2]))
	}
	return f
}

// openForm loads a page with a form (the consent or the device page) in
// browser b and parses the form.
func (e *testEnv) openForm(b *http.Client, u string) (htmlForm, *http.Response, string) {
	e.t.Helper()
	resp, page := e.get(b, u)
	require.Equal(e.t, http.StatusOK, resp.StatusCode, page)
	return parseHTMLForm(e.t, page), resp, page
}

// submitForm posts form f of the page at pageURL as a browser would: its
// hidden fields, and fields.
func (e *testEnv) submitForm(b *http.Client, pageURL string, f htmlForm, fields url.Values) (*http.Response, string) {
	e.t.Helper()
	base, err := url.Parse(pageURL)
	require.NoError(e.t, err)
	action, err := base.Parse(f.action)
	require.NoError(e.t, err)
	form := url.Values{}
	for k, v := range f.hidden {
		form[k] = v
	}
	for k, v := range fields {
		form[k] = v
	}
	return e.postForm(b, action.String(), form)
}

// decide submits the consent form and returns the response (a 303 on
// success).
func (e *testEnv) decide(b *http.Client, consentURL string, f htmlForm, user, decision string) (*http.Response, string) {
	e.t.Helper()
	return e.submitForm(b, consentURL, f, url.Values{"username": {user}, "decision": {decision}})
}

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
}

func (e *testEnv) token(form url.Values, basic ...string) tokenResponse {
	e.t.Helper()
	resp, body := e.postForm(http.DefaultClient, e.issuer+"/token", form, basic...)
	require.Equal(e.t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(e.t, "no-store", resp.Header.Get("Cache-Control"))
	var tr tokenResponse
	require.NoError(e.t, json.Unmarshal([]byte(body), &tr))
	require.NotEmpty(e.t, tr.AccessToken)
	return tr
}

// redeem exchanges a public client's code for tokens.
func (e *testEnv) redeem(clientID, code, verifier string) tokenResponse {
	e.t.Helper()
	return e.token(url.Values{"grant_type": {"authorization_code"}, "client_id": {clientID}, "code": {code},
		"code_verifier": {verifier}, "redirect_uri": {testRedirect}, "resource": {e.issuer + "/mcp"}})
}

// callMCP calls /mcp with a bearer token.
func (e *testEnv) callMCP(token string) (*http.Response, string) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.issuer+"/mcp", strings.NewReader("{}"))
	require.NoError(e.t, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return fetch(e.t, http.DefaultClient, req)
}

// approve runs /authorize → consent page → approve for a client and returns
// the authorization code.
func (e *testEnv) approve(clientID, challenge, user string) string {
	e.t.Helper()
	b := newBrowser(e.t)
	consentURL := e.authorize(b, clientID, challenge, "st")
	f, _, _ := e.openForm(b, consentURL)
	resp, body := e.decide(b, consentURL, f, user, "approve")
	loc := seeOther(e.t, resp, body)
	code := loc.Query().Get("code")
	require.NotEmpty(e.t, code, loc.String())
	return code
}

func TestFlowPublicClient(t *testing.T) {
	e := newTestEnv(t, "")

	// Discovery, as an MCP client does it.
	resp, body := e.get(http.DefaultClient, e.issuer+"/.well-known/oauth-protected-resource/mcp")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	var prm struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
		ScopesSupported      []string `json:"scopes_supported"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &prm))
	assert.Equal(t, e.issuer+"/mcp", prm.Resource)
	assert.Equal(t, []string{e.issuer}, prm.AuthorizationServers)
	assert.Equal(t, []string{scopeTools}, prm.ScopesSupported)
	resp, body = e.get(http.DefaultClient, e.issuer+"/.well-known/oauth-authorization-server")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	var asm struct {
		Issuer               string   `json:"issuer"`
		AuthorizationURL     string   `json:"authorization_endpoint"`
		TokenURL             string   `json:"token_endpoint"`
		RegistrationEndpoint string   `json:"registration_endpoint"`
		RevocationEndpoint   string   `json:"revocation_endpoint"`
		DeviceEndpoint       string   `json:"device_authorization_endpoint"`
		GrantTypes           []string `json:"grant_types_supported"`
		PKCEMethods          []string `json:"code_challenge_methods_supported"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &asm))
	assert.Equal(t, e.issuer, asm.Issuer)
	assert.Equal(t, e.issuer+"/authorize", asm.AuthorizationURL)
	assert.Equal(t, e.issuer+"/token", asm.TokenURL)
	assert.Equal(t, e.issuer+"/register", asm.RegistrationEndpoint)
	assert.Equal(t, e.issuer+"/revoke", asm.RevocationEndpoint)
	assert.Equal(t, e.issuer+"/device", asm.DeviceEndpoint, "the RFC 8628 endpoint; /activate is the page")
	assert.ElementsMatch(t, []string{"authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:device_code"}, asm.GrantTypes)
	assert.Equal(t, []string{"S256"}, asm.PKCEMethods)

	// Without a token, /mcp challenges with the metadata URL.
	resp, _ = e.callMCP("")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("WWW-Authenticate"), `resource_metadata="`+e.issuer+`/.well-known/oauth-protected-resource/mcp"`)

	clientID := e.register("Flow Test Client")
	verifier, challenge := pkcePair()
	b := newBrowser(t)
	consentURL := e.authorize(b, clientID, challenge, "state-123")

	f, cresp, page := e.openForm(b, consentURL)
	assert.Equal(t, "/consent", f.action)
	assert.ElementsMatch(t, []string{mcpoauth.FormRequestID, mcpoauth.FormCSRFToken}, keys(f.hidden))
	assert.NotEmpty(t, f.hidden.Get(mcpoauth.FormRequestID))
	assert.NotEmpty(t, f.hidden.Get(mcpoauth.FormCSRFToken))
	assert.Equal(t, []string{"username"}, f.textNames)
	assert.Equal(t, []string{"approve", "deny"}, f.decisions)
	assert.Contains(t, page, "Flow Test Client")
	assert.Contains(t, page, "self-asserted")
	assert.Contains(t, page, "127.0.0.1:8765", "the redirect host is shown")
	assert.Contains(t, page, scopeTools)
	assert.Contains(t, page, e.issuer+"/mcp")
	assert.Contains(t, cresp.Header.Get("Content-Security-Policy"), "form-action 'self' http://127.0.0.1:8765;")

	resp, body = e.decide(b, consentURL, f, "  alice ", "approve")
	loc := seeOther(t, resp, body)
	assert.Equal(t, testRedirect, loc.Scheme+"://"+loc.Host+loc.Path)
	code := loc.Query().Get("code")
	require.NotEmpty(t, code)
	assert.Equal(t, "state-123", loc.Query().Get("state"))
	assert.Equal(t, e.issuer, loc.Query().Get("iss"), "RFC 9207")

	// The decision is one-time: a second post is refused and shown.
	resp, body = e.decide(b, consentURL, f, "alice", "approve")
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
	assert.Empty(t, resp.Header.Get("Location"))

	tr := e.redeem(clientID, code, verifier)
	assert.Equal(t, "Bearer", tr.TokenType)
	assert.NotEmpty(t, tr.RefreshToken)
	assert.Equal(t, scopeTools, tr.Scope)

	// /mcp speaks MCP: the SDK's client lists the tools and calls whoami.
	cs := e.mcpSession(tr.AccessToken)
	assert.Equal(t, []string{"echo", "whoami"}, e.toolNames(cs))
	assert.Equal(t, whoamiOutput{UserID: "alice", ClientID: clientID, Scopes: []string{scopeTools}}, e.whoami(cs, tr.AccessToken, tr.RefreshToken))

	// Refresh rotates; the new access token works.
	tr2 := e.token(url.Values{"grant_type": {"refresh_token"}, "client_id": {clientID}, "refresh_token": {tr.RefreshToken}})
	assert.NotEqual(t, tr.RefreshToken, tr2.RefreshToken)
	cs2 := e.mcpSession(tr2.AccessToken)
	assert.Equal(t, "alice", e.whoami(cs2, tr2.AccessToken).UserID)

	// Revocation answers 200; the revoked token is refused.
	resp, body = e.postForm(http.DefaultClient, e.issuer+"/revoke", url.Values{"client_id": {clientID}, "token": {tr2.AccessToken}})
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	resp, _ = e.callMCP(tr2.AccessToken)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`)

	// The access log has every request, and no credential nor query string.
	logs := e.logs.String()
	assert.Contains(t, logs, "msg=request method=GET path=/authorize status=302")
	assert.Contains(t, logs, "msg=request method=POST path=/consent status=303")
	assert.Contains(t, logs, "msg=request method=POST path=/token status=200")
	for _, secret := range []string{code, verifier, challenge, tr.AccessToken, tr.RefreshToken, tr2.AccessToken, tr2.RefreshToken,
		f.hidden.Get(mcpoauth.FormRequestID), f.hidden.Get(mcpoauth.FormCSRFToken), "request_id=", "code_challenge", "state-123"} {
		assert.NotContains(t, logs, secret)
	}
}

func keys(v url.Values) []string {
	var out []string
	for k := range v {
		out = append(out, k)
	}
	return out
}

func TestFlowDeny(t *testing.T) {
	e := newTestEnv(t, "")
	b, consentURL := e.startConsent("Deny Client", "s-deny")
	f, _, _ := e.openForm(b, consentURL)
	// Deny needs no sign-in.
	resp, body := e.decide(b, consentURL, f, "", "deny")
	loc := seeOther(t, resp, body)
	assert.Equal(t, testRedirect, loc.Scheme+"://"+loc.Host+loc.Path)
	assert.Equal(t, "access_denied", loc.Query().Get("error"))
	assert.Equal(t, "s-deny", loc.Query().Get("state"))
	assert.Equal(t, e.issuer, loc.Query().Get("iss"))
	assert.Empty(t, loc.Query().Get("code"))
}

func TestConsentRequiresUsername(t *testing.T) {
	e := newTestEnv(t, "")
	b, consentURL := e.startConsent("Sign-in Client", "s")
	f, _, _ := e.openForm(b, consentURL)
	for _, bad := range []string{"", "   ", "a\x01b", strings.Repeat("x", 65)} {
		resp, body := e.decide(b, consentURL, f, bad, "approve")
		assert.Equal(t, http.StatusForbidden, resp.StatusCode, body)
		assert.Empty(t, resp.Header.Get("Location"))
	}
	// The refusals burnt nothing: the same form still approves.
	resp, body := e.decide(b, consentURL, f, "bob", "approve")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
}

func TestConsentPageSecurityHeaders(t *testing.T) {
	e := newTestEnv(t, "")
	_, resp, _ := e.openForm(e.startConsent("Header Client", "s"))
	want := map[string]string{
		"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' http://127.0.0.1:8765; frame-ancestors 'none'; base-uri 'none'",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
		"X-Content-Type-Options":  "nosniff",
		"Cache-Control":           "no-store",
		"Content-Type":            "text/html; charset=utf-8",
	}
	for k, v := range want {
		assert.Equal(t, v, resp.Header.Get(k), k)
	}
	// The error page has them too.
	resp, _ = e.get(newBrowser(t), e.issuer+"/consent?request_id=nope")
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	for k := range want {
		assert.NotEmpty(t, resp.Header.Get(k), k)
	}
	assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "form-action 'self';")
}

func TestConsentEscapesClientName(t *testing.T) {
	e := newTestEnv(t, "")
	_, _, page := e.openForm(e.startConsent(`<script>alert(1)</script>`, "s"))
	assert.NotContains(t, page, "<script")
	assert.Contains(t, page, "&lt;script&gt;alert(1)&lt;/script&gt;")
}

func TestConsentErrorPages(t *testing.T) {
	e := newTestEnv(t, "")
	b, consentURL := e.startConsent("Error Client", "s")

	for name, u := range map[string]string{
		"no request id":      e.issuer + "/consent",
		"unknown request id": e.issuer + "/consent?request_id=" + url.QueryEscape(`"><script>alert(1)</script>`),
	} {
		resp, page := e.get(b, u)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, name)
		assert.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"), name)
		assert.NotContains(t, page, "<script", name)
		assert.NotContains(t, page, "<form", name)
	}

	// Another browser (no binding cookie) cannot see the request.
	resp, page := e.get(newBrowser(t), consentURL)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.NotContains(t, page, "Error Client")

	// Nor decide it, even with the first browser's form fields.
	f, _, _ := e.openForm(b, consentURL)
	resp, body := e.decide(newBrowser(t), consentURL, f, "mallory", "approve")
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, body)
	assert.Empty(t, resp.Header.Get("Location"))

	assertPageMethods(t, b, consentURL)
}

func TestClientsFile(t *testing.T) {
	const secret = "static-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
	path := filepath.Join(t.TempDir(), "clients.json")
	require.NoError(t, os.WriteFile(path, []byte(`[
  {
    "client_id": "static-app",
    "client_secret": "`+secret+`",
    "client_name": "Static App",
    "redirect_uris": ["`+testRedirect+`"],
    "grant_types": ["authorization_code", "refresh_token"],
    "token_endpoint_auth_method": "client_secret_basic"
  },
  {
    "client_id": "static-public",
    "redirect_uris": ["`+testRedirect+`"],
    "token_endpoint_auth_method": "none"
  }
]`), 0o600))
	e := newTestEnv(t, path)
	assert.NotContains(t, e.logs.String(), secret)
	assert.Contains(t, e.logs.String(), "client_id=static-app")

	verifier, challenge := pkcePair()
	code := e.approve("static-app", challenge, "carol")
	exchange := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"code_verifier": {verifier},
		"redirect_uri":  {testRedirect},
	}
	// A wrong secret is invalid_client (and burns nothing).
	resp, body := e.postForm(http.DefaultClient, e.issuer+"/token", exchange, "static-app", "wrong")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, body)
	assert.Contains(t, body, "invalid_client")

	tr := e.token(exchange, "static-app", secret)
	who := e.whoami(e.mcpSession(tr.AccessToken), tr.AccessToken, tr.RefreshToken, secret)
	assert.Equal(t, "carol", who.UserID)
	assert.Equal(t, "static-app", who.ClientID)

	// The public static client works with PKCE alone.
	verifier, challenge = pkcePair()
	code = e.approve("static-public", challenge, "dave")
	e.token(url.Values{"grant_type": {"authorization_code"}, "client_id": {"static-public"}, "code": {code}, "code_verifier": {verifier}, "redirect_uri": {testRedirect}})
}

func TestHostHeaderCheck(t *testing.T) {
	e := newTestEnv(t, "")
	_, port, err := net.SplitHostPort(e.ts.Listener.Addr().String())
	require.NoError(t, err)
	for host, want := range map[string]int{
		"127.0.0.1:" + port:        http.StatusOK,
		"localhost:" + port:        http.StatusOK,
		"LOCALHOST:" + port:        http.StatusOK,
		"[::1]:" + port:            http.StatusOK,
		"attacker.example:" + port: http.StatusMisdirectedRequest,
		"attacker.example":         http.StatusMisdirectedRequest,
		"localhost":                http.StatusMisdirectedRequest,
		"127.0.0.1:1":              http.StatusMisdirectedRequest,
		"127.0.0.1.nip.io:" + port: http.StatusMisdirectedRequest,
	} {
		// Every page of the example, the MCP endpoint included (the check
		// comes before its bearer check: a rebinding page has no token).
		for _, path := range []string{"/.well-known/oauth-authorization-server", "/activate", "/mcp"} {
			req, err := http.NewRequest(http.MethodGet, e.issuer+path, nil)
			require.NoError(t, err)
			req.Host = host
			resp, body := fetch(t, http.DefaultClient, req)
			if path == "/mcp" && want == http.StatusOK {
				assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "Host %s %s: %s", host, path, body)
				continue
			}
			assert.Equal(t, want, resp.StatusCode, "Host %s %s: %s", host, path, body)
		}
	}
}

// TestCIMDAdvertised: the example accepts client ID metadata documents, and
// refuses a document URL on a loopback or IP-literal host without fetching.
func TestCIMDAdvertised(t *testing.T) {
	e := newTestEnv(t, "")
	resp, body := e.get(http.DefaultClient, e.issuer+"/.well-known/oauth-authorization-server")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, `"client_id_metadata_document_supported":true`)
	for _, id := range []string{"https://127.0.0.1/client.json", "https://localhost/client.json"} {
		q := url.Values{"client_id": {id}, "response_type": {"code"}, "redirect_uri": {"http://127.0.0.1/cb"}}
		resp, body := e.get(http.DefaultClient, e.issuer+"/authorize?"+q.Encode())
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
		require.Contains(t, body, "invalid_client")
	}
}
