package interop

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/modelcontextprotocol/go-sdk/auth/extauth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

// Test identity provider constants: the MCP client's registration at the
// IdP, the user it signs in, and the client_id the same client has at the
// MCP server (ID-JAG draft §5: the IdP maps one to the other).
const (
	idpClientID     = "mcp-client-at-idp"
	idpClientSecret = "idp-secret-0123456789"
	idpUser         = "U019488227"
	idpEmail        = "alice@example.com"
	enterpriseMCP   = "interop-enterprise"
	tokenTypeIDJAG  = "urn:ietf:params:oauth:token-type:id-jag"
	tokenTypeIDTok  = "urn:ietf:params:oauth:token-type:id_token"
	tokenExchange   = "urn:ietf:params:oauth:grant-type:token-exchange"
	jwtBearerGrant  = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	idJAGLifetime   = 5 * time.Minute
	idTokenLifetime = 10 * time.Minute
)

// testIdP is an enterprise identity provider written for the test: it
// signs ID tokens for its user (what single sign-on would have given the
// client) and, at its token endpoint, exchanges one for an ID-JAG (RFC
// 8693; MCP SEP-990 §4), checking what the extension says an IdP checks.
type testIdP struct {
	t      *testing.T
	srv    *httptest.Server
	key    *ecdsa.PrivateKey
	signer map[string]jose.Signer
	// audience and resource are what the client must ask for: the MCP
	// server's issuer and resource.
	audience, resource string

	mu        sync.Mutex
	exchanges int
	issued    []string
}

func newTestIdP(t *testing.T) *testIdP {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	p := &testIdP{t: t, key: key, signer: map[string]jose.Signer{}}
	for _, typ := range []string{"JWT", "oauth-id-jag+jwt"} {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
			(&jose.SignerOptions{}).WithType(jose.ContentType(typ)).WithHeader("kid", "idp-1"))
		require.NoError(t, err)
		p.signer[typ] = s
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", p.metadata)
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "idp-1", Algorithm: "ES256", Use: "sig"}}})
	})
	mux.HandleFunc("POST /token", p.token)
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *testIdP) issuer() string { return p.srv.URL }

func (p *testIdP) metadata(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                           p.issuer(),
		"token_endpoint":                   p.issuer() + "/token",
		"jwks_uri":                         p.issuer() + "/jwks",
		"grant_types_supported":            []string{tokenExchange},
		"code_challenge_methods_supported": []string{"S256"},
		"identity_chaining_requested_token_types_supported": []string{tokenTypeIDJAG},
	})
}

// idToken is the ID token single sign-on gave the client for the user.
func (p *testIdP) idToken() string {
	now := time.Now()
	return p.sign("JWT", map[string]any{
		"iss": p.issuer(), "sub": idpUser, "aud": idpClientID, "email": idpEmail,
		"iat": now.Unix(), "exp": now.Add(idTokenLifetime).Unix(),
	})
}

func (p *testIdP) sign(typ string, claims map[string]any) string {
	b, err := json.Marshal(claims)
	require.NoError(p.t, err)
	jws, err := p.signer[typ].Sign(b)
	require.NoError(p.t, err)
	out, err := jws.CompactSerialize()
	require.NoError(p.t, err)
	return out
}

// token is the RFC 8693 token exchange: an ID token of this IdP, issued to
// the authenticated client (SEP-990 §4.1), for an ID-JAG whose audience is
// the MCP server's issuer and resource its resource.
func (p *testIdP) token(w http.ResponseWriter, r *http.Request) {
	fail := func(code, desc string) {
		p.t.Logf("test IdP refused the token exchange: %s: %s", code, desc)
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": code, "error_description": desc})
	}
	if err := r.ParseForm(); err != nil {
		fail("invalid_request", err.Error())
		return
	}
	f := r.PostForm
	clientID, secret := f.Get("client_id"), f.Get("client_secret")
	if id, s, ok := r.BasicAuth(); ok {
		clientID, secret = id, s
	}
	switch {
	case clientID != idpClientID || secret != idpClientSecret:
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	case f.Get("grant_type") != tokenExchange:
		fail("unsupported_grant_type", f.Get("grant_type"))
		return
	case f.Get("requested_token_type") != tokenTypeIDJAG:
		fail("invalid_request", "requested_token_type must be the ID-JAG type")
		return
	case f.Get("subject_token_type") != tokenTypeIDTok:
		fail("invalid_request", "subject_token_type must be an ID token")
		return
	case f.Get("audience") != p.audience:
		fail("invalid_target", "audience is not the MCP server's issuer: "+f.Get("audience"))
		return
	case f.Get("resource") != p.resource:
		fail("invalid_target", "resource is not the MCP server: "+f.Get("resource"))
		return
	}
	tok, err := jwt.ParseSigned(f.Get("subject_token"), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		fail("invalid_grant", err.Error())
		return
	}
	var idt jwt.Claims
	if err := tok.Claims(&p.key.PublicKey, &idt); err != nil {
		fail("invalid_grant", err.Error())
		return
	}
	if err := idt.ValidateWithLeeway(jwt.Expected{Issuer: p.issuer(), AnyAudience: jwt.Audience{clientID}, Time: time.Now()}, 0); err != nil {
		fail("invalid_grant", "subject_token: "+err.Error())
		return
	}
	now := time.Now()
	claims := map[string]any{
		"iss": p.issuer(), "sub": idt.Subject, "aud": p.audience, "client_id": enterpriseMCP,
		"resource": p.resource, "jti": rand.Text(), "iat": now.Unix(), "exp": now.Add(idJAGLifetime).Unix(),
		"email": idpEmail,
	}
	if sc := f.Get("scope"); sc != "" {
		claims["scope"] = sc
	}
	jag := p.sign("oauth-id-jag+jwt", claims)
	p.mu.Lock()
	p.exchanges++
	p.issued = append(p.issued, jag)
	p.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{
		"issued_token_type": tokenTypeIDJAG, "access_token": jag, "token_type": "N_A",
		"expires_in": int(idJAGLifetime / time.Second), "scope": f.Get("scope"),
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// TestGoSDKEnterpriseManagedAuthorization: the MCP Go SDK's extauth
// EnterpriseHandler (SEP-990) against the example server started with
// -trust-idp: on the MCP endpoint's 401 it takes the user's ID token,
// exchanges it at the test IdP for an ID-JAG, and redeems that at the
// example's token endpoint with the jwt-bearer grant, authenticated as the
// pre-registered confidential client; whoami then names the enterprise
// user, issuer#sub. The ID-JAG cannot be redeemed twice. Go only: it
// always runs.
func TestGoSDKEnterpriseManagedAuthorization(t *testing.T) {
	t.Parallel()
	idp := newTestIdP(t)
	clients := writeClients(t, []map[string]any{{
		"client_id": enterpriseMCP, "client_secret": confidentialSecret, "client_name": "interop enterprise",
		"grant_types": []string{jwtBearerGrant},
	}})
	s := startServer(t, "-clients", clients, "-trust-idp", idp.issuer()+"="+idp.issuer()+"/jwks")
	idp.audience, idp.resource = s.issuer, s.mcpURL

	ctx := testContext(t, flowTimeout)
	rec := newRecorder(t)
	hc := &http.Client{Timeout: requestTimeout, Transport: rec}
	handler, err := extauth.NewEnterpriseHandler(&extauth.EnterpriseHandlerConfig{
		IdPIssuerURL:     idp.issuer(),
		IdPCredentials:   secretCredentials(idpClientID, idpClientSecret),
		MCPAuthServerURL: s.issuer,
		MCPResourceURI:   s.mcpURL,
		MCPCredentials:   secretCredentials(enterpriseMCP, confidentialSecret),
		MCPScopes:        []string{scopeTools},
		IDTokenFetcher: func(context.Context) (*oauth2.Token, error) {
			tok := &oauth2.Token{AccessToken: "idp-access-token", TokenType: "Bearer"}
			return tok.WithExtra(map[string]any{"id_token": idp.idToken()}), nil
		},
		HTTPClient: hc,
	})
	require.NoError(t, err)
	_, w := callWhoami(t, ctx, &mcp.StreamableClientTransport{Endpoint: s.mcpURL, OAuthHandler: handler,
		HTTPClient: newHTTPClient(t), DisableStandaloneSSE: true})
	assert.Equal(t, whoamiResult{UserID: idp.issuer() + "#" + idpUser, ClientID: enterpriseMCP, Scopes: []string{scopeTools}}, w)
	assert.Contains(t, rec.grantTypes(), jwtBearerGrant)

	idp.mu.Lock()
	require.Equal(t, 1, idp.exchanges)
	jag := idp.issued[0]
	idp.mu.Unlock()
	// The same ID-JAG again: single use.
	_, err = (&oauth2.Config{ClientID: enterpriseMCP, ClientSecret: confidentialSecret,
		Endpoint: oauth2.Endpoint{TokenURL: s.issuer + "/token", AuthStyle: oauth2.AuthStyleInParams}}).
		Exchange(context.WithValue(ctx, oauth2.HTTPClient, hc), "",
			oauth2.SetAuthURLParam("grant_type", jwtBearerGrant), oauth2.SetAuthURLParam("assertion", jag))
	var re *oauth2.RetrieveError
	require.True(t, errors.As(err, &re), "replayed ID-JAG: %v", err)
	assert.Equal(t, "invalid_grant", re.ErrorCode)
}
