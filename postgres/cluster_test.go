package postgres_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/bearer"
	"github.com/mcpoauth/mcpoauth/internal/pkce"
)

// The deployment every replica shares: one issuer and one resource behind a
// load balancer. The tests address each replica on its own loopback port,
// as the load balancer would.
const (
	clusterIssuer   = "http://localhost:8443"
	clusterResource = clusterIssuer + "/mcp"
	clusterScope    = "mcp:tools"
	clusterRedirect = "http://127.0.0.1/callback"
	// clusterVerifier is a valid RFC 7636 verifier.
	clusterVerifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)

// replica is one OAuthServer on its own loopback port: the library's router,
// a consent page and a device page (JSON, for the tests), and the MCP
// endpoint behind bearer auth.
type replica struct {
	base string
	srv  *mcpoauth.OAuthServer
	ts   *httptest.Server

	mu   sync.Mutex
	errs []error // server errors seen by ErrorHandler
}

// serverErrors returns the server errors ErrorHandler received so far.
func (r *replica) serverErrors() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs...)
}

// newReplica starts a replica on model. now is the clock (nil: time.Now).
func newReplica(t *testing.T, model mcpoauth.Model, now func() time.Time, mutate ...func(*mcpoauth.Config)) *replica {
	t.Helper()
	r := &replica{}
	cfg := mcpoauth.Config{
		Model:                  model,
		Issuer:                 clusterIssuer,
		AuthorizationURL:       clusterIssuer + "/consent",
		DeviceAuthorizationURL: clusterIssuer + "/activate",
		ResourceServerURL:      clusterResource,
		ScopesSupported:        []string{clusterScope},
		GrantTypes: []string{
			mcpoauth.GrantAuthorizationCode, mcpoauth.GrantRefreshToken,
			mcpoauth.GrantClientCredentials, mcpoauth.GrantDeviceCode,
		},
		RateLimits: mcpoauth.RateLimits{Disabled: true},
		// Strict one-time use: these tests check that of concurrent or
		// retried rotations exactly one succeeds. The reuse interval has
		// its own tests (integration/refresh_reuse_test.go, the kit).
		RefreshTokenReuseInterval: mcpoauth.NoReuse,
		Logger:                    slog.New(slog.DiscardHandler),
		Now:                       now,
		ErrorHandler: func(_ context.Context, _ string, err error) {
			var oerr *mcpoauth.OAuthError
			if errors.As(err, &oerr) && oerr.Code == "server_error" {
				r.mu.Lock()
				r.errs = append(r.errs, err)
				r.mu.Unlock()
			}
		},
	}
	for _, m := range mutate {
		m(&cfg)
	}
	srv, err := mcpoauth.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	r.srv = srv
	signedIn := func(req *http.Request) (string, error) {
		if u := req.PostFormValue("username"); u != "" {
			return u, nil
		}
		return "", errors.New("not signed in")
	}
	mux := http.NewServeMux()
	mux.Handle("/", srv.Router())
	mux.HandleFunc("GET /consent", func(w http.ResponseWriter, req *http.Request) {
		p, err := srv.PendingAuthorization(req)
		switch {
		case errors.Is(err, mcpoauth.ErrNoPendingAuthorization):
			http.Error(w, "no pending request", http.StatusBadRequest)
			return
		case err != nil:
			// A storage failure: the page answers as the library's
			// endpoints do.
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"error":"server_error","error_description":"internal server error"}`))
			return
		}
		_ = json.NewEncoder(w).Encode(p)
	})
	mux.Handle("POST /consent", srv.AuthenticateHandler(signedIn))
	mux.HandleFunc("GET /activate", func(w http.ResponseWriter, req *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"csrf_token": srv.DeviceFormToken(w, req)})
	})
	mux.Handle("POST /activate/approve", srv.ApproveDeviceAuthorizationHandler(signedIn))
	mux.Handle("/mcp", srv.RequireBearerAuth(clusterScope)(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		info, _ := bearer.FromContext(req.Context())
		_ = json.NewEncoder(w).Encode(map[string]string{"user": info.UserID, "client": info.ClientID})
	})))
	r.ts = httptest.NewServer(mux)
	t.Cleanup(r.ts.Close)
	r.base = r.ts.URL
	return r
}

// reply is a response, read whole.
type reply struct {
	Status int
	Header http.Header
	Body   []byte
}

// json decodes a JSON object body; nil if it is not one.
func (r reply) json() map[string]any {
	var m map[string]any
	if json.Unmarshal(r.Body, &m) != nil {
		return nil
	}
	return m
}

// str returns a string member of a JSON object body.
func (r reply) str(name string) string {
	s, _ := r.json()[name].(string)
	return s
}

// errorPage finds the code and description on the error page the
// browser-facing steps show.
var errorPage = regexp.MustCompile(`<code id="error">([a-z_]+)</code></p>(?:\s*<p id="error_description">([^<]*)</p>)?`)

// errorCode returns the error member of an OAuth error body, or the code
// on the error page.
func (r reply) errorCode() string {
	if m := errorPage.FindSubmatch(r.Body); m != nil {
		return string(m[1])
	}
	return r.str("error")
}

// errorDescription returns the error_description of an OAuth error body,
// or the description on the error page.
func (r reply) errorDescription() string {
	if m := errorPage.FindSubmatch(r.Body); m != nil {
		return string(m[2])
	}
	return r.str("error_description")
}

func (r reply) String() string { return fmt.Sprintf("%d %s", r.Status, r.Body) }

// agent is one user agent and OAuth client: a cookie jar shared by every
// replica (they are one host to it), redirects not followed, requests
// bounded in time.
type agent struct {
	c *http.Client
	// onRequest, if set, is called before each request.
	onRequest func()
}

func newAgent() *agent {
	jar, _ := cookiejar.New(nil)
	return &agent{c: &http.Client{
		Jar:           jar,
		Timeout:       15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (a *agent) do(req *http.Request) (reply, error) {
	if a.onRequest != nil {
		a.onRequest()
	}
	resp, err := a.c.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: body}, err
}

func (a *agent) get(u string) (reply, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return reply{}, err
	}
	return a.do(req)
}

// postForm posts a form, with HTTP Basic credentials if basic is id and
// secret.
func (a *agent) postForm(u string, form url.Values, basic ...string) (reply, error) {
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if len(basic) == 2 {
		req.SetBasicAuth(url.QueryEscape(basic[0]), url.QueryEscape(basic[1]))
	}
	return a.do(req)
}

func (a *agent) postJSON(u string, v any) (reply, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return reply{}, err
	}
	req, err := http.NewRequest(http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	return a.do(req)
}

// bearer calls /mcp with an access token.
func (a *agent) bearer(base, token string) (reply, error) {
	req, err := http.NewRequest(http.MethodGet, base+"/mcp", nil)
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return a.do(req)
}

// register registers a client through /register of base.
func (a *agent) register(base string, meta map[string]any) (id, secret string, err error) {
	r, err := a.postJSON(base+"/register", meta)
	if err != nil {
		return "", "", err
	}
	if r.Status != http.StatusCreated {
		return "", "", fmt.Errorf("register: %s", r)
	}
	return r.str("client_id"), r.str("client_secret"), nil
}

// publicCodeClient is the metadata of a public client of the code flow.
func publicCodeClient() map[string]any {
	return map[string]any{
		"redirect_uris": []string{clusterRedirect}, "grant_types": []string{"authorization_code", "refresh_token"},
		"token_endpoint_auth_method": "none", "client_name": "replica test",
	}
}

// authorizeURL is a valid authorization request of clientID at base.
func authorizeURL(base, clientID string) string {
	return base + "/authorize?" + url.Values{
		"client_id": {clientID}, "redirect_uri": {clusterRedirect}, "response_type": {"code"},
		"code_challenge": {pkce.Challenge(clusterVerifier)}, "code_challenge_method": {"S256"},
		"scope": {clusterScope}, "resource": {clusterResource}, "state": {"s"},
	}.Encode()
}

// onReplica rewrites an absolute URL of the shared issuer to base.
func onReplica(base, u string) (string, error) {
	p, err := url.Parse(u)
	if err != nil {
		return "", err
	}
	return base + p.RequestURI(), nil
}

// codeVia runs the authorization step by step, each step on the replica
// named for it: /authorize, the consent page, the decision. It returns the
// authorization code; or, with a nil error, the first reply that was not a
// success: an error status, or a redirect to the client carrying an error
// (see redirectError); or a transport error.
func (a *agent) codeVia(clientID string, authorize, consent, decide *replica) (string, reply, error) {
	r, err := a.get(authorizeURL(authorize.base, clientID))
	if err != nil || r.Status != http.StatusFound || redirectError(r) != "" {
		return "", r, err
	}
	page, err := onReplica(consent.base, r.Header.Get("Location"))
	if err != nil {
		return "", r, err
	}
	if r, err = a.get(page); err != nil || r.Status != http.StatusOK {
		return "", r, err
	}
	var p mcpoauth.PendingAuthorization
	if err := json.Unmarshal(r.Body, &p); err != nil {
		return "", r, err
	}
	r, err = a.postForm(decide.base+"/consent", url.Values{
		"request_id": {p.RequestID}, "csrf_token": {p.CSRFToken}, "decision": {"approve"}, "username": {"alice"},
	})
	if err != nil || r.Status != http.StatusSeeOther || redirectError(r) != "" {
		return "", r, err
	}
	loc, err := url.Parse(r.Header.Get("Location"))
	if err != nil {
		return "", r, err
	}
	code := loc.Query().Get("code")
	if code == "" {
		return "", r, fmt.Errorf("no code in %q", loc.Redacted())
	}
	return code, r, nil
}

// redirectError returns the error parameter of a redirect to the client's
// redirect URI (OAuth 2.1 §4.1.2.1), "" for any other reply. An error
// about the authorization request after the client and its redirect URI
// were verified, server_error included, goes there.
func redirectError(r reply) string {
	loc, err := url.Parse(r.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), clusterRedirect) {
		return ""
	}
	return loc.Query().Get("error")
}

// exchangeForm redeems code for a public client.
func exchangeForm(clientID, code string) url.Values {
	return url.Values{
		"grant_type": {"authorization_code"}, "client_id": {clientID}, "code": {code},
		"code_verifier": {clusterVerifier}, "redirect_uri": {clusterRedirect}, "resource": {clusterResource},
	}
}

// refreshForm rotates a public client's refresh token.
func refreshForm(clientID, refresh string) url.Values {
	return url.Values{"grant_type": {"refresh_token"}, "client_id": {clientID}, "refresh_token": {refresh}}
}

// digest is the SHA-256 digest under which the model stores a credential.
func digest(credential string) []byte {
	d := sha256.Sum256([]byte(credential))
	return d[:]
}
