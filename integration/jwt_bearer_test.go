package integration_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/audit"
	"github.com/mcpoauth/mcpoauth/metadata"
)

// Enterprise-managed authorization (MCP SEP-990): a company's identity
// provider signs an Identity Assertion JWT Authorization Grant (ID-JAG) for
// one of its users, one client and this server, and the client redeems it
// with the RFC 7523 jwt-bearer grant. Each TestIDJAG... test below checks
// one rule with an assertion that breaks that rule alone.

const (
	testIdP         = "https://idp.example.com"
	idJAGType       = "oauth-id-jag+jwt"
	jwtBearerGrant  = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	idJAGProfile    = "urn:ietf:params:oauth:grant-profile:id-jag"
	enterpriseUser  = "U019488227"
	enterpriseEmail = "alice@example.com"
)

// idp is a test identity provider: its signing key, and whether its grants
// may carry refresh tokens.
type idp struct {
	issuer string
	key    *clientKey
}

func newIdP(t *testing.T, issuer string) *idp {
	return &idp{issuer: issuer, key: newClientKey(t, jose.ES256, "idp-key-1")}
}

// withIdP enables the jwt-bearer grant trusting p (its keys in place),
// beside every other grant.
func withIdP(p *idp, mutate ...func(*mcpoauth.IdentityProvider)) func(*mcpoauth.Config) {
	return func(c *mcpoauth.Config) {
		withAllGrants(c)
		c.GrantTypes = append(c.GrantTypes, mcpoauth.GrantJWTBearer)
		ip := mcpoauth.IdentityProvider{Issuer: p.issuer, JWKS: jwksOf(p.key)}
		for _, m := range mutate {
			m(&ip)
		}
		c.TrustedIdentityProviders = append(c.TrustedIdentityProviders, ip)
	}
}

func jwksOf(keys ...*clientKey) []byte {
	var set jose.JSONWebKeySet
	for _, k := range keys {
		set.Keys = append(set.Keys, k.jwk())
	}
	b, _ := json.Marshal(set)
	return b
}

// claims are valid ID-JAG claims for clientID at the harness server.
func (p *idp) claims(h *harness, clientID string) map[string]any {
	now := h.clock.Now()
	return map[string]any{
		"iss":       p.issuer,
		"sub":       enterpriseUser,
		"aud":       testIssuer,
		"client_id": clientID,
		"resource":  testResource,
		"scope":     testScope,
		"jti":       rand.Text(),
		"iat":       now.Unix(),
		"exp":       now.Add(5 * time.Minute).Unix(),
		"email":     enterpriseEmail,
	}
}

// sign signs claims with typ oauth-id-jag+jwt.
func (p *idp) sign(t *testing.T, claims map[string]any) string {
	return p.signTyp(t, idJAGType, claims)
}

func (p *idp) signTyp(t *testing.T, typ string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithHeader("kid", p.key.kid)
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: p.key.alg, Key: p.key.priv}, opts)
	require.NoError(t, err)
	return signWith(t, s, claims)
}

// enterpriseClient pre-registers a confidential client for the jwt-bearer
// grant (and refresh), as the SEP expects (§6.1: pre-registered).
func (h *harness) enterpriseClient(meta ...map[string]any) (id, secret string) {
	h.t.Helper()
	m := map[string]any{"grant_types": []string{jwtBearerGrant, "refresh_token"}, "client_name": "Enterprise client", "token_endpoint_auth_method": "client_secret_post"}
	for _, x := range meta {
		for k, v := range x {
			m[k] = v
		}
	}
	out := h.preRegisterJSON(m)
	s, _ := out["client_secret"].(string)
	return out["client_id"].(string), s
}

// redeemIDJAG posts the jwt-bearer grant with client_secret_post, as the MCP Go
// SDK's EnterpriseHandler does.
func (h *harness) redeemIDJAG(id, secret, assertion string, extra ...string) *httptest.ResponseRecorder {
	f := url.Values{"grant_type": {jwtBearerGrant}, "assertion": {assertion}, "client_id": {id}}
	if secret != "" {
		f.Set("client_secret", secret)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		f.Set(extra[i], extra[i+1])
	}
	return h.postForm("/token", f)
}

// requireIDJAGRefused checks a 400 with code, nothing issued.
func requireIDJAGRefused(t *testing.T, w *httptest.ResponseRecorder, code string) {
	t.Helper()
	require.Equal(t, http.StatusBadRequest, w.Code, w.Body.String())
	assert.Equal(t, code, oauthError(t, w), w.Body.String())
	assert.NotContains(t, w.Body.String(), "access_token")
}

// TestIDJAGRedeemed: a valid ID-JAG from a trusted provider gets an access
// token (no refresh token by default: ID-JAG draft §4.4.3) for the user
// issuer#sub, whose identity at the provider tools see; the grant is an
// ordinary grant, listed and revocable; token.issued names the grant type.
func TestIDJAGRedeemed(t *testing.T) {
	p := newIdP(t, testIdP)
	h := newHarness(t, withIdP(p))
	id, sec := h.enterpriseClient()
	w := h.redeemIDJAG(id, sec, p.sign(t, p.claims(h, id)))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	assert.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	var tr tokenResponse
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &tr))
	assert.Equal(t, "Bearer", tr.TokenType)
	assert.Equal(t, testScope, tr.Scope)
	assert.Empty(t, tr.RefreshToken, "ID-JAG draft §4.4.3: no refresh token unless the provider's RefreshTokens allows it")

	mcp := h.callMCP(tr.AccessToken)
	require.Equal(t, http.StatusOK, mcp.Code, mcp.Body.String())
	var who struct {
		User     string             `json:"user"`
		Client   string             `json:"client"`
		Grant    string             `json:"grant"`
		Identity *mcpoauth.Identity `json:"identity"`
	}
	require.NoError(t, json.Unmarshal(mcp.Body.Bytes(), &who))
	user := testIdP + "#" + enterpriseUser
	assert.Equal(t, user, who.User)
	assert.Equal(t, id, who.Client)
	require.NotNil(t, who.Identity)
	assert.Equal(t, mcpoauth.Identity{Issuer: testIdP, Subject: enterpriseUser, Email: enterpriseEmail}, *who.Identity)

	list, err := h.srv.UserGrants(context.Background(), user)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, who.Grant, list[0].ID)
	assert.Equal(t, []string{testScope}, list[0].Scopes)
	assert.Equal(t, testResource, list[0].Resource)

	ev := h.obs.eventsOf(audit.TokenIssued)
	require.Len(t, ev, 1)
	assert.Equal(t, jwtBearerGrant, ev[0].GrantType)
	assert.Equal(t, user, ev[0].UserID)

	require.NoError(t, h.srv.RevokeUserGrant(context.Background(), user, who.Grant))
	assert.Equal(t, http.StatusUnauthorized, h.callMCP(tr.AccessToken).Code)
}

// TestIDJAGRefreshTokensWhenConfigured: with the provider's RefreshTokens,
// the grant is refreshable like any other.
func TestIDJAGRefreshTokensWhenConfigured(t *testing.T) {
	p := newIdP(t, testIdP)
	h := newHarness(t, withIdP(p, func(ip *mcpoauth.IdentityProvider) { ip.RefreshTokens = true }))
	id, sec := h.enterpriseClient()
	w := h.redeemIDJAG(id, sec, p.sign(t, p.claims(h, id)))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var tr tokenResponse
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &tr))
	require.NotEmpty(t, tr.RefreshToken)
	w = h.postForm("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}, "client_id": {id}, "client_secret": {sec}})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
}

// TestIDJAGMetadata: clients find the profile (ID-JAG draft §7.2) and the
// grant type in the server metadata; neither is there while the grant is
// off, and no trusted issuer is ever disclosed (§8.4).
func TestIDJAGMetadata(t *testing.T) {
	p := newIdP(t, testIdP)
	for _, on := range []bool{true, false} {
		var mutate []func(*mcpoauth.Config)
		if on {
			mutate = append(mutate, withIdP(p))
		}
		h := newHarness(t, mutate...)
		w := h.do(newRequest(http.MethodGet, "/.well-known/oauth-authorization-server", ""))
		require.Equal(t, http.StatusOK, w.Code)
		var m metadata.AuthorizationServer
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &m))
		assert.Equal(t, on, contains(m.GrantTypesSupported, jwtBearerGrant))
		assert.Equal(t, on, contains(m.AuthorizationGrantProfilesSupported, idJAGProfile))
		assert.NotContains(t, w.Body.String(), "idp.example.com")
	}
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// TestIDJAGRejectsUntrustedIssuer: an assertion whose iss is no trusted
// provider, even signed by a trusted provider's key, and one with the
// trusted iss signed by another key, are refused.
func TestIDJAGRejectsUntrustedIssuer(t *testing.T) {
	p := newIdP(t, testIdP)
	h := newHarness(t, withIdP(p))
	id, sec := h.enterpriseClient()
	c := p.claims(h, id)
	c["iss"] = "https://evil.example.com"
	requireIDJAGRefused(t, h.redeemIDJAG(id, sec, p.sign(t, c)), "invalid_grant")

	forger := newIdP(t, testIdP) // same iss and kid, another key
	requireIDJAGRefused(t, h.redeemIDJAG(id, sec, forger.sign(t, forger.claims(h, id))), "invalid_grant")
}

// TestIDJAGRejectsWrongAudience: aud must be this server's issuer alone
// (ID-JAG draft §4.4.1): not another server, not the token endpoint, not
// an array that also names another.
func TestIDJAGRejectsWrongAudience(t *testing.T) {
	p := newIdP(t, testIdP)
	h := newHarness(t, withIdP(p))
	id, sec := h.enterpriseClient()
	for _, aud := range []any{"https://other.example.com", testIssuer + "/token", testIssuer + "/", []string{testIssuer, "https://other.example.com"}, nil} {
		c := p.claims(h, id)
		c["aud"] = aud
		requireIDJAGRefused(t, h.redeemIDJAG(id, sec, p.sign(t, c)), "invalid_grant")
	}
	c := p.claims(h, id)
	c["aud"] = []string{testIssuer} // an array of exactly the issuer is fine
	require.Equal(t, http.StatusOK, h.redeemIDJAG(id, sec, p.sign(t, c)).Code)
}

// TestIDJAGRejectsAnotherClientsClientID: client_id must be the
// authenticated client (ID-JAG draft §4.4.1): one client cannot redeem
// another's assertion.
func TestIDJAGRejectsAnotherClientsClientID(t *testing.T) {
	p := newIdP(t, testIdP)
	h := newHarness(t, withIdP(p))
	victim, _ := h.enterpriseClient()
	thief, thiefSecret := h.enterpriseClient()
	requireIDJAGRefused(t, h.redeemIDJAG(thief, thiefSecret, p.sign(t, p.claims(h, victim))), "invalid_grant")
	c := p.claims(h, thief)
	delete(c, "client_id")
	requireIDJAGRefused(t, h.redeemIDJAG(thief, thiefSecret, p.sign(t, c)), "invalid_grant")
}

// TestIDJAGRejectsReplayedJTI: an assertion is redeemed once (RFC 7523 §3
// item 7), on every replica sharing the Model; a refused request burns
// nothing, so the assertion still works after it.
func TestIDJAGRejectsReplayedJTI(t *testing.T) {
	p := newIdP(t, testIdP)
	h := newHarness(t, withIdP(p))
	id, sec := h.enterpriseClient()
	a := p.sign(t, p.claims(h, id))
	requireIDJAGRefused(t, h.redeemIDJAG(id, sec, a, "resource", "https://other.example.com/mcp"), "invalid_target")
	require.Equal(t, http.StatusOK, h.redeemIDJAG(id, sec, a).Code)
	requireIDJAGRefused(t, h.redeemIDJAG(id, sec, a), "invalid_grant")
	assert.Len(t, h.obs.eventsOf(audit.ReplayDetected), 1)

	// Another replica with the same Model refuses it too.
	replica, err := mcpoauth.New(mcpoauth.Config{Model: h.model, Issuer: testIssuer, ResourceServerURL: testResource, ScopesSupported: []string{testScope},
		GrantTypes: []string{mcpoauth.GrantJWTBearer}, TrustedIdentityProviders: []mcpoauth.IdentityProvider{{Issuer: p.issuer, JWKS: jwksOf(p.key)}},
		Now: h.clock.Now, RateLimits: mcpoauth.RateLimits{Disabled: true}})
	require.NoError(t, err)
	defer replica.Close()
	f := url.Values{"grant_type": {jwtBearerGrant}, "assertion": {a}, "client_id": {id}, "client_secret": {sec}}
	r := httptest.NewRequest(http.MethodPost, testIssuer+"/token", strings.NewReader(f.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rw := httptest.NewRecorder()
	replica.Router().ServeHTTP(rw, r)
	requireIDJAGRefused(t, rw, "invalid_grant")

	// The same jti from another provider is another assertion.
	q := newIdP(t, "https://idp2.example.com")
	h2 := newHarness(t, withIdP(p), withIdPAlso(q))
	id2, sec2 := h2.enterpriseClient()
	c := p.claims(h2, id2)
	require.Equal(t, http.StatusOK, h2.redeemIDJAG(id2, sec2, p.sign(t, c)).Code)
	c2 := q.claims(h2, id2)
	c2["jti"] = c["jti"]
	require.Equal(t, http.StatusOK, h2.redeemIDJAG(id2, sec2, q.sign(t, c2)).Code)
}

// withIdPAlso trusts one more provider.
func withIdPAlso(p *idp) func(*mcpoauth.Config) {
	return func(c *mcpoauth.Config) {
		c.TrustedIdentityProviders = append(c.TrustedIdentityProviders, mcpoauth.IdentityProvider{Issuer: p.issuer, JWKS: jwksOf(p.key)})
	}
}

// TestIDJAGRejectsExpired: exp and iat are required, exp not passed, iat
// not in the future, and exp - iat within MaxAssertionLifetime.
func TestIDJAGRejectsExpired(t *testing.T) {
	p := newIdP(t, testIdP)
	h := newHarness(t, withIdP(p))
	id, sec := h.enterpriseClient()
	now := h.clock.Now()
	for name, edit := range map[string]func(map[string]any){
		"expired": func(c map[string]any) {
			c["iat"], c["exp"] = now.Add(-10*time.Minute).Unix(), now.Add(-time.Second).Unix()
		},
		"exp now": func(c map[string]any) { c["exp"] = now.Unix() },
		"no exp":  func(c map[string]any) { delete(c, "exp") },
		"no iat":  func(c map[string]any) { delete(c, "iat") },
		"iat in future": func(c map[string]any) {
			c["iat"], c["exp"] = now.Add(time.Minute).Unix(), now.Add(5*time.Minute).Unix()
		},
		"too long":      func(c map[string]any) { c["exp"] = now.Add(time.Hour).Unix() },
		"not yet (nbf)": func(c map[string]any) { c["nbf"] = now.Add(time.Minute).Unix() },
		"no jti":        func(c map[string]any) { delete(c, "jti") },
		"cnf (key-bound)": func(c map[string]any) {
			c["cnf"] = map[string]any{"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}
		},
	} {
		t.Run(name, func(t *testing.T) {
			c := p.claims(h, id)
			edit(c)
			requireIDJAGRefused(t, h.redeemIDJAG(id, sec, p.sign(t, c)), "invalid_grant")
		})
	}
	// A valid one expires as the clock passes its exp.
	a := p.sign(t, p.claims(h, id))
	h.clock.Advance(5 * time.Minute)
	requireIDJAGRefused(t, h.redeemIDJAG(id, sec, a), "invalid_grant")
}

// TestIDJAGRejectsWrongTyp: typ must be oauth-id-jag+jwt (RFC 8725 §3.11),
// so that the provider's ID tokens and other JWTs do not pass for grants.
func TestIDJAGRejectsWrongTyp(t *testing.T) {
	p := newIdP(t, testIdP)
	h := newHarness(t, withIdP(p))
	id, sec := h.enterpriseClient()
	for _, typ := range []string{"", "JWT", "at+jwt", "oauth-id-jag"} {
		requireIDJAGRefused(t, h.redeemIDJAG(id, sec, p.signTyp(t, typ, p.claims(h, id))), "invalid_grant")
	}
	// RFC 7515 §4.1.9: the media type with its application/ prefix, in any
	// case, is the same type.
	require.Equal(t, http.StatusOK, h.redeemIDJAG(id, sec, p.signTyp(t, "application/OAuth-ID-JAG+JWT", p.claims(h, id))).Code)
}

// TestIDJAGRejectsAlgNoneAndHS256: only public-key algorithms: alg none,
// and HMAC keyed with anything (the provider's public key among them), are
// refused.
func TestIDJAGRejectsAlgNoneAndHS256(t *testing.T) {
	p := newIdP(t, testIdP)
	h := newHarness(t, withIdP(p))
	id, sec := h.enterpriseClient()
	payload, err := json.Marshal(p.claims(h, id))
	require.NoError(t, err)
	enc := base64.RawURLEncoding.EncodeToString
	none := enc([]byte(`{"alg":"none","typ":"oauth-id-jag+jwt","kid":"idp-key-1"}`)) + "." + enc(payload) + "."
	requireIDJAGRefused(t, h.redeemIDJAG(id, sec, none), "invalid_grant")

	pub, err := json.Marshal(p.key.jwk())
	require.NoError(t, err)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: pub},
		(&jose.SignerOptions{}).WithType(idJAGType).WithHeader("kid", p.key.kid))
	require.NoError(t, err)
	requireIDJAGRefused(t, h.redeemIDJAG(id, sec, signWith(t, s, p.claims(h, id))), "invalid_grant")
}

// TestIDJAGRejectsMissingSub: the assertion must name its user.
func TestIDJAGRejectsMissingSub(t *testing.T) {
	p := newIdP(t, testIdP)
	h := newHarness(t, withIdP(p))
	id, sec := h.enterpriseClient()
	for _, sub := range []any{nil, ""} {
		c := p.claims(h, id)
		if sub == nil {
			delete(c, "sub")
		} else {
			c["sub"] = sub
		}
		requireIDJAGRefused(t, h.redeemIDJAG(id, sec, p.sign(t, c)), "invalid_grant")
	}
}

// TestIDJAGRejectsResourceNotOurs: the resource claim must name this
// server's resource (an array may name others beside it); absent, the
// configured resource applies; a resource parameter must agree.
func TestIDJAGRejectsResourceNotOurs(t *testing.T) {
	p := newIdP(t, testIdP)
	h := newHarness(t, withIdP(p))
	id, sec := h.enterpriseClient()
	for _, res := range []any{"https://other.example.com/mcp", []string{"https://other.example.com/mcp"}, "not a uri"} {
		c := p.claims(h, id)
		c["resource"] = res
		requireIDJAGRefused(t, h.redeemIDJAG(id, sec, p.sign(t, c)), "invalid_target")
	}
	requireIDJAGRefused(t, h.redeemIDJAG(id, sec, p.sign(t, p.claims(h, id)), "resource", "https://other.example.com/mcp"), "invalid_target")

	for _, res := range []any{nil, []string{"https://other.example.com/mcp", testResource}} {
		c := p.claims(h, id)
		if res == nil {
			delete(c, "resource")
		} else {
			c["resource"] = res
		}
		w := h.redeemIDJAG(id, sec, p.sign(t, c))
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		var tr tokenResponse
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &tr))
		require.Equal(t, http.StatusOK, h.callMCP(tr.AccessToken).Code, "bound to %s", testResource)
	}
}

// TestIDJAGRejectsPublicClient: the grant is for confidential clients
// (ID-JAG draft §8.1); a public client, or a confidential one that does
// not authenticate, gets nothing.
func TestIDJAGRejectsPublicClient(t *testing.T) {
	p := newIdP(t, testIdP)
	h := newHarness(t, withIdP(p))
	pub := h.preRegisterJSON(map[string]any{"grant_types": []string{jwtBearerGrant}, "token_endpoint_auth_method": "none", "client_name": "Public"})["client_id"].(string)
	requireIDJAGRefused(t, h.redeemIDJAG(pub, "", p.sign(t, p.claims(h, pub))), "unauthorized_client")

	id, _ := h.enterpriseClient()
	w := h.redeemIDJAG(id, "", p.sign(t, p.claims(h, id)))
	assert.Equal(t, http.StatusUnauthorized, w.Code)
	assert.Equal(t, "invalid_client", oauthError(t, w))
	w = h.redeemIDJAG(id, "wrong-secret-0123456789", p.sign(t, p.claims(h, id)))
	assert.Equal(t, http.StatusUnauthorized, w.Code)

	// A client not registered for the grant may not use it.
	cc, ccSecret := h.ccClient(nil)
	requireIDJAGRefused(t, h.redeemIDJAG(cc, ccSecret, p.sign(t, p.claims(h, cc))), "unauthorized_client")
}

// TestIDJAGScopeNarrowed: the granted scopes are the assertion's, narrowed
// to what the server supports and the client registered; nothing left is
// invalid_scope; a scope parameter narrows further but cannot widen the
// assertion; offline_access counts only where refresh tokens may be
// issued.
func TestIDJAGScopeNarrowed(t *testing.T) {
	p := newIdP(t, testIdP)
	h := newHarness(t, withIdP(p))
	id, sec := h.enterpriseClient(map[string]any{"scope": testScope})
	scopeOf := func(w *httptest.ResponseRecorder) string {
		t.Helper()
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		var tr tokenResponse
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &tr))
		return tr.Scope
	}
	c := p.claims(h, id)
	c["scope"] = testScope + " mcp:admin unknown:scope offline_access"
	// mcp:admin: the server's, not the client's; unknown:scope: nobody's.
	assert.Equal(t, testScope, scopeOf(h.redeemIDJAG(id, sec, p.sign(t, c))))

	c = p.claims(h, id)
	c["scope"] = "mcp:admin unknown:scope"
	requireIDJAGRefused(t, h.redeemIDJAG(id, sec, p.sign(t, c)), "invalid_scope")

	c = p.claims(h, id)
	c["scope"] = testScope
	requireIDJAGRefused(t, h.redeemIDJAG(id, sec, p.sign(t, c), "scope", testScope+" mcp:admin"), "invalid_scope")

	// A client that registered no scope: the server's scopes bound it.
	open, openSecret := h.enterpriseClient()
	c = p.claims(h, open)
	c["scope"] = "mcp:admin unknown:scope"
	assert.Equal(t, "mcp:admin", scopeOf(h.redeemIDJAG(open, openSecret, p.sign(t, c))))

	// Without a scope claim, the client's default, as for any grant; a
	// scope parameter beyond the client is refused.
	c = p.claims(h, id)
	delete(c, "scope")
	assert.Equal(t, testScope, scopeOf(h.redeemIDJAG(id, sec, p.sign(t, c))))
	c = p.claims(h, id)
	delete(c, "scope")
	requireIDJAGRefused(t, h.redeemIDJAG(id, sec, p.sign(t, c), "scope", "mcp:admin"), "invalid_scope")
}

// TestIDJAGDisabledGrantType: without GrantJWTBearer the grant type is
// unsupported, however valid the assertion.
func TestIDJAGDisabledGrantType(t *testing.T) {
	p := newIdP(t, testIdP)
	h := newHarness(t, withAllGrants)
	id, sec := h.confidentialClient()
	requireIDJAGRefused(t, h.redeemIDJAG(id, sec, p.sign(t, p.claims(h, id))), "unsupported_grant_type")
	// And a client cannot register for it.
	w := h.register(`{"redirect_uris":["` + testRedirect + `"],"grant_types":["` + jwtBearerGrant + `"]}`)
	assert.Equal(t, http.StatusBadRequest, w.Code)
}

// TestIDJAGKeysFromJWKSURL: a provider's keys are fetched from its JWKS
// URL (http on loopback for tests), cached, and fetched again when an
// assertion names a kid the cached set lacks (key rotation).
func TestIDJAGKeysFromJWKSURL(t *testing.T) {
	p := newIdP(t, testIdP)
	var served atomic.Pointer[[]byte]
	first := jwksOf(p.key)
	served.Store(&first)
	var fetches atomic.Int32
	jwksSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(*served.Load())
	}))
	defer jwksSrv.Close()
	h := newHarness(t, withAllGrants, func(c *mcpoauth.Config) {
		c.GrantTypes = append(c.GrantTypes, mcpoauth.GrantJWTBearer)
		c.TrustedIdentityProviders = []mcpoauth.IdentityProvider{{Issuer: p.issuer, JWKSURL: jwksSrv.URL + "/jwks"}}
	})
	id, sec := h.enterpriseClient()
	require.Equal(t, http.StatusOK, h.redeemIDJAG(id, sec, p.sign(t, p.claims(h, id))).Code)
	require.Equal(t, http.StatusOK, h.redeemIDJAG(id, sec, p.sign(t, p.claims(h, id))).Code)
	assert.Equal(t, int32(1), fetches.Load(), "cached")

	rotated := newClientKey(t, jose.ES256, "idp-key-2")
	second := jwksOf(rotated, p.key)
	served.Store(&second)
	h.clock.Advance(time.Minute) // past the least refetch interval
	q := &idp{issuer: testIdP, key: rotated}
	w := h.redeemIDJAG(id, sec, q.sign(t, q.claims(h, id)))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	assert.Equal(t, int32(2), fetches.Load())
}

// TestIDJAGConfig: New refuses a jwt-bearer setup that could not work or
// would trust too much.
func TestIDJAGConfig(t *testing.T) {
	key := newClientKey(t, jose.ES256, "k")
	good := mcpoauth.IdentityProvider{Issuer: testIdP, JWKS: jwksOf(key)}
	for name, c := range map[string]mcpoauth.Config{
		"grant without providers": {GrantTypes: []string{mcpoauth.GrantJWTBearer}},
		"providers without grant": {GrantTypes: []string{mcpoauth.GrantRefreshToken}, TrustedIdentityProviders: []mcpoauth.IdentityProvider{good}},
		"http JWKS URL":           {TrustedIdentityProviders: []mcpoauth.IdentityProvider{{Issuer: testIdP, JWKSURL: "http://idp.example.com/jwks"}}},
		"both key sources":        {TrustedIdentityProviders: []mcpoauth.IdentityProvider{{Issuer: testIdP, JWKSURL: "https://idp.example.com/jwks", JWKS: jwksOf(key)}}},
		"no key source":           {TrustedIdentityProviders: []mcpoauth.IdentityProvider{{Issuer: testIdP}}},
		"symmetric key only":      {TrustedIdentityProviders: []mcpoauth.IdentityProvider{{Issuer: testIdP, JWKS: []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`)}}},
		"http issuer":             {TrustedIdentityProviders: []mcpoauth.IdentityProvider{{Issuer: "http://idp.example.com", JWKS: jwksOf(key)}}},
		"own issuer":              {TrustedIdentityProviders: []mcpoauth.IdentityProvider{{Issuer: testIssuer, JWKS: jwksOf(key)}}},
		"issuer twice":            {TrustedIdentityProviders: []mcpoauth.IdentityProvider{good, good}},
		"short lifetime":          {TrustedIdentityProviders: []mcpoauth.IdentityProvider{{Issuer: testIdP, JWKS: jwksOf(key), MaxAssertionLifetime: time.Millisecond}}},
	} {
		t.Run(name, func(t *testing.T) {
			c.Issuer = testIssuer
			if c.GrantTypes == nil {
				c.GrantTypes = []string{mcpoauth.GrantJWTBearer}
			}
			_, err := mcpoauth.New(c)
			require.Error(t, err)
			assert.True(t, errors.Is(err, mcpoauth.ErrInvalidConfig), err)
		})
	}
	srv, err := mcpoauth.New(mcpoauth.Config{Issuer: testIssuer, GrantTypes: []string{mcpoauth.GrantJWTBearer},
		TrustedIdentityProviders: []mcpoauth.IdentityProvider{good, {Issuer: "http://127.0.0.1:9", JWKSURL: "http://127.0.0.1:9/jwks"}}})
	require.NoError(t, err)
	require.NoError(t, srv.Close())
}

// TestIDJAGKeyBound: an ID-JAG bound to a DPoP key (cnf.jkt, ID-JAG draft
// §8.5) is redeemed only with a DPoP proof of that key, and its access
// token is bound to the key; without a proof, or with another key's, it is
// refused, and nothing is used up.
func TestIDJAGKeyBound(t *testing.T) {
	p := newIdP(t, testIdP)
	h := newHarness(t, withIdP(p), withDPoP)
	id, sec := h.enterpriseClient()
	holder, other := newDPoPClient(h), newDPoPClient(h)
	claims := p.claims(h, id)
	claims["cnf"] = map[string]any{"jkt": holder.jkt()}
	assertion := p.sign(t, claims)
	form := url.Values{"grant_type": {jwtBearerGrant}, "assertion": {assertion}, "client_id": {id}, "client_secret": {sec}}

	requireIDJAGRefused(t, h.redeemIDJAG(id, sec, assertion), "invalid_grant")
	requireIDJAGRefused(t, other.token(form), "invalid_grant")

	w := holder.token(form)
	require.Equal(t, http.StatusOK, w.Code, "the key's holder redeems it (nothing was used up): %s", w.Body.String())
	var tr tokenResponse
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &tr))
	assert.Equal(t, "DPoP", tr.TokenType)
	assert.Equal(t, http.StatusOK, holder.callMCP(tr.AccessToken).Code)
	assert.Equal(t, http.StatusUnauthorized, h.callMCP(tr.AccessToken).Code, "bound: not usable as a bearer token")

	mtls := p.claims(h, id)
	mtls["cnf"] = map[string]any{"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}
	requireIDJAGRefused(t, holder.token(url.Values{"grant_type": {jwtBearerGrant}, "assertion": {p.sign(t, mtls)}, "client_id": {id}, "client_secret": {sec}}), "invalid_grant")
}

// saveTokensFailingModel fails every SaveTokens, as a store that is down.
type saveTokensFailingModel struct{ *mcpoauth.MemoryModel }

func (m *saveTokensFailingModel) SaveTokens(context.Context, ...*mcpoauth.Token) error {
	return errors.New("storage down")
}

// failingSigner is a key in an HSM that is unreachable: its public key is
// known, every signature fails.
type failingSigner struct{ crypto.Signer }

func (failingSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("hsm: connection reset")
}

// TestIDJAGUnsavedTokensLeaveNoGrant: the grant record an ID-JAG
// redemption saves before its tokens is revoked when the tokens cannot be
// saved or signed, so the user's connected apps do not list a grant that
// issued nothing.
func TestIDJAGUnsavedTokensLeaveNoGrant(t *testing.T) {
	for name, mutate := range map[string]func(*mcpoauth.Config){
		"tokens not saved": func(c *mcpoauth.Config) {
			model := &saveTokensFailingModel{}
			withModel(model, &model.MemoryModel)(c)
		},
		"access token not signed": withJWTAccessTokens(mcpoauth.SigningKey{Key: failingSigner{newSigningKey(t)}}),
	} {
		t.Run(name, func(t *testing.T) {
			p := newIdP(t, testIdP)
			h := newHarness(t, withIdP(p), mutate)
			id, sec := h.enterpriseClient()
			w := h.redeemIDJAG(id, sec, p.sign(t, p.claims(h, id)))
			require.Equal(t, http.StatusInternalServerError, w.Code, w.Body.String())
			list, err := h.srv.UserGrants(context.Background(), testIdP+"#"+enterpriseUser)
			require.NoError(t, err)
			require.Empty(t, list)
		})
	}
}
