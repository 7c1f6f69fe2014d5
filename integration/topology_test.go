package integration_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/bearer"
	"github.com/mcpoauth/mcpoauth/internal/testclock"
	"github.com/mcpoauth/mcpoauth/metadata"
)

// TestSplitTopology runs the deployment where the authorization server and
// the MCP resource server scale apart: two HTTP servers on two loopback
// ports, sharing nothing but HTTP. The resource server publishes its
// protected resource metadata pointing at the remote authorization server
// (metadata.ProtectedResourceHandler) and verifies tokens with
// bearer.IntrospectionVerifier, authenticated as a client listed in
// IntrospectionClients. An MCP client discovers everything from the
// resource server's 401, registers, signs in, calls the resource server;
// answers are cached, so a revocation at the authorization server is
// honoured within CacheTTL (the clock is advanced, not slept on); and an
// unreachable authorization server is a 500, never a 401 or a 200.
func TestSplitTopology(t *testing.T) {
	const rsClientID, rsClientSecret = "mcp-rs", "rs-secret-0123456789abcdefghijklmnopqrstuvwxyz"
	ctx := context.Background()

	asTS := httptest.NewUnstartedServer(nil)
	rsTS := httptest.NewUnstartedServer(nil)
	asIssuer := "http://" + asTS.Listener.Addr().String()
	rsResource := "http://" + rsTS.Listener.Addr().String() + "/mcp"

	// The authorization server: the library, a consent page, no MCP.
	as, err := mcpoauth.New(mcpoauth.Config{
		Issuer:               asIssuer,
		AuthorizationURL:     asIssuer + "/consent",
		ResourceServerURL:    rsResource,
		ScopesSupported:      []string{testScope},
		GrantTypes:           []string{mcpoauth.GrantAuthorizationCode, mcpoauth.GrantRefreshToken, mcpoauth.GrantClientCredentials},
		IntrospectionClients: []string{rsClientID},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = as.Close() })
	_, err = as.RegisterClient(ctx, metadata.ClientInformation{
		ClientID: rsClientID, ClientSecret: rsClientSecret,
		ClientMetadata: metadata.ClientMetadata{ClientName: "MCP resource server", GrantTypes: []string{mcpoauth.GrantClientCredentials}},
	})
	require.NoError(t, err)
	var introspections atomic.Int64
	asMux := newTestMux(as, "POST /consent")
	asMux.Handle("POST /introspect", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		introspections.Add(1)
		as.Router().ServeHTTP(w, r)
	}))
	asTS.Config.Handler = asMux
	asTS.Start()
	t.Cleanup(asTS.Close)

	// The resource server: another process in production; it knows the
	// authorization server's issuer and its own client credentials.
	var asMeta metadata.AuthorizationServer
	getJSON(t, asIssuer+"/.well-known/oauth-authorization-server", &asMeta)
	require.Equal(t, asIssuer+"/introspect", asMeta.IntrospectionEndpoint)
	require.Equal(t, []string{"client_secret_basic", "client_secret_post", "private_key_jwt"}, asMeta.IntrospectionEndpointAuthMethodsSupported)
	rsClock := testclock.New(time.Now())
	verifier, err := bearer.NewIntrospectionVerifier(bearer.IntrospectionOptions{
		Endpoint:     asMeta.IntrospectionEndpoint,
		ClientID:     rsClientID,
		ClientSecret: rsClientSecret,
		Issuer:       asIssuer,
		Now:          rsClock.Now,
	})
	require.NoError(t, err)
	prmPath, prm, err := metadata.ProtectedResourceHandler(metadata.ProtectedResource{
		Resource:             rsResource,
		AuthorizationServers: []string{asIssuer},
		ScopesSupported:      []string{testScope},
	})
	require.NoError(t, err)
	var verifyFailures atomic.Int64
	rsMux := http.NewServeMux()
	rsMux.Handle(prmPath, prm)
	rsMux.Handle("/mcp", bearer.RequireBearerAuth(bearer.Options{
		Verifier:            verifier,
		RequiredScopes:      []string{testScope},
		Resource:            rsResource,
		ResourceMetadataURL: metadata.ProtectedResourceMetadataURL(rsResource),
		ErrorHandler:        func(*http.Request, error) { verifyFailures.Add(1) },
	})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, _ := bearer.FromContext(r.Context())
		_ = json.NewEncoder(w).Encode(map[string]string{"user": info.UserID, "client": info.ClientID})
	})))
	rsTS.Config.Handler = rsMux
	rsTS.Start()
	t.Cleanup(rsTS.Close)

	// The MCP client: discovery starts at the resource server.
	resp, err := http.Get(rsResource)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	prmURL := metadata.ProtectedResourceMetadataURL(rsResource)
	require.Contains(t, resp.Header.Get("WWW-Authenticate"), `resource_metadata="`+prmURL+`"`)
	var doc metadata.ProtectedResource
	getJSON(t, prmURL, &doc)
	require.Equal(t, rsResource, doc.Resource)
	require.Equal(t, []string{asIssuer}, doc.AuthorizationServers)
	var discovered metadata.AuthorizationServer
	getJSON(t, doc.AuthorizationServers[0]+"/.well-known/oauth-authorization-server", &discovered)
	require.Equal(t, asIssuer, discovered.Issuer)

	body, _ := json.Marshal(map[string]any{
		"redirect_uris": []string{"http://127.0.0.1/callback"}, "grant_types": []string{"authorization_code", "refresh_token"},
		"token_endpoint_auth_method": "none", "client_name": "topology test",
	})
	resp, err = http.Post(discovered.RegistrationEndpoint, "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	var reg struct {
		ClientID string `json:"client_id"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&reg))
	resp.Body.Close()
	cfg := &oauth2.Config{
		ClientID:    reg.ClientID,
		Endpoint:    oauth2.Endpoint{AuthURL: discovered.AuthorizationEndpoint, TokenURL: discovered.TokenEndpoint, AuthStyle: oauth2.AuthStyleInParams},
		RedirectURL: "http://127.0.0.1:43210/callback",
		Scopes:      []string{testScope},
	}
	verifierPKCE := oauth2.GenerateVerifier()
	resourceOpt := oauth2.SetAuthURLParam("resource", rsResource)
	loc := signIn(t, cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(verifierPKCE), resourceOpt))
	tok, err := cfg.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifierPKCE), resourceOpt)
	require.NoError(t, err)

	callRS := func(access string) (int, map[string]string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, rsResource, nil)
		req.Header.Set("Authorization", "Bearer "+access)
		return callWhoami(t, http.DefaultClient, req)
	}

	// The token works at the resource server; repeated calls are answered
	// from the cache: one introspection.
	for range 3 {
		code, who := callRS(tok.AccessToken)
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, map[string]string{"user": "alice", "client": reg.ClientID}, who)
	}
	require.EqualValues(t, 1, introspections.Load())

	// The public client itself may not introspect: only confidential
	// clients may (RFC 7662 §2.1).
	resp, err = http.PostForm(discovered.IntrospectionEndpoint, url.Values{"token": {tok.AccessToken}, "client_id": {reg.ClientID}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	introspections.Store(0)

	// Revoke at the authorization server (the refresh token: the whole
	// grant). The resource server keeps accepting the cached answer for at
	// most CacheTTL: that is the documented revocation delay.
	resp, err = http.PostForm(discovered.RevocationEndpoint, url.Values{"token": {tok.RefreshToken}, "client_id": {reg.ClientID}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	code, _ := callRS(tok.AccessToken)
	require.Equal(t, http.StatusOK, code, "within the cache TTL")
	rsClock.Advance(bearer.DefaultIntrospectionCacheTTL)
	code, _ = callRS(tok.AccessToken)
	require.Equal(t, http.StatusUnauthorized, code, "once the cached answer expired")
	require.EqualValues(t, 1, introspections.Load(), "one introspection after the TTL")

	// A token the authorization server never issued.
	code, _ = callRS("forged-token")
	require.Equal(t, http.StatusUnauthorized, code)
	require.Zero(t, verifyFailures.Load())

	// With the authorization server gone, an uncached token is a 503 with
	// Retry-After (the verifier cannot tell), never a 200 or a 401.
	asTS.Close()
	code, _ = callRS("another-uncached-token")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.EqualValues(t, 1, verifyFailures.Load())
}
