package integration_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/bearer"
	"github.com/mcpoauth/mcpoauth/metadata"
)

func newSigningKey(t testing.TB) crypto.Signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

// withJWTAccessTokens switches the harness to RFC 9068 access tokens.
func withJWTAccessTokens(keys ...mcpoauth.SigningKey) func(*mcpoauth.Config) {
	return func(c *mcpoauth.Config) {
		c.AccessTokenFormat = mcpoauth.AccessTokenJWT
		c.SigningKeys = keys
	}
}

// jwtParts decodes a compact JWS's header and claims, unverified.
func jwtParts(t *testing.T, token string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(token, ".")
	require.Len(t, parts, 3)
	for i, dst := range []*map[string]any{&header, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(raw, dst))
	}
	return header, claims
}

// handlerTransport sends requests to an http.Handler, the current one of
// *h: a resource server's JWKS fetches reach the harness without a network.
type handlerTransport struct{ h *atomic.Pointer[harness] }

func (tr handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	w := httptest.NewRecorder()
	tr.h.Load().handler.ServeHTTP(w, r)
	return w.Result(), nil
}

// newResourceServerVerifier is a JWTVerifier of a resource server apart
// from the authorization server, fetching the JWKS of the harness in as.
func newResourceServerVerifier(t *testing.T, as *atomic.Pointer[harness], jwksURI string) *bearer.JWTVerifier {
	v, err := bearer.NewJWTVerifier(bearer.JWTOptions{
		JWKSURL: jwksURI, Issuer: testIssuer, Resource: testResource,
		HTTPClient: &http.Client{Transport: handlerTransport{as}},
		Now:        as.Load().clock.Now,
	})
	require.NoError(t, err)
	return v
}

func TestJWTAccessTokenThroughTheCodeFlow(t *testing.T) {
	h := newHarness(t, withJWTAccessTokens(mcpoauth.SigningKey{Key: newSigningKey(t), KeyID: "k1"}))
	var as atomic.Pointer[harness]
	as.Store(h)

	// RFC 8414 §2: the metadata advertises the key set.
	md := h.srv.Metadata()
	require.Equal(t, testIssuer+mcpoauth.JWKSPath, md.JWKSURI)
	w := h.do(httptest.NewRequest(http.MethodGet, md.JWKSURI, nil))
	require.Equal(t, http.StatusOK, w.Code)
	require.Equal(t, "application/jwk-set+json", w.Header().Get("Content-Type"))
	require.Equal(t, "public, max-age=300", w.Header().Get("Cache-Control"))
	require.Contains(t, w.Body.String(), `"kid":"k1"`)
	require.NotContains(t, w.Body.String(), `"d":`, "the JWKS must not publish the private key")

	client := h.publicClient()
	tr := h.tokens(client)
	header, claims := jwtParts(t, tr.AccessToken)
	// RFC 9068 §2.1.
	require.Equal(t, "at+jwt", header["typ"])
	require.Equal(t, "ES256", header["alg"])
	require.Equal(t, "k1", header["kid"])
	// RFC 9068 §2.2.
	require.Equal(t, testIssuer, claims["iss"])
	require.Equal(t, "alice", claims["sub"])
	require.Equal(t, testResource, claims["aud"])
	require.Equal(t, client, claims["client_id"])
	require.Equal(t, testScope, claims["scope"])
	require.EqualValues(t, harnessStart.Unix(), claims["iat"])
	require.EqualValues(t, harnessStart.Add(mcpoauth.DefaultAccessTokenLifetime).Unix(), claims["exp"])
	require.NotEmpty(t, claims["jti"])
	require.NotEmpty(t, tr.RefreshToken)
	require.NotContains(t, tr.RefreshToken, ".", "refresh tokens stay opaque")

	// The server's own RequireBearerAuth accepts it, and so does a resource
	// server verifying it offline.
	require.Equal(t, http.StatusOK, h.callMCP(tr.AccessToken).Code)
	info, err := newResourceServerVerifier(t, &as, md.JWKSURI).VerifyAccessToken(context.Background(), tr.AccessToken)
	require.NoError(t, err)
	require.Equal(t, "alice", info.UserID)
	require.Equal(t, client, info.ClientID)

	// Still bound to its grant: revoking it stops it at the server at once.
	w = h.postForm("/revoke", url.Values{"token": {tr.AccessToken}, "client_id": {client}})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, http.StatusUnauthorized, h.callMCP(tr.AccessToken).Code)
}

func TestJWTAccessTokenKeyRotation(t *testing.T) {
	k1 := mcpoauth.SigningKey{Key: newSigningKey(t), KeyID: "k1"}
	k2 := mcpoauth.SigningKey{Key: newSigningKey(t), KeyID: "k2"}
	before := newHarness(t, withJWTAccessTokens(k1))
	var as atomic.Pointer[harness]
	as.Store(before)
	rs := newResourceServerVerifier(t, &as, testIssuer+mcpoauth.JWKSPath)
	ctx := context.Background()

	client := before.publicClient()
	old := before.tokens(client).AccessToken
	_, err := rs.VerifyAccessToken(ctx, old)
	require.NoError(t, err)

	// restart runs the server again on the same storage and clock with
	// other keys, as a deployment does.
	restart := func(keys ...mcpoauth.SigningKey) *harness {
		h := newHarness(t, withJWTAccessTokens(keys...), func(c *mcpoauth.Config) {
			c.Model = before.model
			c.Now = before.clock.Now
		})
		h.clock = before.clock
		as.Store(h)
		return h
	}

	// Rotation: k2 signs, k1 stays published. Tokens k1 signed still
	// verify at the server and at the resource server.
	rotated := restart(k2, k1)
	before.clock.Advance(10 * time.Minute)
	require.Equal(t, http.StatusOK, rotated.callMCP(old).Code)
	_, err = rs.VerifyAccessToken(ctx, old)
	require.NoError(t, err)
	fresh := rotated.tokens(client).AccessToken
	header, _ := jwtParts(t, fresh)
	require.Equal(t, "k2", header["kid"])
	// The new kid is unknown to the resource server's cached set: one
	// refetch finds it.
	_, err = rs.VerifyAccessToken(ctx, fresh)
	require.NoError(t, err)

	// k1 removed too early: the tokens it signed stop verifying at both,
	// once the resource server's cached set is refreshed; k2's still pass.
	removed := restart(k2)
	before.clock.Advance(bearer.DefaultJWKSCacheTTL)
	require.Equal(t, http.StatusUnauthorized, removed.callMCP(old).Code)
	_, err = rs.VerifyAccessToken(ctx, old)
	require.ErrorIs(t, err, bearer.ErrInvalidToken)
	require.Equal(t, http.StatusOK, removed.callMCP(fresh).Code)
	_, err = rs.VerifyAccessToken(ctx, fresh)
	require.NoError(t, err)

	// And every token stops at its exp.
	before.clock.Advance(mcpoauth.DefaultAccessTokenLifetime)
	require.Equal(t, http.StatusUnauthorized, removed.callMCP(fresh).Code)
	_, err = rs.VerifyAccessToken(ctx, fresh)
	require.ErrorIs(t, err, bearer.ErrInvalidToken)
}

// TestJWTAccessTokenForClientCredentials: RFC 9068 §2.2: with no resource
// owner, sub is the client's identifier; the AuthInfo has no user.
func TestJWTAccessTokenForClientCredentials(t *testing.T) {
	h := newHarness(t, withJWTAccessTokens(mcpoauth.SigningKey{Key: newSigningKey(t)}), func(c *mcpoauth.Config) {
		c.GrantTypes = []string{mcpoauth.GrantAuthorizationCode, mcpoauth.GrantClientCredentials}
	})
	id, secret := h.ccClient(nil)
	w := h.postForm("/token", ccForm(), id, secret)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var tr tokenResponse
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &tr))
	header, claims := jwtParts(t, tr.AccessToken)
	require.NotEmpty(t, header["kid"], "the default kid is the RFC 7638 thumbprint")
	require.Equal(t, id, claims["sub"])
	require.Equal(t, id, claims["client_id"])
	info, err := h.srv.VerifyAccessToken(context.Background(), tr.AccessToken)
	require.NoError(t, err)
	require.Empty(t, info.UserID)
}

// TestJWTAccessTokenConfig: New names what JWT access tokens need.
func TestJWTAccessTokenConfig(t *testing.T) {
	base := func() mcpoauth.Config {
		return mcpoauth.Config{Issuer: testIssuer, AuthorizationURL: testConsentURL, ResourceServerURL: testResource}
	}
	rsaOK := mcpoauth.SigningKey{Key: newSigningKey(t), Algorithm: "PS256"}
	for name, tc := range map[string]struct {
		mutate func(*mcpoauth.Config)
		field  string
	}{
		"JWT without keys":            {func(c *mcpoauth.Config) { c.AccessTokenFormat = mcpoauth.AccessTokenJWT }, "SigningKeys"},
		"keys without JWT":            {func(c *mcpoauth.Config) { c.SigningKeys = []mcpoauth.SigningKey{{Key: newSigningKey(t)}} }, "SigningKeys"},
		"unknown format":              {func(c *mcpoauth.Config) { c.AccessTokenFormat = "paseto" }, "AccessTokenFormat"},
		"algorithm that does not fit": {withJWTAccessTokens(rsaOK), "SigningKeys"},
		"duplicate kid":               {withJWTAccessTokens(mcpoauth.SigningKey{Key: newSigningKey(t), KeyID: "a"}, mcpoauth.SigningKey{Key: newSigningKey(t), KeyID: "a"}), "SigningKeys"},
		"no resource for aud": {func(c *mcpoauth.Config) {
			withJWTAccessTokens(mcpoauth.SigningKey{Key: newSigningKey(t)})(c)
			c.ResourceServerURL = ""
		}, "ResourceServerURL"},
	} {
		t.Run(name, func(t *testing.T) {
			c := base()
			tc.mutate(&c)
			_, err := mcpoauth.New(c)
			require.ErrorIs(t, err, mcpoauth.ErrInvalidConfig)
			require.ErrorContains(t, err, tc.field)
		})
	}
}

// benchTokenServer is a server issuing client_credentials tokens, opaque
// or JWT, with a confidential client's Basic header.
func benchTokenServer(b *testing.B, jwt bool) (*mcpoauth.OAuthServer, string) {
	model := mcpoauth.NewMemoryModel(mcpoauth.MemoryModelOptions{SweepInterval: mcpoauth.NoSweep})
	b.Cleanup(func() { _ = model.Close() })
	cfg := mcpoauth.Config{
		Model: model, Issuer: testIssuer, ResourceServerURL: testResource, ScopesSupported: []string{testScope},
		GrantTypes: []string{mcpoauth.GrantClientCredentials}, RateLimits: mcpoauth.RateLimits{Disabled: true},
		Logger: slog.New(slog.DiscardHandler),
	}
	if jwt {
		withJWTAccessTokens(mcpoauth.SigningKey{Key: newSigningKey(b)})(&cfg)
	}
	srv, err := mcpoauth.New(cfg)
	require.NoError(b, err)
	b.Cleanup(func() { _ = srv.Close() })
	out, err := srv.RegisterClient(context.Background(), metadata.ClientInformation{ClientID: "bench", ClientMetadata: metadata.ClientMetadata{GrantTypes: []string{mcpoauth.GrantClientCredentials}}})
	require.NoError(b, err)
	r := &http.Request{Header: http.Header{}}
	r.SetBasicAuth(out.ClientID, out.ClientSecret)
	return srv, r.Header.Get("Authorization")
}

// issueBenchToken posts one client_credentials request and returns the
// access token.
func issueBenchToken(b *testing.B, h http.Handler, basic string) string {
	r := httptest.NewRequest(http.MethodPost, testIssuer+"/token", strings.NewReader("grant_type=client_credentials"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Authorization", basic)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		b.Fatalf("token: %d %s", w.Code, w.Body)
	}
	var tr tokenResponse
	if err := json.Unmarshal(w.Body.Bytes(), &tr); err != nil {
		b.Fatal(err)
	}
	return tr.AccessToken
}

// BenchmarkAccessTokenIssuance is one client_credentials token request
// (POST /token through the router), opaque beside RFC 9068 JWT: the JWT
// adds a claims encoding and an ES256 signature.
func BenchmarkAccessTokenIssuance(b *testing.B) {
	for _, format := range []string{"opaque", "jwt"} {
		b.Run(format, func(b *testing.B) {
			srv, basic := benchTokenServer(b, format == "jwt")
			h := srv.Router()
			b.ReportAllocs()
			for b.Loop() {
				issueBenchToken(b, h, basic)
			}
		})
	}
}

// BenchmarkAccessTokenVerification is one verification: the server's own
// (digest lookup, for opaque and JWT alike) beside bearer.JWTVerifier's
// offline check (signature and claims, keys cached).
func BenchmarkAccessTokenVerification(b *testing.B) {
	ctx := context.Background()
	for _, c := range []struct {
		name string
		jwt  bool
		rs   bool
	}{{"opaque/server", false, false}, {"jwt/server", true, false}, {"jwt/JWTVerifier", true, true}} {
		b.Run(c.name, func(b *testing.B) {
			srv, basic := benchTokenServer(b, c.jwt)
			token := issueBenchToken(b, srv.Router(), basic)
			var v bearer.Verifier = srv
			if c.rs {
				tr := roundTripFunc(func(r *http.Request) (*http.Response, error) {
					w := httptest.NewRecorder()
					srv.Router().ServeHTTP(w, r)
					return w.Result(), nil
				})
				jv, err := bearer.NewJWTVerifier(bearer.JWTOptions{JWKSURL: srv.Metadata().JWKSURI, Issuer: testIssuer, Resource: testResource, HTTPClient: &http.Client{Transport: tr}})
				require.NoError(b, err)
				v = jv
			}
			if _, err := v.VerifyAccessToken(ctx, token); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.VerifyAccessToken(ctx, token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
