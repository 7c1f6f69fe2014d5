// Package benchapp wires mcpoauth for load tests: the load server
// (bench/server) and the in-process benchmarks (integration/bench_test.go) serve the same
// handler, so a figure from one can be compared with the other.
//
// It is benchmark plumbing, not an example to copy: rate limits are off and
// every authorization request is approved for one fixed user.
//
// Routes, under the base URL http://HOST:PORT:
//
//	GET  /hello     a bare handler answering "hello\n"
//	     /mcp       the same handler behind RequireBearerAuth (scope mcp:tools,
//	                resource <base>/mcp)
//	POST /consent   the consent page, auto-approving: it takes the query of
//	                the URL /authorize redirected to (request_id=...) POSTed
//	                back as a form with the browser cookie, looks the pending
//	                request up as a consent page does, and submits the approval
//	                to AuthenticateHandler, which redirects to the client with
//	                a code
//	     /...       the authorization server's Router: /authorize, /token,
//	                /register, /revoke, /device, metadata
package benchapp

import (
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/mcpoauth/mcpoauth"
)

// Fixed parameters of the benchmark deployment.
const (
	// Scope is the one scope the server supports and /mcp requires.
	Scope = "mcp:tools"
	// User is the user every authorization is approved for.
	User = "bench-user"
	// RedirectURI is the redirect URI of the login clients (a loopback
	// address: any port matches, RFC 8252 §7.3).
	RedirectURI = "http://127.0.0.1/callback"
	// Verifier is the PKCE code verifier every login uses; Challenge is its
	// S256 challenge.
	Verifier  = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	Challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
)

// App is the benchmark deployment.
type App struct {
	// Server is the authorization server.
	Server *mcpoauth.OAuthServer
	// Handler serves every route.
	Handler http.Handler
	// Base is the base URL (the issuer), Resource the MCP resource.
	Base, Resource string

	decide http.Handler
}

var hello = []byte("hello\n")

// Hello is the bare handler: it answers "hello\n".
func Hello(w http.ResponseWriter, _ *http.Request) {
	w.Header()["Content-Type"] = []string{"text/plain; charset=utf-8"}
	_, _ = w.Write(hello)
}

// New builds the deployment at base (http://HOST:PORT). A nil model means
// the server's default MemoryModel; options adjust the Config (benchmarks
// of telemetry install providers).
func New(base string, model mcpoauth.Model, options ...func(*mcpoauth.Config)) (*App, error) {
	a := &App{Base: base, Resource: base + "/mcp"}
	cfg := mcpoauth.Config{
		Model:             model,
		Issuer:            base,
		AuthorizationURL:  base + "/consent",
		ResourceServerURL: a.Resource,
		ScopesSupported:   []string{Scope},
		GrantTypes: []string{
			mcpoauth.GrantAuthorizationCode, mcpoauth.GrantRefreshToken,
			mcpoauth.GrantClientCredentials, mcpoauth.GrantDeviceCode,
		},
		// The device page is not served: benchmarks approve device
		// authorizations through the Model.
		DeviceAuthorizationURL: base + "/activate",
		RateLimits:             mcpoauth.RateLimits{Disabled: true},
		// The load tool registers its machine clients at /register, so
		// this policy opts in to client_credentials there, which the
		// default refuses. A real deployment pre-registers machine
		// clients instead.
		RegistrationPolicy: func(reg *mcpoauth.Registration) error {
			reg.AllowClientCredentials = true
			return nil
		},
		Logger: slog.New(slog.DiscardHandler),
	}
	for _, o := range options {
		o(&cfg)
	}
	srv, err := mcpoauth.New(cfg)
	if err != nil {
		return nil, err
	}
	a.Server = srv
	a.decide = srv.AuthenticateHandler(func(*http.Request) (string, error) { return User, nil })
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", Hello)
	mux.Handle("/mcp", srv.RequireBearerAuth(Scope)(http.HandlerFunc(Hello)))
	mux.HandleFunc("POST /consent", a.consent)
	mux.HandleFunc("GET /floor/authorize", a.floorAuthorize)
	mux.HandleFunc("POST /floor/consent", a.floorConsent)
	mux.HandleFunc("POST /floor/token", floorToken)
	mux.Handle("/", srv.Router())
	a.Handler = mux
	return a, nil
}

// Close releases the server.
func (a *App) Close() error { return a.Server.Close() }

// consent is the auto-approving consent page. It does what a real one does
// on its two requests (render: PendingAuthorization; submit: the decision
// form), in one.
func (a *App) consent(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4<<10))
	if err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	id := form.Get(mcpoauth.FormRequestID)
	// The consent page's render step: PendingAuthorization reads the
	// request id from the page URL's query.
	page := *r.URL
	page.RawQuery = mcpoauth.FormRequestID + "=" + url.QueryEscape(id)
	rp := new(http.Request)
	*rp = *r
	rp.URL = &page
	p, err := a.Server.PendingAuthorization(rp)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// The submit step: the approval form, posted to AuthenticateHandler.
	decision := mcpoauth.FormRequestID + "=" + url.QueryEscape(id) +
		"&" + mcpoauth.FormCSRFToken + "=" + url.QueryEscape(p.CSRFToken) +
		"&" + mcpoauth.FormDecision + "=" + mcpoauth.DecisionApprove
	rd := new(http.Request)
	*rd = *r
	rd.Body = io.NopCloser(strings.NewReader(decision))
	rd.ContentLength = int64(len(decision))
	rd.Form, rd.PostForm = nil, nil
	a.decide.ServeHTTP(w, rd)
}

// AuthorizeQuery is the query of a valid authorization request of a public
// login client.
func (a *App) AuthorizeQuery(clientID string) string {
	return url.Values{
		"client_id":             {clientID},
		"redirect_uri":          {RedirectURI},
		"response_type":         {"code"},
		"code_challenge":        {Challenge},
		"code_challenge_method": {"S256"},
		"scope":                 {Scope},
		"resource":              {a.Resource},
		"state":                 {"bench-state"},
	}.Encode()
}

// ExchangeForm is the token request redeeming code for a public login
// client.
func (a *App) ExchangeForm(clientID, code string) string {
	return url.Values{
		"grant_type":    {"authorization_code"},
		"client_id":     {clientID},
		"code":          {code},
		"code_verifier": {Verifier},
		"redirect_uri":  {RedirectURI},
		"resource":      {a.Resource},
	}.Encode()
}

// ClientCredentialsForm is the body of a client_credentials token request
// (the client authenticates with HTTP Basic), as the MCP Go SDK sends it.
const ClientCredentialsForm = "grant_type=client_credentials&scope=mcp%3Atools"

// ConfidentialClientJSON registers a client_credentials client
// (client_secret_basic).
const ConfidentialClientJSON = `{"client_name":"bench machine client","grant_types":["client_credentials"],"token_endpoint_auth_method":"client_secret_basic","scope":"mcp:tools"}`

// PublicClientJSON registers a public authorization-code client, as MCP
// clients register themselves.
const PublicClientJSON = `{"client_name":"bench login client","redirect_uris":["` + RedirectURI + `"],"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"token_endpoint_auth_method":"none","scope":"mcp:tools"}`
