package integration_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
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

// newGrantsLiveServer runs the library on a loopback port with every grant
// on, rate limits at their defaults, a device verification page (GET
// /activate answers the page's data as JSON; POST /activate/approve and
// /activate/deny are the library's handlers) and the MCP endpoint behind
// bearer auth. The poll
// interval is one second, the least RFC 8628 can express, because
// golang.org/x/oauth2 waits it out in real time.
func newGrantsLiveServer(t *testing.T) *liveServer {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	issuer := "http://" + ts.Listener.Addr().String()
	ls := &liveServer{Server: ts, issuer: issuer, resource: issuer + "/mcp"}
	srv, err := mcpoauth.New(mcpoauth.Config{
		Issuer:                 issuer,
		AuthorizationURL:       issuer + "/consent",
		ResourceServerURL:      ls.resource,
		ScopesSupported:        []string{testScope},
		GrantTypes:             []string{mcpoauth.GrantAuthorizationCode, mcpoauth.GrantRefreshToken, mcpoauth.GrantClientCredentials, mcpoauth.GrantDeviceCode},
		DeviceAuthorizationURL: issuer + "/activate",
		DevicePollInterval:     time.Second,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	ls.srv = srv
	mux := http.NewServeMux()
	mux.Handle("/", srv.Router())
	mux.HandleFunc("GET /activate", func(w http.ResponseWriter, r *http.Request) {
		page := devicePage{CSRFToken: srv.DeviceFormToken(w, r)}
		if p, err := srv.PendingDeviceAuthorization(r, r.URL.Query().Get(mcpoauth.FormUserCode)); err == nil {
			page.Pending = p
		}
		_ = json.NewEncoder(w).Encode(page)
	})
	getUser := func(r *http.Request) (string, error) {
		if u := r.PostFormValue("username"); u != "" {
			return u, nil
		}
		return "", errors.New("not signed in")
	}
	mux.Handle("POST /activate/approve", srv.ApproveDeviceAuthorizationHandler(getUser))
	mux.Handle("POST /activate/deny", srv.DenyDeviceAuthorizationHandler(getUser))
	mux.Handle("/mcp", srv.RequireBearerAuth(testScope)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, _ := bearer.FromContext(r.Context())
		_ = json.NewEncoder(w).Encode(map[string]string{"user": info.UserID, "client": info.ClientID})
	})))
	ts.Config.Handler = mux
	ts.Start()
	t.Cleanup(ts.Close)
	return ls
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
	resp, err := c.Get(ls.resource)
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
	for _, tc := range []struct {
		name       string
		authMethod string
		style      oauth2.AuthStyle
	}{
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

			clientMeta := map[string]any{"grant_types": []string{mcpoauth.GrantDeviceCode, "refresh_token"}, "client_name": "Living room TV"}
			if tc.authMethod != "" {
				clientMeta["token_endpoint_auth_method"] = tc.authMethod
			}
			body, _ := json.Marshal(clientMeta)
			resp, err := http.Post(meta.RegistrationEndpoint, "application/json", bytes.NewReader(body))
			require.NoError(t, err)
			require.Equal(t, http.StatusCreated, resp.StatusCode)
			var reg struct {
				ClientID     string `json:"client_id"`
				ClientSecret string `json:"client_secret"`
			}
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&reg))
			resp.Body.Close()

			cfg := &oauth2.Config{
				ClientID:     reg.ClientID,
				ClientSecret: reg.ClientSecret,
				Endpoint:     oauth2.Endpoint{DeviceAuthURL: meta.DeviceAuthorizationEndpoint, TokenURL: meta.TokenEndpoint, AuthStyle: tc.style},
				Scopes:       []string{testScope},
			}
			opts := []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("resource", ls.resource)}
			if reg.ClientSecret != "" {
				// DeviceAuth sends only client_id; a confidential client
				// adds its secret in the body (client_secret_post).
				opts = append(opts, oauth2.SetAuthURLParam("client_secret", reg.ClientSecret))
			}
			da, err := cfg.DeviceAuth(ctx, opts...)
			require.NoError(t, err)
			require.EqualValues(t, 1, da.Interval)
			require.Equal(t, ls.issuer+"/activate", da.VerificationURI)

			// The user opens verification_uri_complete, sees who asks for
			// what, and approves, typing the code their own way.
			ua := userAgent(t)
			resp, err = ua.Get(da.VerificationURIComplete)
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
			require.Equal(t, map[string]string{"user": "alice", "client": reg.ClientID}, who)

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
// pre-registered, spec-checklist 114): a token with no user and no refresh
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
