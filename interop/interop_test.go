// Package interop drives the example server (built and started as its own
// process, as outside tools see it) with real MCP and OAuth clients: the
// official TypeScript MCP SDK and oauth4webapi (interop/ts, Node), the MCP
// Go SDK's own OAuth client, and golang.org/x/oauth2 for client credentials
// and the device flow; and the official MCP conformance suite's
// authorization server scenarios (conformance_test.go); and, through a real
// OpenID provider (oidc-provider) as the example's upstream sign-in, the
// example client, the TypeScript SDK and Chromium (upstream_test.go). The
// TypeScript and oauth4webapi tests need Node and `npm ci` in interop/ts,
// the conformance test `npm ci` in interop/conformance, the upstream tests
// `npm ci` in interop/oidcp (and Chromium for one); they skip without them
// unless MCPOAUTH_REQUIRE_INTEROP=1 (MCPOAUTH_REQUIRE_BROWSER=1). The Go
// tests need nothing else and always run.
package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/auth/extauth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/mcpoauth/mcpoauth/interop/browser"
)

const (
	// flowTimeout bounds one test's whole flow.
	flowTimeout = 90 * time.Second
	// requestTimeout bounds each HTTP request of the Go clients.
	requestTimeout = 15 * time.Second
	scopeTools     = "mcp:tools"
)

// recorder is an http.RoundTripper that remembers the grant_type of every
// token request, so a test can tell a refresh happened, and logs the token
// requests' outcomes.
type recorder struct {
	t      *testing.T
	mu     sync.Mutex
	grants []string
	base   http.RoundTripper
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodPost || !strings.HasSuffix(req.URL.Path, "/token") || req.Body == nil {
		return r.base.RoundTrip(req)
	}
	body, err := io.ReadAll(req.Body)
	_ = req.Body.Close()
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	v, _ := url.ParseQuery(string(body))
	grant := v.Get("grant_type")
	r.mu.Lock()
	r.grants = append(r.grants, grant)
	r.mu.Unlock()
	start := time.Now()
	resp, err := r.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		// Keep the error body for the log and for the caller.
		errBody, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		_ = resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(errBody))
		r.t.Logf("%s token request (params %v) -> %d %s", grant, sortedKeys(v), resp.StatusCode, errBody)
	} else {
		r.t.Logf("%s token request (params %v) -> 200 in %s", grant, sortedKeys(v), time.Since(start).Round(time.Millisecond))
	}
	return resp, nil
}

func sortedKeys(v url.Values) []string {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (r *recorder) grantTypes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.grants)
}

func newRecorder(t *testing.T) *recorder {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return &recorder{t: t, base: tr}
}

// newHTTPClient returns a client with a connection pool of its own, closed
// when the test ends. Cleanups run last-in first-out, so that happens
// before the server started earlier stops: a connection the server has
// accepted but seen no request on would hold its graceful shutdown for 5 s
// (net/http treats such a connection as active that long).
func newHTTPClient(t *testing.T) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Timeout: requestTimeout, Transport: tr}
}

// newBrowser returns a scripted browser whose connections close when the
// test ends.
func newBrowser(t *testing.T) *browser.Browser {
	b := browser.New(requestTimeout)
	t.Cleanup(b.CloseIdleConnections)
	return b
}

// secretCredentials is a client ID and its client secret, as the Go SDK's
// handlers take them.
func secretCredentials(clientID, secret string) *oauthex.ClientCredentials {
	return &oauthex.ClientCredentials{ClientID: clientID, ClientSecretAuth: &oauthex.ClientSecretAuth{ClientSecret: secret}}
}

// whoamiResult is whoami's answer: user, client and scopes of the token.
type whoamiResult struct {
	UserID   string   `json:"user_id"`
	ClientID string   `json:"client_id"`
	Scopes   []string `json:"scopes"`
}

// callWhoami connects an MCP Go SDK client over streamable HTTP with
// transport, lists the tools (whoami among them) and calls whoami.
func callWhoami(t *testing.T, ctx context.Context, transport *mcp.StreamableClientTransport) ([]string, whoamiResult) {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "mcpoauth-interop-go", Version: "0.0.0"}, nil)
	session, err := client.Connect(ctx, transport, nil)
	require.NoError(t, err, "MCP connect")
	defer session.Close()
	var tools []string
	for tool, err := range session.Tools(ctx, nil) {
		require.NoError(t, err, "tools/list")
		tools = append(tools, tool.Name)
	}
	require.Contains(t, tools, "whoami")
	res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}})
	require.NoError(t, err, "tools/call whoami")
	require.False(t, res.IsError, "whoami: %+v", res.Content)
	return tools, parseWhoami(t, res)
}

// parseWhoami reads whoami's structured content, else its text content as
// JSON.
func parseWhoami(t *testing.T, res *mcp.CallToolResult) whoamiResult {
	t.Helper()
	var raw []byte
	if res.StructuredContent != nil {
		b, err := json.Marshal(res.StructuredContent)
		require.NoError(t, err)
		raw = b
	} else {
		for _, c := range res.Content {
			if tc, ok := c.(*mcp.TextContent); ok {
				raw = []byte(tc.Text)
				break
			}
		}
	}
	var w whoamiResult
	require.NoError(t, json.Unmarshal(raw, &w), "whoami answered %s", raw)
	return w
}

// bearerTransport is an MCP transport whose HTTP client sends tokens from
// src.
func bearerTransport(ctx context.Context, mcpURL string, src oauth2.TokenSource) *mcp.StreamableClientTransport {
	hc := oauth2.NewClient(ctx, src)
	hc.Timeout = requestTimeout
	return &mcp.StreamableClientTransport{Endpoint: mcpURL, HTTPClient: hc, DisableStandaloneSSE: true}
}

// TestTypeScriptSDK runs interop/ts/client.mjs: the official TypeScript MCP
// SDK client does discovery, dynamic registration, the authorization code
// flow with PKCE (the consent form submitted by a scripted browser),
// tools/list and whoami, then a forced refresh and whoami again.
func TestTypeScriptSDK(t *testing.T) {
	t.Parallel()
	node := tsNode(t, "@modelcontextprotocol/sdk")
	for name, issuerPath := range map[string]string{"issuer at the root": "", "issuer with a path": "/tenant1"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testTypeScriptSDK(t, node, issuerPath)
		})
	}
}

func testTypeScriptSDK(t *testing.T, node, issuerPath string) {
	s := startServerAt(t, issuerPath)
	ctx := testContext(t, 2*flowTimeout)
	stdout, _ := runScript(t, ctx, node, nil, "client.mjs", s.mcpURL)

	var sum tsClientSummary
	decodeSummary(t, stdout, &sum, "client.mjs")

	assert.True(t, sum.UnauthorizedFirst)
	assert.Equal(t, s.issuer, sum.Issuer)
	assert.Equal(t, s.mcpURL, sum.Resource)
	assert.NotEmpty(t, sum.ClientID)
	assert.False(t, sum.ClientSecretIssued, "a public client gets no secret")
	assert.Equal(t, "none", sum.TokenEndpointAuthMethod)
	assert.Equal(t, "S256", sum.AuthorizationRequest["code_challenge_method"])
	assert.Equal(t, s.mcpURL, sum.AuthorizationRequest["resource"])
	assert.Equal(t, scopeTools, sum.AuthorizationRequest["scope"])
	assert.Equal(t, s.issuer, sum.AuthorizationResponse.Iss)
	assert.True(t, sum.AuthorizationResponse.StateOK)
	assert.Equal(t, "http://127.0.0.1:33418/callback", sum.AuthorizationResponse.RedirectURI)
	assert.True(t, strings.EqualFold(sum.TokenType, "bearer"), sum.TokenType)
	assert.Equal(t, scopeTools, sum.Scope)
	assert.Positive(t, sum.ExpiresIn)
	assert.True(t, sum.HasRefreshToken)
	assert.True(t, sum.Refreshed, "the SDK refreshed the token after the 401")
	assert.True(t, sum.RefreshTokenRotated, "the refresh token is rotated")
	assert.Empty(t, sum.Invalidations, "the SDK never had to throw credentials away")
	assert.Contains(t, sum.Tools, "whoami")

	w, w2 := sum.whoamis(t)
	assert.Equal(t, whoamiResult{UserID: "ts-user", ClientID: sum.ClientID, Scopes: []string{scopeTools}}, w)
	assert.Equal(t, w, w2)

	var grants []string
	for _, tr := range sum.TokenRequests {
		grants = append(grants, tr.GrantType)
		assert.Equal(t, http.StatusOK, tr.Status, "%s", tr.GrantType)
	}
	assert.Equal(t, []string{"authorization_code", "refresh_token"}, grants)
	mcpURL, err := url.Parse(s.mcpURL)
	require.NoError(t, err)
	mcpPath := mcpURL.Path
	require.Len(t, sum.Errors, 2, "the first request and the bogus token")
	prm := "http://" + mcpURL.Host + "/.well-known/oauth-protected-resource" + mcpPath
	// The Bearer challenge first, then the DPoP one (RFC 9449 §7.1: the
	// example server accepts DPoP), as fetch joins the two headers.
	assert.Equal(t, `Bearer resource_metadata="`+prm+`", scope="mcp:tools", DPoP resource_metadata="`+prm+`", scope="mcp:tools", algs="ES256 RS256 PS256 EdDSA"`, sum.Errors[0].WWWAuthenticate)
	assert.Contains(t, sum.Errors[1].WWWAuthenticate, `error="invalid_token"`)
	for _, e := range sum.Errors {
		// The only failures: the 401s that start the sign-in and the
		// refresh.
		assert.Equal(t, http.StatusUnauthorized, e.Status, "%s %s: %s", e.Method, e.Path, e.Body)
		assert.Equal(t, mcpPath, e.Path, "%s %s: %d %s", e.Method, e.Path, e.Status, e.Body)
	}
}

// TestGoSDKAuthorizationCode: the MCP Go SDK's own OAuth client
// (auth.AuthorizationCodeHandler: discovery from the 401, dynamic
// registration, PKCE, resource, RFC 9207 iss check) signs in; its
// AuthorizationCodeFetcher submits the consent form. The token source the
// SDK keeps starts expired, so its first use is a refresh_token grant
// without resource, as x/oauth2 sends it.
func TestGoSDKAuthorizationCode(t *testing.T) {
	t.Parallel()
	for name, issuerPath := range map[string]string{"issuer at the root": "", "issuer with a path": "/tenant1"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testGoSDKAuthorizationCode(t, issuerPath)
		})
	}
}

func testGoSDKAuthorizationCode(t *testing.T, issuerPath string) {
	s := startServerAt(t, issuerPath)
	ctx := testContext(t, flowTimeout)
	rec := newRecorder(t)
	hc := &http.Client{Timeout: requestTimeout, Transport: rec}
	const redirectURI = "http://127.0.0.1:33419/callback" // nothing listens: the browser stops at the redirect
	var fetched []*url.URL
	handler, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{
			Metadata: &oauthex.ClientRegistrationMetadata{
				ClientName:              "mcpoauth interop: MCP Go SDK",
				RedirectURIs:            []string{redirectURI},
				GrantTypes:              []string{"authorization_code", "refresh_token"},
				ResponseTypes:           []string{"code"},
				TokenEndpointAuthMethod: "none",
			},
		},
		RedirectURL:         redirectURI,
		RequestRefreshToken: true,
		Client:              hc,
		AuthorizationCodeFetcher: func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
			u, err := url.Parse(args.URL)
			if err != nil {
				return nil, err
			}
			fetched = append(fetched, u)
			return approveAs(t, "go-sdk-user")(ctx, args)
		},
		NewTokenSource: func(ctx context.Context, cfg *oauth2.Config, tok *oauth2.Token) (oauth2.TokenSource, error) {
			require.NotEmpty(t, tok.RefreshToken, "the SDK asked for a refresh token")
			expired := *tok
			expired.Expiry = time.Now().Add(-time.Minute)
			return cfg.TokenSource(ctx, &expired), nil
		},
	})
	require.NoError(t, err)

	// As a host application would: with the standalone SSE stream.
	tools, w := callWhoami(t, ctx, &mcp.StreamableClientTransport{Endpoint: s.mcpURL, OAuthHandler: handler,
		HTTPClient: newHTTPClient(t)})
	assert.Contains(t, tools, "whoami")
	assert.Equal(t, "go-sdk-user", w.UserID)
	assert.NotEmpty(t, w.ClientID)
	// The SDK adds offline_access because the server metadata lists it
	// (MCP SEP-2207).
	assert.ElementsMatch(t, []string{scopeTools, "offline_access"}, w.Scopes)

	require.Len(t, fetched, 1, "one authorization")
	q := fetched[0].Query()
	assert.Equal(t, "S256", q.Get("code_challenge_method"))
	assert.Equal(t, s.mcpURL, q.Get("resource"))
	assert.ElementsMatch(t, []string{scopeTools, "offline_access"}, strings.Fields(q.Get("scope")), "the SDK's order is not fixed")
	assert.Equal(t, w.ClientID, q.Get("client_id"))
	assert.Equal(t, []string{"authorization_code", "refresh_token"}, rec.grantTypes())
}

// approveAs is the Go SDK's AuthorizationCodeFetcher played by user at the
// browser: it consents to the authorization request and hands the SDK the
// authorization response.
func approveAs(t *testing.T, user string) auth.AuthorizationCodeFetcher {
	return func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
		resp, err := newBrowser(t).Consent(ctx, args.URL, user, browser.Approve)
		if err != nil {
			return nil, err
		}
		code, err := browser.Code(resp)
		if err != nil {
			return nil, err
		}
		q := resp.Query()
		return &auth.AuthorizationResult{Code: code, State: q.Get("state"), Iss: q.Get("iss")}, nil
	}
}

// TestGoSDKPreregisteredClient: the MCP Go SDK's authorization code flow
// with a confidential client pre-registered through -clients (its
// token_endpoint_auth_method omitted, so client_secret_basic by RFC 7591).
// The SDK authenticates with client_secret_post, which it prefers whenever
// the metadata lists it.
func TestGoSDKPreregisteredClient(t *testing.T) {
	t.Parallel()
	clients := writeClients(t, []map[string]any{{
		"client_id": "interop-web", "client_secret": confidentialSecret, "client_name": "interop confidential",
		"redirect_uris": []string{"http://127.0.0.1/callback"},
		"grant_types":   []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
	}})
	s := startServer(t, "-clients", clients)
	ctx := testContext(t, flowTimeout)
	rec := newRecorder(t)
	handler, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		PreregisteredClient:      secretCredentials("interop-web", confidentialSecret),
		RedirectURL:              "http://127.0.0.1:33420/callback",
		Client:                   &http.Client{Timeout: requestTimeout, Transport: rec},
		AuthorizationCodeFetcher: approveAs(t, "web-user"),
	})
	require.NoError(t, err)
	_, w := callWhoami(t, ctx, &mcp.StreamableClientTransport{Endpoint: s.mcpURL, OAuthHandler: handler,
		HTTPClient: newHTTPClient(t), DisableStandaloneSSE: true})
	assert.Equal(t, whoamiResult{UserID: "web-user", ClientID: "interop-web", Scopes: []string{scopeTools}}, w)
	assert.Equal(t, []string{"authorization_code"}, rec.grantTypes())
}

// TestGoSDKClientCredentials: the MCP Go SDK's client credentials handler
// (extauth, the io.modelcontextprotocol/oauth-client-credentials
// extension): discovery from the 401, then a token request without
// resource, authenticated with client_secret_post, which the SDK prefers
// whenever the metadata lists it. The static client names no
// token_endpoint_auth_method, so either secret method is accepted; one
// that named client_secret_basic would be refused (RFC 7591 §2), so an
// operator pre-registering a Go SDK client names client_secret_post or
// nothing.
func TestGoSDKClientCredentials(t *testing.T) {
	t.Parallel()
	s := startServer(t, "-clients", serviceClients(t))
	ctx := testContext(t, flowTimeout)
	rec := newRecorder(t)
	handler, err := extauth.NewClientCredentialsHandler(&extauth.ClientCredentialsHandlerConfig{
		Credentials: secretCredentials("interop-svc", confidentialSecret),
		HTTPClient:  &http.Client{Timeout: requestTimeout, Transport: rec},
	})
	require.NoError(t, err)
	_, w := callWhoami(t, ctx, &mcp.StreamableClientTransport{Endpoint: s.mcpURL, OAuthHandler: handler,
		HTTPClient: newHTTPClient(t)})
	assert.Equal(t, whoamiResult{UserID: "", ClientID: "interop-svc", Scopes: []string{scopeTools}}, w)
	assert.Equal(t, []string{"client_credentials"}, rec.grantTypes())
}

// confidentialSecret needs form-urlencoding before base64 in HTTP Basic
// (RFC 6749 §2.3.1), which x/oauth2 does.
const confidentialSecret = "interop+secret/with:special=chars%and~more-0123456789"

// TestOAuth2ClientCredentials: golang.org/x/oauth2/clientcredentials
// against static confidential clients of -clients, with the secret in the
// Authorization header and in the body, with and without resource, then
// the MCP endpoint with the token.
func TestOAuth2ClientCredentials(t *testing.T) {
	t.Parallel()
	clients := writeClients(t, []map[string]any{
		{"client_id": "interop-basic", "client_secret": confidentialSecret, "client_name": "interop basic",
			"grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "client_secret_basic"},
		{"client_id": "interop-post", "client_secret": confidentialSecret, "client_name": "interop post",
			"grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "client_secret_post"},
	})
	s := startServer(t, "-clients", clients)
	for _, tc := range []struct {
		name, clientID string
		style          oauth2.AuthStyle
		resource       bool
	}{
		{"AuthStyleInHeader", "interop-basic", oauth2.AuthStyleInHeader, true},
		{"AuthStyleInParams", "interop-post", oauth2.AuthStyleInParams, true},
		// The MCP Go SDK's extauth sends no resource.
		{"AuthStyleInHeader without resource", "interop-basic", oauth2.AuthStyleInHeader, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t, flowTimeout)
			ctx = context.WithValue(ctx, oauth2.HTTPClient, newHTTPClient(t))
			cfg := &clientcredentials.Config{
				ClientID:     tc.clientID,
				ClientSecret: confidentialSecret,
				TokenURL:     s.issuer + "/token",
				Scopes:       []string{scopeTools},
				AuthStyle:    tc.style,
			}
			if tc.resource {
				cfg.EndpointParams = url.Values{"resource": {s.mcpURL}}
			}
			tok, err := cfg.Token(ctx)
			require.NoError(t, err)
			assert.Equal(t, "Bearer", tok.Type())
			assert.Equal(t, scopeTools, tok.Extra("scope"))
			assert.Empty(t, tok.RefreshToken, "client credentials issue no refresh token")
			assert.False(t, tok.Expiry.IsZero())

			_, w := callWhoami(t, ctx, bearerTransport(ctx, s.mcpURL, oauth2.StaticTokenSource(tok)))
			assert.Equal(t, whoamiResult{UserID: "", ClientID: tc.clientID, Scopes: []string{scopeTools}}, w)
		})
	}

	t.Run("wrong secret", func(t *testing.T) {
		ctx := testContext(t, flowTimeout)
		ctx = context.WithValue(ctx, oauth2.HTTPClient, newHTTPClient(t))
		cfg := &clientcredentials.Config{ClientID: "interop-basic", ClientSecret: confidentialSecret + "x",
			TokenURL: s.issuer + "/token", AuthStyle: oauth2.AuthStyleInHeader}
		_, err := cfg.Token(ctx)
		var re *oauth2.RetrieveError
		require.ErrorAs(t, err, &re)
		assert.Equal(t, "invalid_client", re.ErrorCode)
		assert.Equal(t, http.StatusUnauthorized, re.Response.StatusCode)
	})
}

// TestOAuth2DeviceFlow: golang.org/x/oauth2's device flow (DeviceAuth with
// resource, the user approving on the device page, DeviceAccessToken
// polling), the MCP endpoint with the token, then a refresh, and the
// rotated refresh token's replay revoking the grant.
func TestOAuth2DeviceFlow(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := testContext(t, flowTimeout)
	rec := newRecorder(t)
	ctx = context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Timeout: requestTimeout, Transport: rec})

	clientID := registerPublicClient(t, ctx, s.issuer, map[string]any{
		"client_name":                "mcpoauth interop: x/oauth2 device",
		"grant_types":                []string{"urn:ietf:params:oauth:grant-type:device_code", "refresh_token"},
		"token_endpoint_auth_method": "none",
	})
	cfg := &oauth2.Config{
		ClientID: clientID,
		Endpoint: oauth2.Endpoint{
			DeviceAuthURL: s.issuer + "/device",
			TokenURL:      s.issuer + "/token",
			AuthStyle:     oauth2.AuthStyleInParams,
		},
		Scopes: []string{scopeTools},
	}
	da, err := cfg.DeviceAuth(ctx, oauth2.SetAuthURLParam("resource", s.mcpURL))
	require.NoError(t, err)
	assert.Equal(t, s.issuer+"/activate", da.VerificationURI)
	assert.True(t, strings.HasPrefix(da.VerificationURIComplete, s.issuer+"/activate?"), da.VerificationURIComplete)
	assert.NotEmpty(t, da.UserCode)

	_, err = newBrowser(t).Device(ctx, da.VerificationURIComplete, "", "device-user", browser.Approve)
	require.NoError(t, err)
	tok, err := cfg.DeviceAccessToken(ctx, da, oauth2.SetAuthURLParam("resource", s.mcpURL))
	require.NoError(t, err)
	assert.Equal(t, "Bearer", tok.Type())
	require.NotEmpty(t, tok.RefreshToken)

	_, w := callWhoami(t, ctx, bearerTransport(ctx, s.mcpURL, oauth2.StaticTokenSource(tok)))
	assert.Equal(t, whoamiResult{UserID: "device-user", ClientID: clientID, Scopes: []string{scopeTools}}, w)

	// Refresh, as x/oauth2's token source does it when the token expires:
	// no resource, no scope.
	expired := *tok
	expired.Expiry = time.Now().Add(-time.Minute)
	refreshed, err := cfg.TokenSource(ctx, &expired).Token()
	require.NoError(t, err)
	assert.NotEqual(t, tok.AccessToken, refreshed.AccessToken)
	assert.NotEqual(t, tok.RefreshToken, refreshed.RefreshToken, "the refresh token is rotated")
	_, w = callWhoami(t, ctx, bearerTransport(ctx, s.mcpURL, oauth2.StaticTokenSource(refreshed)))
	assert.Equal(t, "device-user", w.UserID)

	// A second process refreshing with the same token at once, within the
	// reuse interval, gets a pair of its own and signs nobody out. (A replay
	// after the interval revokes the grant: integration/refresh_reuse_test.go.)
	again, err := cfg.TokenSource(ctx, &expired).Token()
	require.NoError(t, err)
	assert.NotEqual(t, refreshed.AccessToken, again.AccessToken)
	assert.Equal(t, http.StatusOK, mcpStatus(t, ctx, s.mcpURL, again.AccessToken))
	assert.Equal(t, http.StatusOK, mcpStatus(t, ctx, s.mcpURL, refreshed.AccessToken), "the first refresh's tokens still work")

	var deviceGrants int
	for _, g := range rec.grantTypes() {
		if g == "urn:ietf:params:oauth:grant-type:device_code" {
			deviceGrants++
		}
	}
	assert.GreaterOrEqual(t, deviceGrants, 1)
}

// registerPublicClient registers a client through /register and returns its
// id.
func registerPublicClient(t *testing.T, ctx context.Context, issuer string, meta map[string]any) string {
	t.Helper()
	body, err := json.Marshal(meta)
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, issuer+"/register", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := newHTTPClient(t).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", out)
	var info struct {
		ClientID string `json:"client_id"`
	}
	require.NoError(t, json.Unmarshal(out, &info))
	require.NotEmpty(t, info.ClientID)
	return info.ClientID
}

// mcpStatus is the status of an MCP initialize request with token.
func mcpStatus(t *testing.T, ctx context.Context, mcpURL, token string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, mcpURL, strings.NewReader(
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"probe","version":"0"}}}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := newHTTPClient(t).Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// tsNode returns the node in PATH that runs the scripts of interop/ts. It
// skips (or fails under MCPOAUTH_REQUIRE_INTEROP=1) the test without one,
// or without the npm package pkg ("oauth4webapi") the test's script needs.
func tsNode(t *testing.T, pkg string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		requireInterop(t, t.Name()+" needs Node.js 20 or later (node) in PATH")
	}
	if _, err := os.Stat(filepath.Join("ts", "node_modules", filepath.FromSlash(pkg), "package.json")); err != nil {
		requireInterop(t, t.Name()+" needs the npm packages of interop/ts: run `cd interop/ts && npm ci`")
	}
	return node
}

// runScript runs the script of interop/ts with args, and stdin on its
// standard input unless it is nil. It logs the script's stderr and returns
// its output; the test fails if the script does.
func runScript(t *testing.T, ctx context.Context, node string, stdin []byte, script string, args ...string) (stdout, stderr []byte) {
	t.Helper()
	start := time.Now()
	cmd := exec.CommandContext(ctx, node, append([]string{script}, args...)...)
	cmd.Dir = "ts"
	var out, errOut bytes.Buffer
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.WaitDelay = 5 * time.Second
	runErr := cmd.Run()
	t.Logf("%s (%s) stderr:\n%s", script, time.Since(start).Round(time.Millisecond), errOut.String())
	require.NoError(t, runErr, "%s: %s", script, out.String())
	return out.Bytes(), errOut.Bytes()
}

// scriptStatus is what every Node script's summary starts with: ok, or
// the error that stopped it.
type scriptStatus struct {
	OK    bool   `json:"ok"`
	Error string `json:"error"`
}

func (s scriptStatus) status() scriptStatus { return s }

// decodeSummary decodes the JSON summary a Node script prints as its last
// line of output into sum (a struct that embeds scriptStatus), and requires
// that the script says ok.
func decodeSummary(t *testing.T, stdout []byte, sum interface{ status() scriptStatus }, script string) {
	t.Helper()
	out := bytes.TrimSpace(stdout)
	if i := bytes.LastIndexByte(out, '\n'); i >= 0 {
		out = out[i+1:]
	}
	require.NoError(t, json.Unmarshal(out, sum), "%s printed %q", script, stdout)
	st := sum.status()
	require.True(t, st.OK, st.Error)
}

// toolText is a tool call's answer as a Node script reports it.
type toolText struct {
	Text       string          `json:"text"`
	Structured json.RawMessage `json:"structured"`
}

// tsClientSummary is the summary ts/client.mjs prints (the TypeScript SDK
// test and the upstream tests run it).
type tsClientSummary struct {
	scriptStatus
	UnauthorizedFirst       bool              `json:"unauthorized_first"`
	Issuer                  string            `json:"issuer"`
	Resource                string            `json:"resource"`
	ClientID                string            `json:"client_id"`
	ClientSecretIssued      bool              `json:"client_secret_issued"`
	TokenEndpointAuthMethod string            `json:"token_endpoint_auth_method"`
	AuthorizationRequest    map[string]string `json:"authorization_request"`
	AuthorizationResponse   struct {
		RedirectURI string `json:"redirect_uri"`
		Iss         string `json:"iss"`
		StateOK     bool   `json:"state_ok"`
	} `json:"authorization_response"`
	TokenType           string   `json:"token_type"`
	Scope               string   `json:"scope"`
	ExpiresIn           int      `json:"expires_in"`
	HasRefreshToken     bool     `json:"has_refresh_token"`
	Refreshed           bool     `json:"refreshed"`
	RefreshTokenRotated bool     `json:"refresh_token_rotated"`
	Invalidations       []string `json:"invalidations"`
	Tools               []string `json:"tools"`
	Whoami              toolText `json:"whoami"`
	WhoamiAfterRefresh  toolText `json:"whoami_after_refresh"`
	CalledTools         map[string]struct {
		IsError bool `json:"is_error"`
		toolText
	} `json:"called_tools"`
	TokenRequests []struct {
		GrantType string   `json:"grant_type"`
		Params    []string `json:"params"`
		Resource  *string  `json:"resource"`
		Status    int      `json:"status"`
	} `json:"token_requests"`
	Errors []struct {
		Method          string `json:"method"`
		Path            string `json:"path"`
		Status          int    `json:"status"`
		Body            string `json:"body"`
		WWWAuthenticate string `json:"www_authenticate"`
	} `json:"errors"`
}

// whoamis parses whoami's text answers before and after the refresh.
func (s *tsClientSummary) whoamis(t *testing.T) (before, after whoamiResult) {
	t.Helper()
	require.NoError(t, json.Unmarshal([]byte(s.Whoami.Text), &before), s.Whoami.Text)
	require.NoError(t, json.Unmarshal([]byte(s.WhoamiAfterRefresh.Text), &after), s.WhoamiAfterRefresh.Text)
	return before, after
}
