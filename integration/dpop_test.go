package integration_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/dpop"
	"github.com/mcpoauth/mcpoauth/internal/secret"
)

// withDPoP turns DPoP on.
func withDPoP(c *mcpoauth.Config) { c.DPoP.Enabled = true }

// dpopClient holds a DPoP key and the last nonce the server gave it.
type dpopClient struct {
	h     *harness
	key   *ecdsa.PrivateKey
	nonce string
}

func newDPoPClient(h *harness) *dpopClient {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(h.t, err)
	return &dpopClient{h: h, key: k}
}

func (c *dpopClient) jkt() string {
	jkt, err := dpop.Thumbprint(c.key.Public())
	require.NoError(c.h.t, err)
	return jkt
}

// proof signs a proof for method and target; change alters its claims and
// jwk alters its key header.
func (c *dpopClient) proof(method, target, token string, change func(claims map[string]any), jwk ...any) string {
	c.h.t.Helper()
	claims := map[string]any{"jti": randomID(), "htm": method, "htu": target, "iat": c.h.clock.Now().Unix()}
	if c.nonce != "" {
		claims["nonce"] = c.nonce
	}
	if token != "" {
		claims["ath"] = dpop.AccessTokenHash(token)
	}
	if change != nil {
		change(claims)
	}
	var header any = jose.JSONWebKey{Key: c.key.Public()}
	if len(jwk) > 0 {
		header = jwk[0]
	}
	payload, err := json.Marshal(claims)
	require.NoError(c.h.t, err)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: c.key},
		(&jose.SignerOptions{}).WithType(dpop.ProofType).WithHeader("jwk", header))
	require.NoError(c.h.t, err)
	obj, err := s.Sign(payload)
	require.NoError(c.h.t, err)
	out, err := obj.CompactSerialize()
	require.NoError(c.h.t, err)
	return out
}

func randomID() string { return secret.NewID() }

func secret256(s string) mcpoauth.Digest { return secret.Digest(s) }

// send serves r with proof, remembering the nonce of the answer.
func (c *dpopClient) send(r *http.Request, proof string) *httptest.ResponseRecorder {
	if proof != "" {
		r.Header.Set(dpop.Header, proof)
	}
	w := c.h.do(r)
	if n := w.Header().Get(dpop.NonceHeader); n != "" {
		c.nonce = n
	}
	return w
}

// token posts a token request with a proof, retrying once after
// use_dpop_nonce as clients do (RFC 9449 §8).
func (c *dpopClient) token(form url.Values, basic ...string) *httptest.ResponseRecorder {
	for i := 0; ; i++ {
		r := newRequest(http.MethodPost, "/token", form.Encode())
		if len(basic) == 2 {
			r.SetBasicAuth(basic[0], basic[1])
		}
		w := c.send(r, c.proof(http.MethodPost, testIssuer+"/token", "", nil))
		if i == 0 && w.Code == http.StatusBadRequest && oauthError(c.h.t, w) == dpop.ErrorUseNonce {
			continue
		}
		return w
	}
}

// callMCP calls /mcp with the DPoP scheme, retrying once after
// use_dpop_nonce.
func (c *dpopClient) callMCP(token string) *httptest.ResponseRecorder {
	for i := 0; ; i++ {
		w := c.callMCPWith(token, c.proof(http.MethodGet, testResource, token, nil))
		if i == 0 && w.Code == http.StatusUnauthorized && strings.Contains(strings.Join(w.Header().Values("WWW-Authenticate"), ","), dpop.ErrorUseNonce) {
			continue
		}
		return w
	}
}

func (c *dpopClient) callMCPWith(token, proof string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, testResource, nil)
	r.Header.Set("Authorization", "DPoP "+token)
	return c.send(r, proof)
}

// boundTokens runs the code flow for a public client with proofs.
func (c *dpopClient) boundTokens(clientID string) tokenResponse {
	c.h.t.Helper()
	w := c.token(exchangeForm(clientID, c.h.code(clientID)))
	require.Equal(c.h.t, http.StatusOK, w.Code, w.Body.String())
	var tr tokenResponse
	require.NoError(c.h.t, json.Unmarshal(w.Body.Bytes(), &tr))
	require.Equal(c.h.t, "DPoP", tr.TokenType)
	return tr
}

func challenges(w *httptest.ResponseRecorder) string {
	return strings.Join(w.Header().Values("WWW-Authenticate"), ", ")
}

// newBoundSession starts a DPoP-enabled server and a client holding
// tokens bound to its key, which it has used once at /mcp.
func newBoundSession(t *testing.T) (*harness, *dpopClient, tokenResponse) {
	t.Helper()
	h := newHarness(t, withDPoP)
	c := newDPoPClient(h)
	tr := c.boundTokens(h.publicClient())
	require.Equal(t, http.StatusOK, c.callMCP(tr.AccessToken).Code)
	return h, c, tr
}

// requireProofRefusedAtMCP asserts the resource refused the request's
// proof (RFC 9449 §7.1: 401 with a DPoP invalid_dpop_proof challenge).
func requireProofRefusedAtMCP(t *testing.T, w *httptest.ResponseRecorder, msg ...any) {
	t.Helper()
	require.Equal(t, http.StatusUnauthorized, w.Code, msg...)
	require.Contains(t, challenges(w), `DPoP error="invalid_dpop_proof"`, msg...)
}

// requireProofRefusedAtToken asserts the token endpoint refused the
// request's proof (RFC 9449 §5: 400 invalid_dpop_proof).
func requireProofRefusedAtToken(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	require.Equal(t, http.StatusBadRequest, w.Code, w.Body.String())
	require.Equal(t, dpop.ErrorInvalidProof, oauthError(t, w))
}

func TestDPoPFlow(t *testing.T) {
	h := newHarness(t, withDPoP)
	c := newDPoPClient(h)
	client := h.publicClient()
	tr := c.boundTokens(client)
	info, err := h.srv.VerifyAccessToken(t.Context(), tr.AccessToken)
	require.NoError(t, err)
	require.Equal(t, c.jkt(), info.JKT)
	tok, err := h.model.GetToken(t.Context(), secret256(tr.RefreshToken))
	require.NoError(t, err)
	require.Equal(t, c.jkt(), tok.JKT, "a public client's refresh token is bound")

	w := c.callMCP(tr.AccessToken)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())

	// The nonce expires: the resource server asks for a new one, the
	// client renews and succeeds.
	h.clock.Advance(10 * time.Minute)
	w = c.callMCPWith(tr.AccessToken, c.proof(http.MethodGet, testResource, tr.AccessToken, nil))
	require.Equal(t, http.StatusUnauthorized, w.Code)
	require.Contains(t, challenges(w), `DPoP error="use_dpop_nonce"`)
	require.NotEmpty(t, w.Header().Get(dpop.NonceHeader))
	w = c.callMCP(tr.AccessToken)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())

	// A refresh with a proof of the same key rotates and stays bound.
	w = c.token(url.Values{"grant_type": {"refresh_token"}, "client_id": {client}, "refresh_token": {tr.RefreshToken}})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var tr2 tokenResponse
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &tr2))
	require.Equal(t, "DPoP", tr2.TokenType)
	require.Equal(t, http.StatusOK, c.callMCP(tr2.AccessToken).Code)

}

// Introspection tells a bound token's key and type (RFC 9449 §6.2), and a
// confidential client's refresh token is not bound (§5).
func TestDPoPIntrospection(t *testing.T) {
	h := newIntrospectionHarness(t, withDPoP)
	c := newDPoPClient(h)
	id, secret := h.confidentialClient()
	w := c.token(exchangeForm(id, h.code(id)), id, secret)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var tr tokenResponse
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &tr))
	iw := h.introspect(url.Values{"token": {tr.AccessToken}}, testRSClientID, testRSClientSecret)
	require.Equal(t, http.StatusOK, iw.Code)
	var got map[string]any
	require.NoError(t, json.Unmarshal(iw.Body.Bytes(), &got))
	require.Equal(t, "DPoP", got["token_type"])
	require.Equal(t, map[string]any{"jkt": c.jkt()}, got["cnf"])
	tok, err := h.model.GetToken(t.Context(), secret256(tr.RefreshToken))
	require.NoError(t, err)
	require.Empty(t, tok.JKT)
}

func TestDPoPMetadata(t *testing.T) {
	h := newHarness(t, func(c *mcpoauth.Config) { c.DPoP.Required = true })
	var as map[string]any
	w := h.do(httptest.NewRequest(http.MethodGet, testIssuer+"/.well-known/oauth-authorization-server", nil))
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &as))
	require.Equal(t, []any{"ES256", "RS256", "PS256", "EdDSA"}, as["dpop_signing_alg_values_supported"])
	var prm map[string]any
	w = h.do(httptest.NewRequest(http.MethodGet, testIssuer+"/.well-known/oauth-protected-resource/mcp", nil))
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &prm))
	require.Equal(t, true, prm["dpop_bound_access_tokens_required"])
	require.NotEmpty(t, prm["dpop_signing_alg_values_supported"])

	off := newHarness(t)
	w = off.do(httptest.NewRequest(http.MethodGet, testIssuer+"/.well-known/oauth-authorization-server", nil))
	require.NotContains(t, w.Body.String(), "dpop")
}

// A proof is accepted once (RFC 9449 §11.1).
func TestDPoPProofReplayed(t *testing.T) {
	h, c, tr := newBoundSession(t)
	p := c.proof(http.MethodGet, testResource, tr.AccessToken, nil)
	require.Equal(t, http.StatusOK, c.callMCPWith(tr.AccessToken, p).Code)
	requireProofRefusedAtMCP(t, c.callMCPWith(tr.AccessToken, p))

	// At the token endpoint too.
	client := h.publicClient()
	code := h.code(client)
	c.token(url.Values{"grant_type": {"client_credentials"}}) // fetch a nonce
	tp := c.proof(http.MethodPost, testIssuer+"/token", "", nil)
	post := func(form url.Values) *httptest.ResponseRecorder {
		return c.send(newRequest(http.MethodPost, "/token", form.Encode()), tp)
	}
	require.Equal(t, http.StatusOK, post(exchangeForm(client, code)).Code)
	requireProofRefusedAtToken(t, post(url.Values{"grant_type": {"refresh_token"}, "client_id": {client}, "refresh_token": {"x"}}))
}

// htm and htu name the request the proof was made for (RFC 9449 §4.3).
func TestDPoPWrongHTMOrHTU(t *testing.T) {
	h, c, tr := newBoundSession(t)
	for name, change := range map[string]func(map[string]any){
		"htm":      func(m map[string]any) { m["htm"] = http.MethodPost },
		"htu path": func(m map[string]any) { m["htu"] = testIssuer + "/other" },
		"htu host": func(m map[string]any) { m["htu"] = "https://evil.example.com/mcp" },
	} {
		requireProofRefusedAtMCP(t, c.callMCPWith(tr.AccessToken, c.proof(http.MethodGet, testResource, tr.AccessToken, change)), name)
	}
	// The token endpoint refuses a proof made for /mcp.
	client := h.publicClient()
	r := newRequest(http.MethodPost, "/token", exchangeForm(client, h.code(client)).Encode())
	requireProofRefusedAtToken(t, c.send(r, c.proof(http.MethodPost, testResource, "", nil)))
}

// A proof older than the window is refused (RFC 9449 §4.3, §11.1).
func TestDPoPStaleIAT(t *testing.T) {
	h, c, tr := newBoundSession(t)
	stale := func(m map[string]any) { m["iat"] = h.clock.Now().Add(-2 * time.Minute).Unix() }
	requireProofRefusedAtMCP(t, c.callMCPWith(tr.AccessToken, c.proof(http.MethodGet, testResource, tr.AccessToken, stale)))
}

// The jwk header must be a public key (RFC 9449 §4.3).
func TestDPoPPrivateKeyInJWK(t *testing.T) {
	h := newHarness(t, withDPoP)
	c := newDPoPClient(h)
	c.token(url.Values{"grant_type": {"client_credentials"}}) // fetch a nonce
	client := h.publicClient()
	r := newRequest(http.MethodPost, "/token", exchangeForm(client, h.code(client)).Encode())
	requireProofRefusedAtToken(t, c.send(r, c.proof(http.MethodPost, testIssuer+"/token", "", nil, jose.JSONWebKey{Key: c.key})))
}

// ath is the hash of the token presented (RFC 9449 §4.3, §7.1).
func TestDPoPATHMismatch(t *testing.T) {
	_, c, tr := newBoundSession(t)
	requireProofRefusedAtMCP(t, c.callMCPWith(tr.AccessToken, c.proof(http.MethodGet, testResource, tr.AccessToken, func(m map[string]any) {
		m["ath"] = dpop.AccessTokenHash("another token")
	})))
	w := c.callMCPWith(tr.AccessToken, c.proof(http.MethodGet, testResource, tr.AccessToken, func(m map[string]any) { delete(m, "ath") }))
	require.Equal(t, http.StatusUnauthorized, w.Code)
}

// A bound token is accepted only with a proof of its key (RFC 9449 §7.1),
// and a bound refresh token only rotates with one (§5).
func TestDPoPTokenUsedWithAnotherKey(t *testing.T) {
	h := newHarness(t, withDPoP)
	owner, thief := newDPoPClient(h), newDPoPClient(h)
	client := h.publicClient()
	tr := owner.boundTokens(client)
	w := thief.callMCP(tr.AccessToken)
	require.Equal(t, http.StatusUnauthorized, w.Code)
	require.Contains(t, challenges(w), `DPoP error="invalid_token"`)

	requireProofRefusedAtToken(t, thief.token(url.Values{"grant_type": {"refresh_token"}, "client_id": {client}, "refresh_token": {tr.RefreshToken}}))
	requireProofRefusedAtToken(t, h.postForm("/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {client}, "refresh_token": {tr.RefreshToken}}))
	// Neither burned the token: its owner still rotates it.
	w = owner.token(url.Values{"grant_type": {"refresh_token"}, "client_id": {client}, "refresh_token": {tr.RefreshToken}})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
}

// A bound token presented as Bearer is refused (RFC 9449 §7.2).
func TestDPoPTokenAsBearer(t *testing.T) {
	h := newHarness(t, withDPoP)
	c := newDPoPClient(h)
	tr := c.boundTokens(h.publicClient())
	w := h.callMCP(tr.AccessToken)
	require.Equal(t, http.StatusUnauthorized, w.Code)
	require.Contains(t, challenges(w), `Bearer error="invalid_token"`)
	require.Contains(t, challenges(w), `DPoP `)
	// Even with a valid proof beside it.
	r := httptest.NewRequest(http.MethodGet, testResource, nil)
	r.Header.Set("Authorization", "Bearer "+tr.AccessToken)
	w = c.send(r, c.proof(http.MethodGet, testResource, tr.AccessToken, nil))
	require.Equal(t, http.StatusUnauthorized, w.Code)
}

// An unbound token is not accepted with the DPoP scheme, and Bearer tokens
// keep working beside DPoP.
func TestDPoPUnboundToken(t *testing.T) {
	h := newHarness(t, withDPoP)
	c := newDPoPClient(h)
	tr := h.tokens(h.publicClient())
	require.Equal(t, "Bearer", tr.TokenType)
	require.Equal(t, http.StatusOK, h.callMCP(tr.AccessToken).Code)
	w := c.callMCP(tr.AccessToken)
	require.Equal(t, http.StatusUnauthorized, w.Code)
	require.Contains(t, challenges(w), `DPoP error="invalid_token"`)
}

// A client that registered dpop_bound_access_tokens, or a server that
// requires DPoP, gets no token without a proof (RFC 9449 §5.2).
func TestDPoPProofRequired(t *testing.T) {
	h := newHarness(t, withDPoP)
	reg := h.registerClient(map[string]any{"redirect_uris": []string{testRedirect}, "token_endpoint_auth_method": "none", "dpop_bound_access_tokens": true})
	require.Equal(t, true, reg["dpop_bound_access_tokens"])
	client := reg["client_id"].(string)
	requireProofRefusedAtToken(t, h.postForm("/token", exchangeForm(client, h.code(client))))

	req := newHarness(t, func(c *mcpoauth.Config) { c.DPoP.Required = true })
	client = req.publicClient()
	requireProofRefusedAtToken(t, req.postForm("/token", exchangeForm(client, req.code(client))))
	// At the resource too: an unbound token (one issued before DPoP was
	// required) is refused (dpop_bound_access_tokens_required, RFC 9449
	// §7.1).
	now := req.clock.Now()
	unbound := "unbound-" + randomID()
	require.NoError(t, req.model.SaveTokens(context.Background(), &mcpoauth.Token{
		Digest: secret256(unbound), Kind: mcpoauth.AccessToken, ClientID: client, UserID: "alice", GrantID: randomID(),
		Scopes: []string{testScope}, Resource: testResource, IssuedAt: now, ExpiresAt: now.Add(time.Hour), GrantExpiresAt: now.Add(time.Hour),
	}))
	mw := req.callMCP(unbound)
	require.Equal(t, http.StatusUnauthorized, mw.Code, mw.Body.String())
	require.Contains(t, challenges(mw), "DPoP ")

	off := newHarness(t)
	rw := off.register(`{"redirect_uris":["` + testRedirect + `"],"token_endpoint_auth_method":"none","dpop_bound_access_tokens":true}`)
	require.Equal(t, http.StatusBadRequest, rw.Code)
}

// TestDPoPExactlyOneProof: a request with two DPoP headers is refused, at
// the token endpoint and at the resource (RFC 9449 §4.3: exactly one), even
// when both proofs are valid.
func TestDPoPExactlyOneProof(t *testing.T) {
	h := newHarness(t, withDPoP)
	c := newDPoPClient(h)
	id := h.publicClient()
	tr := c.boundTokens(id)

	form := refreshForm(id, tr.RefreshToken)
	r := newRequest(http.MethodPost, "/token", form.Encode())
	r.Header.Add(dpop.Header, c.proof(http.MethodPost, testIssuer+"/token", "", nil))
	r.Header.Add(dpop.Header, c.proof(http.MethodPost, testIssuer+"/token", "", nil))
	w := h.do(r)
	require.Equal(t, http.StatusBadRequest, w.Code, w.Body.String())
	assert.Equal(t, dpop.ErrorInvalidProof, oauthError(t, w))

	r = httptest.NewRequest(http.MethodGet, testResource, nil)
	r.Header.Set("Authorization", "DPoP "+tr.AccessToken)
	r.Header.Add(dpop.Header, c.proof(http.MethodGet, testResource, tr.AccessToken, nil))
	r.Header.Add(dpop.Header, c.proof(http.MethodGet, testResource, tr.AccessToken, nil))
	w = h.do(r)
	require.Equal(t, http.StatusUnauthorized, w.Code)
	assert.Contains(t, challenges(w), `DPoP error="`+dpop.ErrorInvalidProof+`"`)
}
