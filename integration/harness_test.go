package integration_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/bearer"
	"github.com/mcpoauth/mcpoauth/internal/pkce"
	"github.com/mcpoauth/mcpoauth/internal/testclock"
	"github.com/mcpoauth/mcpoauth/metadata"
)

// The test deployment: the AS at the root of its origin, the consent page
// and the MCP endpoint beside it.
const (
	testIssuer     = "https://as.example.com"
	testResource   = testIssuer + "/mcp"
	testConsentURL = testIssuer + "/consent"
	testRedirect   = "https://client.example.com/cb"
	testScope      = "mcp:tools"
	// testVerifier is a valid RFC 7636 verifier.
	testVerifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)

// harnessStart is when the harness's clock starts; tests advance it
// instead of sleeping.
var harnessStart = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// harness drives the real router with httptest, no network.
type harness struct {
	t       *testing.T
	srv     *mcpoauth.OAuthServer
	model   *mcpoauth.MemoryModel
	clock   *testclock.Clock
	handler http.Handler
	logs    *bytes.Buffer
	// obs records events, metrics and spans (observer_test.go).
	obs *observer

	mu      sync.Mutex
	errs    []error
	clients int
}

// newHarness builds a server with rate limits off unless a mutator turns
// them on; mutators adjust the Config.
func newHarness(t *testing.T, mutate ...func(*mcpoauth.Config)) *harness {
	t.Helper()
	h := &harness{t: t, clock: testclock.New(harnessStart), logs: &bytes.Buffer{}, obs: newObserver()}
	h.model = mcpoauth.NewMemoryModel(mcpoauth.MemoryModelOptions{SweepInterval: mcpoauth.NoSweep})
	t.Cleanup(func() { _ = h.model.Close() })
	cfg := mcpoauth.Config{
		Model:             h.model,
		Issuer:            testIssuer,
		AuthorizationURL:  testConsentURL,
		ResourceServerURL: testResource,
		ScopesSupported:   []string{testScope, "mcp:admin"},
		Now:               h.clock.Now,
		Logger:            slog.New(slog.NewTextHandler(&lockedWriter{w: h.logs}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		RateLimits:        mcpoauth.RateLimits{Disabled: true},
		ErrorHandler: func(_ context.Context, step string, err error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.errs = append(h.errs, err)
		},
	}
	for _, m := range mutate {
		m(&cfg)
	}
	h.obs.install(&cfg)
	t.Cleanup(func() { h.obs.checkNoCredentials(t) })
	srv, err := mcpoauth.New(cfg)
	require.NoError(t, err)
	h.srv = srv
	mux := newTestMux(srv, "/consent/decide")
	mux.Handle("/mcp", srv.RequireBearerAuth(testScope)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, _ := bearer.FromContext(r.Context())
		_ = json.NewEncoder(w).Encode(map[string]any{"user": info.UserID, "client": info.ClientID, "scopes": info.Scopes, "grant": info.GrantID, "identity": info.Identity})
	})))
	h.handler = h.obs.tap(mux)
	return h
}

// withModel puts m, a decorator of the harness's MemoryModel, in its
// place; inner receives the MemoryModel that m wraps.
func withModel(m mcpoauth.Model, inner **mcpoauth.MemoryModel) func(*mcpoauth.Config) {
	return func(c *mcpoauth.Config) {
		*inner = c.Model.(*mcpoauth.MemoryModel)
		c.Model = m
	}
}

// newTestMux serves srv's router with the tests' consent page: GET /consent
// approves a remembered request of the user signedInCookie names, else
// answers the pending request as JSON, and decidePattern takes the decision
// of the user testSignIn names.
func newTestMux(srv *mcpoauth.OAuthServer, decidePattern string) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/", srv.Router())
	mux.HandleFunc("GET /consent", func(w http.ResponseWriter, r *http.Request) {
		if srv.ApproveRemembered(w, r, cookieSignIn) {
			return
		}
		p, err := srv.PendingAuthorization(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_ = json.NewEncoder(w).Encode(p)
	})
	mux.Handle(decidePattern, srv.AuthenticateHandler(testSignIn))
	return mux
}

// signedInCookie names the user a browser is signed in as when the
// consent page opens (cookieSignIn); the decision form names its user in a
// field instead (testSignIn).
const signedInCookie = "test-user"

// cookieSignIn is the tests' sign-in on the consent page's GET.
func cookieSignIn(r *http.Request) (string, error) {
	c, err := r.Cookie(signedInCookie)
	if err != nil {
		return "", nil
	}
	return c.Value, nil
}

// testSignIn is the tests' sign-in: any non-empty username field.
func testSignIn(r *http.Request) (string, error) {
	if u := r.PostFormValue("username"); u != "" {
		return u, nil
	}
	return "", errors.New("not signed in")
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// do serves one request through the whole mux.
func (h *harness) do(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.handler.ServeHTTP(w, r)
	return w
}

// postForm posts a form, with optional HTTP Basic credentials.
func (h *harness) postForm(path string, form url.Values, basic ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, testIssuer+path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if len(basic) == 2 {
		r.SetBasicAuth(url.QueryEscape(basic[0]), url.QueryEscape(basic[1]))
	}
	return h.do(r)
}

// register registers a client through /register and returns the response.
func (h *harness) register(body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, testIssuer+"/register", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return h.do(r)
}

// registerClient registers a client with the given metadata and returns its
// registration response.
func (h *harness) registerClient(meta map[string]any) map[string]any {
	h.t.Helper()
	b, _ := json.Marshal(meta)
	w := h.register(string(b))
	require.Equal(h.t, http.StatusCreated, w.Code, w.Body.String())
	var out map[string]any
	require.NoError(h.t, json.Unmarshal(w.Body.Bytes(), &out))
	return out
}

// preRegister registers a static client through RegisterClient, as an
// operator does: its errors at /authorize go back to its redirect URI.
func (h *harness) preRegister(meta metadata.ClientMetadata) (id, secret string) {
	h.t.Helper()
	h.mu.Lock()
	h.clients++
	id = fmt.Sprintf("static-client-%d", h.clients)
	h.mu.Unlock()
	out, err := h.srv.RegisterClient(context.Background(), metadata.ClientInformation{ClientID: id, ClientMetadata: meta})
	require.NoError(h.t, err)
	h.obs.credential(out.ClientSecret)
	return out.ClientID, out.ClientSecret
}

// preRegisterJSON pre-registers a client from JSON-shaped metadata, as
// registerClient registers one at /register, and returns the client
// information as registerClient does.
func (h *harness) preRegisterJSON(meta map[string]any) map[string]any {
	h.t.Helper()
	b, err := json.Marshal(meta)
	require.NoError(h.t, err)
	var m metadata.ClientMetadata
	require.NoError(h.t, json.Unmarshal(b, &m))
	id, secret := h.preRegister(m)
	out := map[string]any{"client_id": id}
	if secret != "" {
		out["client_secret"] = secret
	}
	return out
}

// publicClient pre-registers a public client for the code and refresh
// grants.
func (h *harness) publicClient() string {
	id, _ := h.preRegister(metadata.ClientMetadata{
		RedirectURIs:            []string{testRedirect},
		GrantTypes:              []string{"authorization_code", "refresh_token"},
		TokenEndpointAuthMethod: "none",
		ClientName:              "Test Client",
	})
	return id
}

// confidentialClient pre-registers a client that named no authentication
// method: client_secret_basic, with client_secret_post accepted too.
func (h *harness) confidentialClient() (id, secret string) {
	return h.preRegister(metadata.ClientMetadata{
		RedirectURIs: []string{testRedirect},
		GrantTypes:   []string{"authorization_code", "refresh_token"},
	})
}

// dynamicPublicClient registers a public client through /register, as an
// MCP client does: the operator never vetted it.
func (h *harness) dynamicPublicClient() string {
	out := h.registerClient(map[string]any{
		"redirect_uris":              []string{testRedirect},
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"token_endpoint_auth_method": "none",
		"client_name":                "Test Client",
	})
	return out["client_id"].(string)
}

// authorizeParams are the parameters of a valid authorization request.
func authorizeParams(clientID string) url.Values {
	return url.Values{
		"client_id":             {clientID},
		"redirect_uri":          {testRedirect},
		"response_type":         {"code"},
		"code_challenge":        {pkce.Challenge(testVerifier)},
		"code_challenge_method": {"S256"},
		"scope":                 {testScope},
		"resource":              {testResource},
		"state":                 {"xyz"},
	}
}

// mapKeys lists the keys of a JSON object or a query, in no order.
func mapKeys[M ~map[string]V, V any](m M) []string {
	return slices.Collect(maps.Keys(m))
}

// browser is a cookie jar for one user agent.
type browser struct{ cookies []*http.Cookie }

func (b *browser) send(r *http.Request) {
	for _, c := range b.cookies {
		r.AddCookie(c)
	}
}

func (b *browser) keep(w *httptest.ResponseRecorder) {
	b.cookies = append(b.cookies, w.Result().Cookies()...)
}

// authorize sends a GET /authorize from a browser.
func (h *harness) authorize(b *browser, params url.Values) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, testIssuer+"/authorize?"+params.Encode(), nil)
	b.send(r)
	w := h.do(r)
	b.keep(w)
	return w
}

// pending follows an /authorize redirect to the consent page.
func (h *harness) pending(b *browser, w *httptest.ResponseRecorder) mcpoauth.PendingAuthorization {
	h.t.Helper()
	require.Equal(h.t, http.StatusFound, w.Code, w.Body.String())
	loc := w.Header().Get("Location")
	require.True(h.t, strings.HasPrefix(loc, testConsentURL+"?"), loc)
	r := httptest.NewRequest(http.MethodGet, loc, nil)
	b.send(r)
	cw := h.do(r)
	require.Equal(h.t, http.StatusOK, cw.Code, cw.Body.String())
	var p mcpoauth.PendingAuthorization
	require.NoError(h.t, json.Unmarshal(cw.Body.Bytes(), &p))
	return p
}

// consent sends params to /authorize from a new browser and returns the
// request the consent page shows.
func (h *harness) consent(params url.Values) mcpoauth.PendingAuthorization {
	h.t.Helper()
	b := &browser{}
	return h.pending(b, h.authorize(b, params))
}

// decide posts the consent decision from a browser.
func (h *harness) decide(b *browser, form url.Values) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, testIssuer+"/consent/decide", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	b.send(r)
	return h.do(r)
}

// approve runs authorize → consent → approve and returns the redirect URL.
func (h *harness) approve(params url.Values, user string) *url.URL {
	h.t.Helper()
	b := &browser{}
	return h.approvePending(b, h.pending(b, h.authorize(b, params)), user)
}

// approvePending approves, as user, the request p that the consent page
// showed browser b, and returns the redirect URL.
func (h *harness) approvePending(b *browser, p mcpoauth.PendingAuthorization, user string) *url.URL {
	h.t.Helper()
	w := h.decide(b, url.Values{"request_id": {p.RequestID}, "csrf_token": {p.CSRFToken}, "decision": {"approve"}, "username": {user}})
	require.Equal(h.t, http.StatusSeeOther, w.Code, w.Body.String())
	u, err := url.Parse(w.Header().Get("Location"))
	require.NoError(h.t, err)
	return u
}

// code runs the consent flow for a client and returns the authorization code.
func (h *harness) code(clientID string) string {
	h.t.Helper()
	u := h.approve(authorizeParams(clientID), "alice")
	c := u.Query().Get("code")
	require.NotEmpty(h.t, c, u.String())
	return c
}

// exchangeForm is the token request redeeming code for a public client.
func exchangeForm(clientID, code string) url.Values {
	return url.Values{
		"grant_type":    {"authorization_code"},
		"client_id":     {clientID},
		"code":          {code},
		"code_verifier": {testVerifier},
		"redirect_uri":  {testRedirect},
		"resource":      {testResource},
	}
}

// basicExchangeForm is the token request redeeming code for a client that
// authenticates with HTTP Basic: it names itself there, not in the form.
func basicExchangeForm(clientID, code string) url.Values {
	f := exchangeForm(clientID, code)
	f.Del("client_id")
	return f
}

// tokenResponse is the decoded success body of /token.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
}

// tokens runs the whole flow for a public client and returns its tokens.
func (h *harness) tokens(clientID string) tokenResponse {
	h.t.Helper()
	w := h.postForm("/token", exchangeForm(clientID, h.code(clientID)))
	require.Equal(h.t, http.StatusOK, w.Code, w.Body.String())
	var tr tokenResponse
	require.NoError(h.t, json.Unmarshal(w.Body.Bytes(), &tr))
	return tr
}

// basicTokens runs the whole flow for a confidential client that
// authenticates with HTTP Basic and returns its tokens.
func (h *harness) basicTokens(clientID, secret string) tokenResponse {
	h.t.Helper()
	w := h.postForm("/token", basicExchangeForm(clientID, h.code(clientID)), clientID, secret)
	require.Equal(h.t, http.StatusOK, w.Code, w.Body.String())
	return decodeTokens(h.t, w)
}

// callMCP calls the protected endpoint with a bearer token.
func (h *harness) callMCP(token string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, testResource, nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return h.do(r)
}

// errorPageCode finds the error code on the default error page.
var errorPageCode = regexp.MustCompile(`<code id="error">([a-z_]+)</code>`)

// oauthError decodes an error body: the JSON of a machine endpoint, or the
// error page a browser-facing step shows.
func oauthError(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	if strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
		m := errorPageCode.FindStringSubmatch(w.Body.String())
		require.NotNil(t, m, "no error code on the page: %s", w.Body.String())
		return m[1]
	}
	var e struct {
		Error string `json:"error"`
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &e), w.Body.String())
	return e.Error
}

// newRequest builds a request to the test issuer.
func newRequest(method, path, body string) *http.Request {
	r := httptest.NewRequest(method, testIssuer+path, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return r
}
