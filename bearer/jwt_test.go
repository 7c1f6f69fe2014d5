package bearer_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth/bearer"
	"github.com/mcpoauth/mcpoauth/internal/testclock"
)

// jwksStub serves a key set a test may change, and counts the fetches.
type jwksStub struct {
	srv     *httptest.Server
	fetches atomic.Int64
	mu      sync.Mutex
	keys    []*ecdsa.PrivateKey
	kids    []string
}

func newJWKSStub(t *testing.T) *jwksStub {
	s := &jwksStub{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		var set jose.JSONWebKeySet
		for i, k := range s.keys {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.PublicKey, KeyID: s.kids[i], Algorithm: "ES256", Use: "sig"})
		}
		s.mu.Unlock()
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// publish sets the published keys.
func (s *jwksStub) publish(kids []string, keys ...*ecdsa.PrivateKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kids, s.keys = kids, keys
}

func newP256(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

// signJWT signs claims with key under alg, with header typ and kid.
func signJWT(t testing.TB, alg jose.SignatureAlgorithm, key any, typ, kid string, claims map[string]any) string {
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	require.NoError(t, err)
	payload, err := json.Marshal(claims)
	require.NoError(t, err)
	obj, err := s.Sign(payload)
	require.NoError(t, err)
	out, err := obj.CompactSerialize()
	require.NoError(t, err)
	return out
}

// accessClaims are valid RFC 9068 §2.2 claims at t0.
func accessClaims() map[string]any {
	return map[string]any{
		"iss": stubIssuer, "sub": "alice", "aud": stubResource, "client_id": "c1",
		"scope": "mcp:tools files:read", "exp": t0.Add(time.Hour).Unix(), "iat": t0.Unix(), "jti": "j1",
	}
}

func newTestJWTVerifier(t *testing.T, stub *jwksStub, clock *testclock.Clock) *bearer.JWTVerifier {
	v, err := bearer.NewJWTVerifier(bearer.JWTOptions{
		JWKSURL: stub.srv.URL + "/jwks", Issuer: stubIssuer, Resource: stubResource,
		RefreshInterval: time.Minute, CacheTTL: 10 * time.Minute, Now: clock.Now,
	})
	require.NoError(t, err)
	return v
}

func TestJWTVerifierAcceptsRFC9068Token(t *testing.T) {
	stub := newJWKSStub(t)
	key := newP256(t)
	stub.publish([]string{"k1"}, key)
	v := newTestJWTVerifier(t, stub, testclock.New(t0))

	info, err := v.VerifyAccessToken(context.Background(), signJWT(t, jose.ES256, key, "at+jwt", "k1", accessClaims()))
	require.NoError(t, err)
	require.Equal(t, "alice", info.UserID)
	require.Equal(t, "c1", info.ClientID)
	require.Equal(t, []string{"mcp:tools", "files:read"}, info.Scopes)
	require.Equal(t, stubResource, info.Resource)
	require.Equal(t, t0.Add(time.Hour).Unix(), info.ExpiresAt.Unix())

	// RFC 9068 §2.2: sub is the client for client credentials: no user.
	c := accessClaims()
	c["sub"] = "c1"
	info, err = v.VerifyAccessToken(context.Background(), signJWT(t, jose.ES256, key, "at+jwt", "k1", c))
	require.NoError(t, err)
	require.Empty(t, info.UserID)
}

func TestJWTVerifierRefuses(t *testing.T) {
	key := newP256(t)
	other := newP256(t)
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	require.NoError(t, err)
	with := func(k string, v any) map[string]any {
		c := accessClaims()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	cases := []struct {
		rule  string
		token func(t *testing.T) string
	}{
		{"RFC 9068 §2.1: typ must be at+jwt, not JWT", func(t *testing.T) string {
			return signJWT(t, jose.ES256, key, "JWT", "k1", accessClaims())
		}},
		{"RFC 9068 §2.1: typ is required", func(t *testing.T) string {
			return signJWT(t, jose.ES256, key, "", "k1", accessClaims())
		}},
		{"RFC 9068 §4: iss must be the authorization server", func(t *testing.T) string {
			return signJWT(t, jose.ES256, key, "at+jwt", "k1", with("iss", "https://evil.example"))
		}},
		{"RFC 9068 §4: aud must name this resource", func(t *testing.T) string {
			return signJWT(t, jose.ES256, key, "at+jwt", "k1", with("aud", "https://other.example/mcp"))
		}},
		{"RFC 9068 §4: an expired token is refused", func(t *testing.T) string {
			return signJWT(t, jose.ES256, key, "at+jwt", "k1", with("exp", t0.Add(-time.Minute).Unix()))
		}},
		{"RFC 9068 §2.2: exp is required", func(t *testing.T) string {
			return signJWT(t, jose.ES256, key, "at+jwt", "k1", with("exp", nil))
		}},
		{"RFC 7519 §4.1.5: nbf in the future", func(t *testing.T) string {
			return signJWT(t, jose.ES256, key, "at+jwt", "k1", with("nbf", t0.Add(time.Hour).Unix()))
		}},
		{"RFC 7519 §4.1.6: iat in the future", func(t *testing.T) string {
			return signJWT(t, jose.ES256, key, "at+jwt", "k1", with("iat", t0.Add(time.Hour).Unix()))
		}},
		{"RFC 9068 §2.2: client_id is required", func(t *testing.T) string {
			return signJWT(t, jose.ES256, key, "at+jwt", "k1", with("client_id", nil))
		}},
		{"RFC 9068 §4: signed by a key that is not published", func(t *testing.T) string {
			return signJWT(t, jose.ES256, other, "at+jwt", "k1", accessClaims())
		}},
		{"RFC 9068 §4: alg none is refused", func(t *testing.T) string {
			// The header and payload of a valid token with no signature.
			h := `{"alg":"none","typ":"at+jwt","kid":"k1"}`
			p, _ := json.Marshal(accessClaims())
			return b64(h) + "." + b64(string(p)) + "."
		}},
		{"RFC 9068 §4: HMAC keyed with the public key is refused", func(t *testing.T) string {
			return signJWT(t, jose.HS256, pubDER, "at+jwt", "k1", accessClaims())
		}},
		{"RFC 7515 §4.1.4: no kid", func(t *testing.T) string {
			return signJWT(t, jose.ES256, key, "at+jwt", "", accessClaims())
		}},
		{"RFC 7515: not a JWS", func(*testing.T) string { return "opaque-token" }},
	}
	for _, tc := range cases {
		t.Run(tc.rule, func(t *testing.T) {
			stub := newJWKSStub(t)
			stub.publish([]string{"k1"}, key)
			v := newTestJWTVerifier(t, stub, testclock.New(t0))
			_, err := v.VerifyAccessToken(context.Background(), tc.token(t))
			require.ErrorIs(t, err, bearer.ErrInvalidToken)
		})
	}
}

func TestJWTVerifierUnknownKidRefetchesOncePerInterval(t *testing.T) {
	stub := newJWKSStub(t)
	k1, k2 := newP256(t), newP256(t)
	stub.publish([]string{"k1"}, k1)
	clock := testclock.New(t0)
	v := newTestJWTVerifier(t, stub, clock)
	ctx := context.Background()

	_, err := v.VerifyAccessToken(ctx, signJWT(t, jose.ES256, k1, "at+jwt", "k1", accessClaims()))
	require.NoError(t, err)
	require.EqualValues(t, 1, stub.fetches.Load())

	// An unknown kid fetches once; more unknown kids within the interval
	// fetch nothing.
	forged := signJWT(t, jose.ES256, k2, "at+jwt", "nope", accessClaims())
	clock.Advance(2 * time.Minute)
	for range 5 {
		_, err = v.VerifyAccessToken(ctx, forged)
		require.ErrorIs(t, err, bearer.ErrInvalidToken)
	}
	require.EqualValues(t, 2, stub.fetches.Load())

	// A key added by rotation is found by the refetch its first token
	// triggers once the interval has passed.
	stub.publish([]string{"k2", "k1"}, k2, k1)
	clock.Advance(time.Minute)
	_, err = v.VerifyAccessToken(ctx, signJWT(t, jose.ES256, k2, "at+jwt", "k2", accessClaims()))
	require.NoError(t, err)
	require.EqualValues(t, 3, stub.fetches.Load())
}

func TestJWTVerifierJWKSFailureIsNotInvalidToken(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	}))
	t.Cleanup(srv.Close)
	v, err := bearer.NewJWTVerifier(bearer.JWTOptions{JWKSURL: srv.URL, Issuer: stubIssuer, Resource: stubResource, Now: testclock.New(t0).Now})
	require.NoError(t, err)
	_, err = v.VerifyAccessToken(context.Background(), signJWT(t, jose.ES256, newP256(t), "at+jwt", "k1", accessClaims()))
	require.ErrorIs(t, err, bearer.ErrJWKSFailed)
	require.False(t, errors.Is(err, bearer.ErrInvalidToken))
}

func TestNewJWTVerifierOptions(t *testing.T) {
	for _, o := range []bearer.JWTOptions{
		{JWKSURL: "http://as.example.com/jwks", Issuer: stubIssuer, Resource: stubResource},
		{JWKSURL: "https://as.example.com/jwks", Resource: stubResource},
		{JWKSURL: "https://as.example.com/jwks", Issuer: stubIssuer},
		{JWKSURL: "/jwks", Issuer: stubIssuer, Resource: stubResource},
	} {
		_, err := bearer.NewJWTVerifier(o)
		require.Error(t, err, "%+v", o)
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
