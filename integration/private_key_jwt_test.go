package integration_test

import (
	"cmp"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/internal/cimd"
	"github.com/mcpoauth/mcpoauth/metadata"
)

// jwtAssertionType is RFC 7523 §2.2's client_assertion_type.
const jwtAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// clientKey is a client's signing key and its public JWK.
type clientKey struct {
	priv crypto.Signer
	alg  jose.SignatureAlgorithm
	kid  string
}

func newClientKey(t *testing.T, alg jose.SignatureAlgorithm, kid string) *clientKey {
	t.Helper()
	var (
		priv crypto.Signer
		err  error
	)
	switch alg {
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.RS256, jose.PS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("no key for %s", alg)
	}
	require.NoError(t, err)
	return &clientKey{priv: priv, alg: alg, kid: kid}
}

// jwk is the public key as a JWK Set member.
func (k *clientKey) jwk() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
}

// jwks is a JWK Set of the public keys, as raw JSON.
func jwks(t *testing.T, keys ...*clientKey) json.RawMessage {
	t.Helper()
	var set jose.JSONWebKeySet
	for _, k := range keys {
		set.Keys = append(set.Keys, k.jwk())
	}
	b, err := json.Marshal(set)
	require.NoError(t, err)
	return b
}

// sign signs claims as a compact JWS with the key's algorithm and kid.
func (k *clientKey) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if k.kid != "" {
		opts = opts.WithHeader("kid", k.kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.priv}, opts)
	require.NoError(t, err)
	return signWith(t, s, claims)
}

func signWith(t *testing.T, s jose.Signer, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	require.NoError(t, err)
	jws, err := s.Sign(payload)
	require.NoError(t, err)
	out, err := jws.CompactSerialize()
	require.NoError(t, err)
	return out
}

// assertionClaims are valid RFC 7523 §3 claims of an assertion by clientID,
// for the harness server, expiring in a minute, with a fresh jti.
func (h *harness) assertionClaims(clientID string) map[string]any {
	now := h.clock.Now()
	return map[string]any{
		"iss": clientID,
		"sub": clientID,
		"aud": testIssuer + "/token",
		"iat": now.Unix(),
		"exp": now.Add(time.Minute).Unix(),
		"jti": rand.Text(),
	}
}

// withAssertion adds a client assertion to form.
func withAssertion(form url.Values, assertion string) url.Values {
	out := url.Values{}
	for k, v := range form {
		out[k] = v
	}
	out.Set("client_assertion_type", jwtAssertionType)
	out.Set("client_assertion", assertion)
	return out
}

// clientCredentialsForm is a client_credentials token request with no
// client authentication.
func clientCredentialsForm() url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "scope": {testScope}, "resource": {testResource}}
}

// keyClient pre-registers a client_credentials client that authenticates
// with private_key_jwt and the keys of jwks or jwksURI.
func (h *harness) keyClient(keys json.RawMessage, jwksURI string) string {
	h.t.Helper()
	id, secret := h.preRegister(metadata.ClientMetadata{
		GrantTypes:              []string{"client_credentials"},
		TokenEndpointAuthMethod: "private_key_jwt",
		JWKS:                    keys,
		JWKSURI:                 jwksURI,
		ClientName:              "Key Client",
	})
	require.Empty(h.t, secret, "a private_key_jwt client gets no secret")
	return id
}

// requireRefused checks a response is RFC 6749 §5.2 invalid_client, 401.
func requireRefused(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	require.Equal(t, http.StatusUnauthorized, w.Code, w.Body.String())
	require.Equal(t, "invalid_client", oauthError(t, w))
}

// TestPrivateKeyJWTStaticClient: RFC 7523 §2.2 at the token, introspection
// and revocation endpoints, for a client the operator registered with an
// inline jwks, with every allowed algorithm.
func TestPrivateKeyJWTStaticClient(t *testing.T) {
	for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.EdDSA} {
		t.Run(string(alg), func(t *testing.T) {
			h := newHarness(t, withAllGrants)
			key := newClientKey(t, alg, "k1")
			id := h.keyClient(jwks(t, key), "")

			w := h.postForm("/token", withAssertion(clientCredentialsForm(), key.sign(t, h.assertionClaims(id))))
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			tr := decodeTokens(t, w)
			require.Equal(t, http.StatusOK, h.callMCP(tr.AccessToken).Code)

			// RFC 7662 §2.1: a confidential client may introspect; this one
			// authenticates with a key.
			iw := h.postForm("/introspect", withAssertion(url.Values{"token": {tr.AccessToken}}, key.sign(t, h.assertionClaims(id))))
			require.Equal(t, http.StatusOK, iw.Code, iw.Body.String())
			require.Contains(t, iw.Body.String(), `"active":true`)

			rw := h.postForm("/revoke", withAssertion(url.Values{"token": {tr.AccessToken}}, key.sign(t, h.assertionClaims(id))))
			require.Equal(t, http.StatusOK, rw.Code, rw.Body.String())
			require.Equal(t, http.StatusUnauthorized, h.callMCP(tr.AccessToken).Code)
		})
	}
}

// TestPrivateKeyJWTDynamicClient: a client registers private_key_jwt with
// its jwks at /register (RFC 7591 §2), gets no secret, and authenticates
// with an assertion; its client_id alone, or a secret, is not enough (RFC
// 7591 §2: it uses the method it registered).
func TestPrivateKeyJWTDynamicClient(t *testing.T) {
	h := newHarness(t)
	key := newClientKey(t, jose.ES256, "")
	out := h.registerClient(map[string]any{
		"redirect_uris":              []string{testRedirect},
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"token_endpoint_auth_method": "private_key_jwt",
		"jwks":                       jwks(t, key),
		"client_name":                "Key App",
	})
	require.NotContains(t, out, "client_secret")
	id := out["client_id"].(string)

	code := h.code(id)
	requireRefused(t, h.postForm("/token", exchangeForm(id, code)))
	form := exchangeForm(id, code)
	form.Set("client_secret", "guess")
	requireRefused(t, h.postForm("/token", form))
	require.Zero(t, h.model.Stats().Tokens)

	// The refusals burnt nothing: the code still redeems.
	w := h.postForm("/token", withAssertion(exchangeForm(id, code), key.sign(t, h.assertionClaims(id))))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	tr := decodeTokens(t, w)
	w = h.postForm("/token", withAssertion(refreshForm(id, tr.RefreshToken), key.sign(t, h.assertionClaims(id))))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
}

// chatGPTClientID and the rest are the shape of ChatGPT's client ID
// metadata document as public reports show it (Altinity/altinity-mcp#118,
// pocket-id/pocket-id#1718): private_key_jwt with RS256 keys at a jwks_uri.
const (
	chatGPTClientID = "https://chatgpt.com/oauth/tU1UVEq8rRTK/client.json"
	chatGPTRedirect = "https://chatgpt.com/connector/oauth/tU1UVEq8rRTK"
	chatGPTJWKSPath = "/oauth/jwks.json"
)

// serveChatGPT serves a ChatGPT-shaped document and its key set from f.
func serveChatGPT(t *testing.T, f *cimdFixture, keys ...*clientKey) {
	t.Helper()
	doc, err := json.Marshal(map[string]any{
		"client_id":                       chatGPTClientID,
		"client_uri":                      "https://chatgpt.com/",
		"redirect_uris":                   []string{chatGPTRedirect},
		"grant_types":                     []string{"authorization_code", "refresh_token"},
		"response_types":                  []string{"code"},
		"client_name":                     "ChatGPT",
		"token_endpoint_auth_method":      "private_key_jwt",
		"token_endpoint_auth_signing_alg": "RS256",
		"jwks_uri":                        "https://chatgpt.com" + chatGPTJWKSPath,
	})
	require.NoError(t, err)
	f.serve("/oauth/tU1UVEq8rRTK/client.json", cimdResponse{body: string(doc)})
	f.serve(chatGPTJWKSPath, cimdResponse{body: string(jwks(t, keys...))})
}

// chatGPTCode runs the consent flow for the ChatGPT document and returns
// the code.
func chatGPTCode(t *testing.T, h *harness) string {
	t.Helper()
	params := authorizeParams(chatGPTClientID)
	params.Set("redirect_uri", chatGPTRedirect)
	b := &browser{}
	p := h.pending(b, h.authorize(b, params))
	require.Equal(t, "ChatGPT", p.ClientName)
	require.Equal(t, "chatgpt.com", p.ClientIDHost)
	return h.approvePending(b, p, "alice").Query().Get("code")
}

func chatGPTExchange(code string) url.Values {
	form := exchangeForm(chatGPTClientID, code)
	form.Set("redirect_uri", chatGPTRedirect)
	return form
}

// TestPrivateKeyJWTChatGPTDocument: a ChatGPT-shaped metadata document
// reaches the consent page and its code redeems with an RS256 assertion
// signed by a key of its jwks_uri. The document binds the client to
// private_key_jwt: the same request with the client_id alone (as a public
// client) is refused, and burns nothing.
func TestPrivateKeyJWTChatGPTDocument(t *testing.T) {
	f := newCIMDFixture(t)
	key := newClientKey(t, jose.RS256, "chatgpt-1")
	serveChatGPT(t, f, key)
	h := newHarness(t, withCIMD(t, f))

	code := chatGPTCode(t, h)
	requireRefused(t, h.postForm("/token", chatGPTExchange(code)))
	require.Zero(t, h.model.Stats().Tokens)

	w := h.postForm("/token", withAssertion(chatGPTExchange(code), key.sign(t, h.assertionClaims(chatGPTClientID))))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	tr := decodeTokens(t, w)
	mcp := h.callMCP(tr.AccessToken)
	require.Equal(t, http.StatusOK, mcp.Code, mcp.Body.String())
	require.Contains(t, mcp.Body.String(), `"client":"`+chatGPTClientID+`"`)
	require.Equal(t, 1, f.hitCount(chatGPTJWKSPath), "one fetch of the key set")
	require.Zero(t, h.model.Stats().Clients, "nothing is registered")
}

// TestPrivateKeyJWTKeyRotation: a client that rotates its keys publishes
// the new one at its jwks_uri; an assertion with a kid the cached set lacks
// fetches the set once more (at most every 30 seconds), and a kid still
// unknown then is refused without another fetch.
func TestPrivateKeyJWTKeyRotation(t *testing.T) {
	f := newCIMDFixture(t)
	old := newClientKey(t, jose.ES256, "2026-11")
	serveChatGPT(t, f, old)
	h := newHarness(t, withCIMD(t, f))
	sign := func(k *clientKey) string { return k.sign(t, h.assertionClaims(chatGPTClientID)) }

	require.Equal(t, http.StatusOK, h.postForm("/token", withAssertion(chatGPTExchange(chatGPTCode(t, h)), sign(old))).Code)
	require.Equal(t, 1, f.hitCount(chatGPTJWKSPath))

	rotated := newClientKey(t, jose.ES256, "2026-12")
	serveChatGPT(t, f, rotated)
	h.clock.Advance(31 * time.Second)
	w := h.postForm("/token", withAssertion(chatGPTExchange(chatGPTCode(t, h)), sign(rotated)))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, 2, f.hitCount(chatGPTJWKSPath), "the unknown kid fetched the set again")

	// Removed from the set: the old key no longer authenticates.
	requireRefused(t, h.postForm("/token", withAssertion(chatGPTExchange(chatGPTCode(t, h)), sign(old))))
	unknown := newClientKey(t, jose.ES256, "never-published")
	requireRefused(t, h.postForm("/token", withAssertion(chatGPTExchange(chatGPTCode(t, h)), sign(unknown))))
	require.Equal(t, 2, f.hitCount(chatGPTJWKSPath), "a refetch within 30 seconds is not repeated")
}

// TestPrivateKeyJWTRefuses: each rule an assertion breaks is its own
// refusal: 401 invalid_client, and nothing issued.
func TestPrivateKeyJWTRefuses(t *testing.T) {
	for name, tc := range map[string]func(t *testing.T, h *harness, key *clientKey, id string) string{
		"ReplayedJTI": func(t *testing.T, h *harness, key *clientKey, id string) string {
			a := key.sign(t, h.assertionClaims(id))
			w := h.postForm("/token", withAssertion(clientCredentialsForm(), a))
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			return a
		},
		"Expired": func(t *testing.T, h *harness, key *clientKey, id string) string {
			c := h.assertionClaims(id)
			c["exp"] = h.clock.Now().Add(-time.Second).Unix()
			return key.sign(t, c)
		},
		"ExpTooFarAhead": func(t *testing.T, h *harness, key *clientKey, id string) string {
			c := h.assertionClaims(id)
			c["exp"] = h.clock.Now().Add(time.Hour).Unix()
			return key.sign(t, c)
		},
		"MissingExp": func(t *testing.T, h *harness, key *clientKey, id string) string {
			c := h.assertionClaims(id)
			delete(c, "exp")
			return key.sign(t, c)
		},
		"MissingJTI": func(t *testing.T, h *harness, key *clientKey, id string) string {
			c := h.assertionClaims(id)
			delete(c, "jti")
			return key.sign(t, c)
		},
		"WrongAudience": func(t *testing.T, h *harness, key *clientKey, id string) string {
			c := h.assertionClaims(id)
			c["aud"] = "https://other-as.example.com/token"
			return key.sign(t, c)
		},
		"IssuerNotClientID": func(t *testing.T, h *harness, key *clientKey, id string) string {
			c := h.assertionClaims(id)
			c["iss"] = "someone-else"
			return key.sign(t, c)
		},
		"AlgNone": func(t *testing.T, h *harness, key *clientKey, id string) string {
			payload, err := json.Marshal(h.assertionClaims(id))
			require.NoError(t, err)
			enc := base64.RawURLEncoding.EncodeToString
			return enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc(payload) + "."
		},
		"HMACSignedWithPublicKey": func(t *testing.T, h *harness, key *clientKey, id string) string {
			// The classic confusion: HS256 keyed with the public key a
			// verifier would hold, in every form it might be held.
			der, err := x509.MarshalPKIXPublicKey(key.priv.Public())
			require.NoError(t, err)
			s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: der}, (&jose.SignerOptions{}).WithHeader("kid", key.kid))
			require.NoError(t, err)
			return signWith(t, s, h.assertionClaims(id))
		},
		"KeyOfAnotherClient": func(t *testing.T, h *harness, key *clientKey, id string) string {
			other := newClientKey(t, jose.RS256, key.kid)
			h.keyClient(jwks(t, other), "")
			return other.sign(t, h.assertionClaims(id))
		},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, withAllGrants)
			key := newClientKey(t, jose.RS256, "k1")
			id := h.keyClient(jwks(t, key), "")
			assertion := tc(t, h, key, id)
			before := h.model.Stats().Tokens
			requireRefused(t, h.postForm("/token", withAssertion(clientCredentialsForm(), assertion)))
			require.Equal(t, before, h.model.Stats().Tokens, "nothing issued")
		})
	}
}

// TestPrivateKeyJWTRefusesPrivateJWKSURI: a jwks_uri that resolves to a
// loopback or private address is never connected to (the guarded transport
// of metadata documents): the assertion is refused, nothing issued.
func TestPrivateKeyJWTRefusesPrivateJWKSURI(t *testing.T) {
	key := newClientKey(t, jose.ES256, "k1")
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		t.Error("the jwks_uri on a private address was fetched")
		_, _ = w.Write(jwks(t, key))
	}))
	t.Cleanup(srv.Close)
	h := newHarness(t, withAllGrants)
	id := h.keyClient(nil, srv.URL+"/jwks.json")
	requireRefused(t, h.postForm("/token", withAssertion(clientCredentialsForm(), key.sign(t, h.assertionClaims(id)))))
	require.Zero(t, h.model.Stats().Tokens)
	h.mu.Lock()
	defer h.mu.Unlock()
	require.NotEmpty(t, h.errs)
	require.True(t, errors.Is(h.errs[len(h.errs)-1], cimd.ErrForbiddenAddress), "%v", h.errs[len(h.errs)-1])
}

// TestPrivateKeyJWTNeedsReplayStore: a Model that cannot record assertion
// ids leaves private_key_jwt off: not advertised, not accepted at
// registration.
func TestPrivateKeyJWTNeedsReplayStore(t *testing.T) {
	h := newHarness(t, func(c *mcpoauth.Config) {
		m := c.Model.(*mcpoauth.MemoryModel)
		c.Model = withoutReplayStore{m, m}
	})
	require.NotContains(t, h.srv.Metadata().TokenEndpointAuthMethodsSupported, "private_key_jwt")
	require.Empty(t, h.srv.Metadata().TokenEndpointAuthSigningAlgValuesSupported)
	regRequireError(t, h.register(regJSON(t, map[string]any{
		"redirect_uris":              []string{testRedirect},
		"token_endpoint_auth_method": "private_key_jwt",
		"jwks":                       jwks(t, newClientKey(t, jose.ES256, "")),
	})), http.StatusBadRequest, "invalid_client_metadata")
}

// withoutReplayStore is a MemoryModel that hides UseAssertionID.
type withoutReplayStore struct {
	mcpoauth.Model
	mcpoauth.ClientRegistrar
}

// TestPrivateKeyJWTDeviceEndpoint: RFC 8628 §3.1 authenticates a
// confidential client at the device authorization endpoint as at the token
// endpoint: with its assertion, and not with its client_id alone.
func TestPrivateKeyJWTDeviceEndpoint(t *testing.T) {
	h := newHarness(t, withAllGrants)
	key := newClientKey(t, jose.EdDSA, "")
	id, _ := h.preRegister(metadata.ClientMetadata{
		GrantTypes:              []string{mcpoauth.GrantDeviceCode},
		TokenEndpointAuthMethod: "private_key_jwt",
		JWKS:                    jwks(t, key),
		ClientName:              "Key TV",
	})
	requireRefused(t, h.postForm("/device", deviceForm(id)))
	form := deviceForm(id)
	w := h.postForm("/device", withAssertion(form, key.sign(t, h.assertionClaims(id))))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Contains(t, w.Body.String(), "device_code")
}

// TestPrivateKeyJWTRequestShape: RFC 7521 §4.2 and RFC 6749 §2.3: an
// assertion is one method, sent alone, with its type, by the client its
// sub names.
func TestPrivateKeyJWTRequestShape(t *testing.T) {
	h := newHarness(t, withAllGrants)
	key := newClientKey(t, jose.ES256, "")
	id := h.keyClient(jwks(t, key), "")
	secretID, secret := h.confidentialClient()
	for name, tc := range map[string]struct {
		// signer is the client the assertion names ("": the key's own).
		signer string
		// edit alters the client_credentials request with the assertion.
		edit  func(f url.Values)
		basic []string
		code  string
	}{
		"assertion and Basic":         {"", nil, []string{secretID, secret}, "invalid_request"},
		"assertion and client_secret": {"", func(f url.Values) { f.Set("client_secret", secret) }, nil, "invalid_request"},
		"assertion without its type":  {"", func(f url.Values) { f.Del("client_assertion_type") }, nil, "invalid_request"},
		"another assertion type": {"", func(f url.Values) {
			f.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer")
		}, nil, "invalid_client"},
		"client_id not the sub":   {"", func(f url.Values) { f.Set("client_id", secretID) }, nil, "invalid_client"},
		"a secret client signing": {secretID, nil, nil, "invalid_client"},
	} {
		t.Run(name, func(t *testing.T) {
			signer := cmp.Or(tc.signer, id)
			f := withAssertion(clientCredentialsForm(), key.sign(t, h.assertionClaims(signer)))
			if tc.edit != nil {
				tc.edit(f)
			}
			w := h.postForm("/token", f, tc.basic...)
			require.Equal(t, tc.code, oauthError(t, w), w.Body.String())
			require.Zero(t, h.model.Stats().Tokens, "nothing issued")
		})
	}
	// With client_id equal to the sub, as RFC 7521 §4.2 allows.
	f := withAssertion(clientCredentialsForm(), key.sign(t, h.assertionClaims(id)))
	f.Set("client_id", id)
	w := h.postForm("/token", f)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
}
