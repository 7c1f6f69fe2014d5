package integration_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/bearer"
	"github.com/mcpoauth/mcpoauth/metadata"
)

// liveServer runs the library on a loopback port, as an MCP server embeds
// it: Router at the root, a consent page (GET /consent answers the pending
// request as JSON), a device verification page (GET /activate answers the
// page's data as JSON; POST /activate/approve and /activate/deny are the
// library's handlers), the MCP endpoint behind bearer auth. Its issuer is
// the server's own http://127.0.0.1:PORT.
type liveServer struct {
	*httptest.Server
	issuer, resource string
	srv              *mcpoauth.OAuthServer
}

func newLiveServer(t *testing.T, mutate ...func(issuer string, c *mcpoauth.Config)) *liveServer {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	issuer := "http://" + ts.Listener.Addr().String()
	ls := &liveServer{Server: ts, issuer: issuer, resource: issuer + "/mcp"}
	cfg := mcpoauth.Config{
		Issuer:            issuer,
		AuthorizationURL:  issuer + "/consent",
		ResourceServerURL: ls.resource,
		ScopesSupported:   []string{testScope},
	}
	for _, m := range mutate {
		m(issuer, &cfg)
	}
	obs := newObserver()
	obs.install(&cfg)
	t.Cleanup(func() { obs.checkNoCredentials(t) })
	srv, err := mcpoauth.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	ls.srv = srv
	mux := newTestMux(srv, "POST /consent")
	mux.HandleFunc("GET /activate", func(w http.ResponseWriter, r *http.Request) {
		page := devicePage{CSRFToken: srv.DeviceFormToken(w, r)}
		if p, err := srv.PendingDeviceAuthorization(r, r.URL.Query().Get(mcpoauth.FormUserCode)); err == nil {
			page.Pending = p
		}
		_ = json.NewEncoder(w).Encode(page)
	})
	mux.Handle("POST /activate/approve", srv.ApproveDeviceAuthorizationHandler(testSignIn))
	mux.Handle("POST /activate/deny", srv.DenyDeviceAuthorizationHandler(testSignIn))
	mux.Handle("/mcp", srv.RequireBearerAuth(testScope)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, _ := bearer.FromContext(r.Context())
		_ = json.NewEncoder(w).Encode(map[string]string{"user": info.UserID, "client": info.ClientID})
	})))
	ts.Config.Handler = obs.tap(mux)
	ts.Start()
	t.Cleanup(ts.Close)
	return ls
}

// userAgent is a browser: a cookie jar, redirects not followed.
func userAgent(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// openConsent opens the authorization URL in ua, follows it to the consent
// page and returns the page's URL and the pending request it shows.
func openConsent(t *testing.T, ua *http.Client, authURL string) (string, mcpoauth.PendingAuthorization) {
	t.Helper()
	resp, err := ua.Get(authURL)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	consent := resp.Header.Get("Location")
	resp, err = ua.Get(consent)
	require.NoError(t, err)
	defer resp.Body.Close()
	var p mcpoauth.PendingAuthorization
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&p))
	return consent, p
}

// registerLive registers a client at the registration endpoint over
// loopback and returns its credentials.
func registerLive(t *testing.T, endpoint string, meta map[string]any) (id, secret string) {
	t.Helper()
	body, err := json.Marshal(meta)
	require.NoError(t, err)
	resp, err := http.Post(endpoint, "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	var reg struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&reg))
	return reg.ClientID, reg.ClientSecret
}

// liveClientCase is how a client of the x/oauth2 flows authenticates: the
// token_endpoint_auth_method it registers (none registered when empty) and
// where x/oauth2 puts its secret.
type liveClientCase struct {
	name       string
	authMethod string
	style      oauth2.AuthStyle
}

// register registers a client with meta and tc's auth method over loopback,
// and returns its x/oauth2 configuration for endpoint, asking for testScope.
func (tc liveClientCase) register(t *testing.T, registrationEndpoint string, meta map[string]any, endpoint oauth2.Endpoint) *oauth2.Config {
	t.Helper()
	if tc.authMethod != "" {
		meta["token_endpoint_auth_method"] = tc.authMethod
	}
	id, secret := registerLive(t, registrationEndpoint, meta)
	endpoint.AuthStyle = tc.style
	return &oauth2.Config{ClientID: id, ClientSecret: secret, Endpoint: endpoint, Scopes: []string{testScope}}
}

// signIn plays the user: open the authorization URL, read the consent page,
// approve. It returns the redirect the client receives.
func signIn(t *testing.T, authURL string) *url.URL {
	t.Helper()
	ua := userAgent(t)
	consent, p := openConsent(t, ua, authURL)
	return approveConsent(t, ua, consent, p)
}

// approveConsent signs alice in on the consent page and approves p. It
// returns the redirect the client receives.
func approveConsent(t *testing.T, ua *http.Client, consent string, p mcpoauth.PendingAuthorization) *url.URL {
	t.Helper()
	u, _ := url.Parse(consent)
	u.RawQuery = ""
	resp, err := ua.PostForm(u.String(), url.Values{"request_id": {p.RequestID}, "csrf_token": {p.CSRFToken}, "decision": {"approve"}, "username": {"alice"}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	return loc
}

// TestIntegrationOAuth2Client drives the real router over loopback with
// golang.org/x/oauth2 as the client: DCR, authorize, consent, token, bearer
// call, refresh, revoke; for a public client and for a confidential one
// authenticating with HTTP Basic.
func TestIntegrationOAuth2Client(t *testing.T) {
	for _, tc := range []liveClientCase{
		{"public client", "none", oauth2.AuthStyleInParams},
		{"client_secret_basic", "client_secret_basic", oauth2.AuthStyleInHeader},
		{"client_secret_post", "client_secret_post", oauth2.AuthStyleInParams},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ls := newLiveServer(t)
			ctx := context.Background()

			// Discovery: the 401 names the protected resource metadata.
			resp, err := http.Get(ls.resource)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			prmURL := ls.issuer + "/.well-known/oauth-protected-resource/mcp"
			require.Contains(t, resp.Header.Get("WWW-Authenticate"), `resource_metadata="`+prmURL+`"`)
			var prm struct {
				Resource             string   `json:"resource"`
				AuthorizationServers []string `json:"authorization_servers"`
			}
			getJSON(t, prmURL, &prm)
			require.Equal(t, ls.resource, prm.Resource)
			var meta struct {
				Issuer, AuthorizationEndpoint, TokenEndpoint, RegistrationEndpoint, RevocationEndpoint string
			}
			getJSON(t, prm.AuthorizationServers[0]+"/.well-known/oauth-authorization-server", &struct {
				Issuer                *string `json:"issuer"`
				AuthorizationEndpoint *string `json:"authorization_endpoint"`
				TokenEndpoint         *string `json:"token_endpoint"`
				RegistrationEndpoint  *string `json:"registration_endpoint"`
				RevocationEndpoint    *string `json:"revocation_endpoint"`
			}{&meta.Issuer, &meta.AuthorizationEndpoint, &meta.TokenEndpoint, &meta.RegistrationEndpoint, &meta.RevocationEndpoint})
			require.Equal(t, ls.issuer, meta.Issuer)

			// DCR.
			redirectURI := "http://127.0.0.1/callback"
			cfg := tc.register(t, meta.RegistrationEndpoint, map[string]any{
				"redirect_uris": []string{redirectURI}, "grant_types": []string{"authorization_code", "refresh_token"},
				"client_name": "x/oauth2 test", "application_type": "native",
			}, oauth2.Endpoint{AuthURL: meta.AuthorizationEndpoint, TokenURL: meta.TokenEndpoint})
			cfg.RedirectURL = "http://127.0.0.1:43210/callback" // any loopback port (RFC 8252 §7.3)
			verifier := oauth2.GenerateVerifier()
			resourceOpt := oauth2.SetAuthURLParam("resource", ls.resource)
			loc := signIn(t, cfg.AuthCodeURL("st4te", oauth2.S256ChallengeOption(verifier), resourceOpt))
			require.Equal(t, "st4te", loc.Query().Get("state"))
			require.Equal(t, ls.issuer, loc.Query().Get("iss"))

			tok, err := cfg.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier), resourceOpt)
			require.NoError(t, err)
			require.Equal(t, "Bearer", tok.TokenType)
			require.NotEmpty(t, tok.RefreshToken)

			whoami := func(tok *oauth2.Token) int {
				code, who := ls.whoami(t, cfg.Client(ctx, tok))
				if code == http.StatusOK {
					require.Equal(t, map[string]string{"user": "alice", "client": cfg.ClientID}, who)
				}
				return code
			}
			require.Equal(t, http.StatusOK, whoami(tok))

			// Refresh as x/oauth2 does it: no resource parameter.
			stale := &oauth2.Token{RefreshToken: tok.RefreshToken}
			refreshed, err := cfg.TokenSource(ctx, stale).Token()
			require.NoError(t, err)
			require.NotEqual(t, tok.RefreshToken, refreshed.RefreshToken)
			require.Equal(t, http.StatusOK, whoami(refreshed))

			// Revoke the refresh token: the whole grant goes.
			form := url.Values{"token": {refreshed.RefreshToken}, "token_type_hint": {"refresh_token"}}
			if tc.authMethod != "client_secret_basic" {
				form.Set("client_id", cfg.ClientID)
				if cfg.ClientSecret != "" {
					form.Set("client_secret", cfg.ClientSecret)
				}
			}
			req, _ := http.NewRequest(http.MethodPost, meta.RevocationEndpoint, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.authMethod == "client_secret_basic" {
				req.SetBasicAuth(url.QueryEscape(cfg.ClientID), url.QueryEscape(cfg.ClientSecret))
			}
			resp, err = http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, http.StatusUnauthorized, whoami(refreshed))
			_, err = cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshed.RefreshToken}).Token()
			var re *oauth2.RetrieveError
			require.ErrorAs(t, err, &re)
			require.Equal(t, "invalid_grant", re.ErrorCode)
		})
	}
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, u)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
}

// newGrantsLiveServer is a liveServer with every grant on and rate limits
// at their defaults. The poll interval is one second, the least RFC 8628
// can express, because golang.org/x/oauth2 waits it out in real time.
func newGrantsLiveServer(t *testing.T) *liveServer {
	t.Helper()
	return newLiveServer(t, func(issuer string, c *mcpoauth.Config) {
		c.GrantTypes = []string{mcpoauth.GrantAuthorizationCode, mcpoauth.GrantRefreshToken, mcpoauth.GrantClientCredentials, mcpoauth.GrantDeviceCode}
		c.DeviceAuthorizationURL = issuer + "/activate"
		c.DevicePollInterval = time.Second
	})
}

// asMetadata is the part of the RFC 8414 document these tests use.
type asMetadata struct {
	TokenEndpoint               string   `json:"token_endpoint"`
	RegistrationEndpoint        string   `json:"registration_endpoint"`
	DeviceAuthorizationEndpoint string   `json:"device_authorization_endpoint"`
	GrantTypesSupported         []string `json:"grant_types_supported"`
	AuthMethods                 []string `json:"token_endpoint_auth_methods_supported"`
}

func (ls *liveServer) metadata(t *testing.T) asMetadata {
	t.Helper()
	var m asMetadata
	getJSON(t, ls.issuer+"/.well-known/oauth-authorization-server", &m)
	return m
}

// whoami calls the MCP endpoint with c and returns the status and the
// identity the token carries.
func (ls *liveServer) whoami(t *testing.T, c *http.Client) (int, map[string]string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, ls.resource, nil)
	require.NoError(t, err)
	return callWhoami(t, c, req)
}

// callWhoami sends req to an MCP endpoint that answers with the identity
// the token carries, and returns the status and, on 200, that identity.
func callWhoami(t *testing.T, c *http.Client, req *http.Request) (int, map[string]string) {
	t.Helper()
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var who map[string]string
	if resp.StatusCode == http.StatusOK {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&who))
	}
	return resp.StatusCode, who
}

// TestIntegrationDeviceFlow drives the RFC 8628 flow over loopback with
// golang.org/x/oauth2 as the device (Config.DeviceAuth, then
// DeviceAccessToken polling at the advertised interval) and a browser on
// the verification page: for a public client, and for a confidential one
// that authenticates with HTTP Basic at the token endpoint. x/oauth2's
// DeviceAuth can send a secret only in the body, so that client registers
// no token_endpoint_auth_method, which lets it use both (RFC 7591 §2 binds
// a client that names one to it).
func TestIntegrationDeviceFlow(t *testing.T) {
	for _, tc := range []liveClientCase{
		{"public client", "none", oauth2.AuthStyleInParams},
		{"confidential, HTTP Basic at the token endpoint", "", oauth2.AuthStyleInHeader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ls := newGrantsLiveServer(t)
			ctx := context.Background()
			meta := ls.metadata(t)
			require.Equal(t, ls.issuer+"/device", meta.DeviceAuthorizationEndpoint)
			require.Contains(t, meta.GrantTypesSupported, mcpoauth.GrantDeviceCode)

			cfg := tc.register(t, meta.RegistrationEndpoint,
				map[string]any{"grant_types": []string{mcpoauth.GrantDeviceCode, "refresh_token"}, "client_name": "Living room TV"},
				oauth2.Endpoint{DeviceAuthURL: meta.DeviceAuthorizationEndpoint, TokenURL: meta.TokenEndpoint})
			opts := []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("resource", ls.resource)}
			if cfg.ClientSecret != "" {
				// DeviceAuth sends only client_id; a confidential client
				// adds its secret in the body (client_secret_post).
				opts = append(opts, oauth2.SetAuthURLParam("client_secret", cfg.ClientSecret))
			}
			da, err := cfg.DeviceAuth(ctx, opts...)
			require.NoError(t, err)
			require.EqualValues(t, 1, da.Interval)
			require.Equal(t, ls.issuer+"/activate", da.VerificationURI)

			// The user opens verification_uri_complete, sees who asks for
			// what, and approves, typing the code their own way.
			ua := userAgent(t)
			resp, err := ua.Get(da.VerificationURIComplete)
			require.NoError(t, err)
			var page devicePage
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&page))
			resp.Body.Close()
			require.NotNil(t, page.Pending)
			require.Equal(t, "Living room TV", page.Pending.ClientName)
			require.Equal(t, []string{testScope}, page.Pending.Scopes)
			resp, err = ua.PostForm(ls.issuer+"/activate/approve", url.Values{
				"user_code":  {strings.ToLower(strings.ReplaceAll(da.UserCode, "-", ""))},
				"csrf_token": {page.CSRFToken},
				"username":   {"alice"},
			})
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusSeeOther, resp.StatusCode)
			require.Equal(t, ls.issuer+"/activate?result=approved", resp.Header.Get("Location"))

			tok, err := cfg.DeviceAccessToken(ctx, da)
			require.NoError(t, err)
			require.Equal(t, "Bearer", tok.TokenType)
			require.NotEmpty(t, tok.RefreshToken)
			status, who := ls.whoami(t, cfg.Client(ctx, tok))
			require.Equal(t, http.StatusOK, status)
			require.Equal(t, map[string]string{"user": "alice", "client": cfg.ClientID}, who)

			// Refresh as x/oauth2 does it: no resource parameter.
			refreshed, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
			require.NoError(t, err)
			status, _ = ls.whoami(t, cfg.Client(ctx, refreshed))
			require.Equal(t, http.StatusOK, status)
		})
	}
}

// TestIntegrationDeviceFlowDenied: the device learns access_denied.
func TestIntegrationDeviceFlowDenied(t *testing.T) {
	t.Parallel()
	ls := newGrantsLiveServer(t)
	ctx := context.Background()
	meta := ls.metadata(t)
	info, err := ls.srv.RegisterClient(ctx, metadata.ClientInformation{ClientID: "tv", ClientMetadata: metadata.ClientMetadata{
		GrantTypes: []string{mcpoauth.GrantDeviceCode}, TokenEndpointAuthMethod: "none",
	}})
	require.NoError(t, err)
	cfg := &oauth2.Config{ClientID: info.ClientID, Endpoint: oauth2.Endpoint{DeviceAuthURL: meta.DeviceAuthorizationEndpoint, TokenURL: meta.TokenEndpoint, AuthStyle: oauth2.AuthStyleInParams}}
	da, err := cfg.DeviceAuth(ctx, oauth2.SetAuthURLParam("resource", ls.resource))
	require.NoError(t, err)
	ua := userAgent(t)
	resp, err := ua.Get(ls.issuer + "/activate")
	require.NoError(t, err)
	var page devicePage
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&page))
	resp.Body.Close()
	resp, err = ua.PostForm(ls.issuer+"/activate/deny", url.Values{"user_code": {da.UserCode}, "csrf_token": {page.CSRFToken}, "username": {"bob"}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, ls.issuer+"/activate?result=denied", resp.Header.Get("Location"))

	_, err = cfg.DeviceAccessToken(ctx, da)
	var re *oauth2.RetrieveError
	require.ErrorAs(t, err, &re)
	require.Equal(t, "access_denied", re.ErrorCode)
}

// TestIntegrationClientCredentials drives the MCP client-credentials
// extension with golang.org/x/oauth2/clientcredentials, with each auth
// style, against pre-registered clients (the extension's credentials are
// pre-registered): a token with no user and no refresh
// token, accepted by the MCP endpoint; resource sent or omitted (the MCP Go
// SDK omits it).
func TestIntegrationClientCredentials(t *testing.T) {
	ls := newGrantsLiveServer(t)
	ctx := context.Background()
	meta := ls.metadata(t)
	require.Contains(t, meta.GrantTypesSupported, mcpoauth.GrantClientCredentials)
	require.Subset(t, meta.AuthMethods, []string{"client_secret_basic", "client_secret_post"})
	for _, tc := range []struct {
		authMethod string
		style      oauth2.AuthStyle
		params     url.Values
	}{
		{"client_secret_basic", oauth2.AuthStyleInHeader, nil},
		{"client_secret_post", oauth2.AuthStyleInParams, url.Values{"resource": {ls.resource}}},
	} {
		t.Run(tc.authMethod, func(t *testing.T) {
			info, err := ls.srv.RegisterClient(ctx, metadata.ClientInformation{ClientID: "batch-" + tc.authMethod, ClientMetadata: metadata.ClientMetadata{
				GrantTypes: []string{mcpoauth.GrantClientCredentials}, TokenEndpointAuthMethod: tc.authMethod,
			}})
			require.NoError(t, err)
			require.NotEmpty(t, info.ClientSecret)
			cc := clientcredentials.Config{
				ClientID:       info.ClientID,
				ClientSecret:   info.ClientSecret,
				TokenURL:       meta.TokenEndpoint,
				Scopes:         []string{testScope},
				EndpointParams: tc.params,
				AuthStyle:      tc.style,
			}
			tok, err := cc.Token(ctx)
			require.NoError(t, err)
			require.Empty(t, tok.RefreshToken)
			require.Equal(t, testScope, tok.Extra("scope"))
			status, who := ls.whoami(t, cc.Client(ctx))
			require.Equal(t, http.StatusOK, status)
			require.Equal(t, map[string]string{"user": "", "client": info.ClientID}, who)

			wrong := cc
			wrong.ClientSecret = "wrong"
			_, err = wrong.Token(ctx)
			var re *oauth2.RetrieveError
			require.ErrorAs(t, err, &re)
			require.Equal(t, "invalid_client", re.ErrorCode)
		})
	}
}
