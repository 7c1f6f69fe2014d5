package clientjwt

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/mcpoauth/mcpoauth/metadata"
	"github.com/mcpoauth/mcpoauth/record"
)

var testNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

const (
	testClient = "client-1"
	testAud    = "https://as.example.com/token"
)

func validClaims() jwt.Claims {
	return jwt.Claims{
		Issuer: testClient, Subject: testClient, Audience: jwt.Audience{testAud},
		Expiry: jwt.NewNumericDate(testNow.Add(time.Minute)), IssuedAt: jwt.NewNumericDate(testNow), ID: "jti-1",
	}
}

// TestCheckClaims: RFC 7523 §3, one rule a row.
func TestCheckClaims(t *testing.T) {
	for name, tc := range map[string]struct {
		mutate func(*jwt.Claims)
		ok     bool
	}{
		"valid":                   {func(*jwt.Claims) {}, true},
		"aud among several":       {func(c *jwt.Claims) { c.Audience = jwt.Audience{"https://x", testAud} }, true},
		"iss not client_id":       {func(c *jwt.Claims) { c.Issuer = "other" }, false},
		"sub not client_id":       {func(c *jwt.Claims) { c.Subject = "other" }, false},
		"wrong aud":               {func(c *jwt.Claims) { c.Audience = jwt.Audience{"https://other.example.com/token"} }, false},
		"no aud":                  {func(c *jwt.Claims) { c.Audience = nil }, false},
		"no exp":                  {func(c *jwt.Claims) { c.Expiry = nil }, false},
		"expired":                 {func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(testNow) }, false},
		"exp too far":             {func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(testNow.Add(MaxLifetime + time.Second)) }, false},
		"exp at the limit":        {func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(testNow.Add(MaxLifetime)) }, true},
		"nbf in the future":       {func(c *jwt.Claims) { c.NotBefore = jwt.NewNumericDate(testNow.Add(time.Minute)) }, false},
		"nbf within leeway":       {func(c *jwt.Claims) { c.NotBefore = jwt.NewNumericDate(testNow.Add(Leeway)) }, true},
		"iat in the future":       {func(c *jwt.Claims) { c.IssuedAt = jwt.NewNumericDate(testNow.Add(time.Minute)) }, false},
		"no jti":                  {func(c *jwt.Claims) { c.ID = "" }, false},
		"empty iss and client_id": {func(c *jwt.Claims) { c.Issuer, c.Subject = "", "" }, false},
	} {
		t.Run(name, func(t *testing.T) {
			c := validClaims()
			tc.mutate(&c)
			err := checkClaims(c, testClient, []string{"https://as.example.com", testAud}, testNow)
			if tc.ok != (err == nil) {
				t.Fatalf("checkClaims = %v, want ok %v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrClaims) {
				t.Fatalf("error %v does not wrap ErrClaims", err)
			}
		})
	}
}

// memReplay is a ReplayStore in a map.
type memReplay struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (m *memReplay) UseAssertionID(_ context.Context, clientID, jti string, _ time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen == nil {
		m.seen = map[string]bool{}
	}
	if m.seen[clientID+"\x00"+jti] {
		return record.ErrAlreadyUsed
	}
	m.seen[clientID+"\x00"+jti] = true
	return nil
}

func sign(t *testing.T, key *ecdsa.PrivateKey, kid string, c jwt.Claims) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jwt.Signed(s).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func keySet(t *testing.T, kid string, keys ...*ecdsa.PrivateKey) json.RawMessage {
	t.Helper()
	var set jose.JSONWebKeySet
	for _, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Algorithm: "ES256"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestVerify: a valid assertion passes once; kid selects the key; a key
// of another set, and a replay, are refused.
func TestVerify(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	v := &Verifier{Audiences: []string{testAud}, Now: func() time.Time { return testNow }, Replay: &memReplay{}}
	md := metadata.ClientMetadata{JWKS: keySet(t, "k1", key)}
	ctx := t.Context()

	a := sign(t, key, "k1", validClaims())
	if err := v.Verify(ctx, testClient, md, a); err != nil {
		t.Fatalf("valid assertion: %v", err)
	}
	if err := v.Verify(ctx, testClient, md, a); !errors.Is(err, ErrReplayed) {
		t.Fatalf("replay: %v, want ErrReplayed", err)
	}
	c := validClaims()
	c.ID = "jti-2"
	if err := v.Verify(ctx, testClient, md, sign(t, key, "", c)); err != nil {
		t.Fatalf("no kid: every key is tried: %v", err)
	}
	c.ID = "jti-3"
	if err := v.Verify(ctx, testClient, md, sign(t, key, "k2", c)); !errors.Is(err, ErrNoKeys) {
		t.Fatalf("unknown kid in an inline set: %v, want ErrNoKeys", err)
	}
	if err := v.Verify(ctx, testClient, md, sign(t, other, "k1", c)); !errors.Is(err, ErrSignature) {
		t.Fatalf("another key under the same kid: %v, want ErrSignature", err)
	}
	if err := v.Verify(ctx, testClient, metadata.ClientMetadata{}, sign(t, key, "k1", c)); !errors.Is(err, ErrNoKeys) {
		t.Fatalf("a client without keys: %v, want ErrNoKeys", err)
	}
	if _, err := Subject("not.a.jwt"); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Subject of garbage: %v", err)
	}
}

// TestParseKeySet: only public signature keys are kept.
func TestParseKeySet(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, _ := json.Marshal(jose.JSONWebKey{Key: &key.PublicKey, KeyID: "pub"})
	priv, _ := json.Marshal(jose.JSONWebKey{Key: key, KeyID: "priv"})
	enc, _ := json.Marshal(jose.JSONWebKey{Key: &key.PublicKey, KeyID: "enc", Use: "enc"})
	body := `{"keys":[` + string(pub) + `,` + string(priv) + `,` + string(enc) + `,{"kty":"oct","k":"c2VjcmV0"},{"kty":"unknown"}]}`
	set, err := ParseKeySet([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 || set.Keys[0].KeyID != "pub" {
		t.Fatalf("kept %d keys, want only the public signature key", len(set.Keys))
	}
	for _, bad := range []string{`[]`, `{}`, `{"keys":null}`, `not json`} {
		if _, err := ParseKeySet([]byte(bad)); err == nil {
			t.Errorf("ParseKeySet(%s) succeeded", bad)
		}
	}
}

// TestKeySetsBounds: only https URLs are fetched, and nothing that is not
// a key set is cached; a set is fetched once per TTL; a refresh within
// MinRefetchInterval does not fetch; the cache holds at most Size sets.
func TestKeySetsBounds(t *testing.T) {
	now := testNow
	var fetches int
	respond := `not a key set`
	ks := &KeySets{Now: func() time.Time { return now }, Size: 2, Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		fetches++
		return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: stringBody(respond), Request: r}, nil
	})}
	ctx := t.Context()
	if _, _, err := ks.Get(ctx, "http://a.example/jwks", false); !errors.Is(err, ErrFetch) || fetches != 0 {
		t.Fatalf("http URL: %v (fetches %d)", err, fetches)
	}
	for range 2 {
		if _, _, err := ks.Get(ctx, "https://a.example/jwks", false); !errors.Is(err, ErrFetch) {
			t.Fatalf("not a key set: %v", err)
		}
	}
	if fetches != 2 {
		t.Fatalf("a body that is no key set was cached (fetches %d)", fetches)
	}

	respond = `{"keys":[]}`
	get := func(uri string, refresh bool) bool {
		t.Helper()
		_, fresh, err := ks.Get(ctx, uri, refresh)
		if err != nil {
			t.Fatal(err)
		}
		return fresh
	}
	if !get("https://a.example/jwks", false) || get("https://a.example/jwks", false) {
		t.Fatal("first Get fetches, the second is cached")
	}
	if get("https://a.example/jwks", true) {
		t.Fatal("a refresh within MinRefetchInterval fetched")
	}
	now = now.Add(MinRefetchInterval)
	if !get("https://a.example/jwks", true) {
		t.Fatal("a refresh after MinRefetchInterval did not fetch")
	}
	now = now.Add(DefaultKeyTTL)
	if !get("https://a.example/jwks", false) {
		t.Fatal("a set older than the TTL was used")
	}
	get("https://b.example/jwks", false)
	get("https://c.example/jwks", false)
	if n := ks.sets().Len(); n != 2 {
		t.Fatalf("cache holds %d sets, want Size 2", n)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type body struct{ *strings.Reader }

func (body) Close() error { return nil }

func stringBody(s string) body { return body{strings.NewReader(s)} }

// TestKeySetsSharesAFetch: concurrent lookups of one jwks_uri (a burst of
// assertions with an unknown kid) share one fetch.
func TestKeySetsSharesAFetch(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	fetches := 0
	ks := &KeySets{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		fetches++
		mu.Unlock()
		<-release
		return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: stringBody(`{"keys":[]}`), Request: r}, nil
	})}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, _, err := ks.Get(t.Context(), "https://a.example/jwks", true); err != nil {
				t.Error(err)
			}
		})
	}
	for { // until the fetch is under way
		mu.Lock()
		n := fetches
		mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(10 * time.Millisecond) // let the others join
	close(release)
	wg.Wait()
	if fetches != 1 {
		t.Fatalf("%d fetches, want 1", fetches)
	}
}
