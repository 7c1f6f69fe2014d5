package dpop_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcpoauth/mcpoauth/dpop"
)

const target = "https://as.example/token"

var now = time.Unix(1_800_000_000, 0)

type proofOpts struct {
	key     crypto.Signer
	alg     jose.SignatureAlgorithm
	typ     string
	jwk     any // the jwk header; default the public key
	noJWK   bool
	claims  map[string]any
	drop    []string
	hmacKey []byte
}

// makeProof signs a proof for target with sensible claims, changed by o.
func makeProof(t *testing.T, o proofOpts) string {
	t.Helper()
	if o.key == nil {
		o.key = ecKey
	}
	if o.alg == "" {
		o.alg = jose.ES256
	}
	if o.typ == "" {
		o.typ = dpop.ProofType
	}
	claims := map[string]any{"jti": randID(), "htm": "POST", "htu": target, "iat": now.Unix()}
	for k, v := range o.claims {
		claims[k] = v
	}
	for _, k := range o.drop {
		delete(claims, k)
	}
	payload, _ := json.Marshal(claims)
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(o.typ))
	if !o.noJWK {
		jwk := o.jwk
		if jwk == nil {
			jwk = jose.JSONWebKey{Key: o.key.Public()}
		}
		opts = opts.WithHeader("jwk", jwk)
	}
	var sk any = o.key
	if o.hmacKey != nil {
		sk = o.hmacKey
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: o.alg, Key: sk}, opts)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func randID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

var (
	ecKey, _        = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec2Key, _       = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	edPub, edKey, _ = ed25519.GenerateKey(rand.Reader)
	rsaKey, _       = rsa.GenerateKey(rand.Reader, 2048)
	rsaSmall, _     = rsa.GenerateKey(rand.Reader, 1024)
)

func newVerifier(t *testing.T, o dpop.Options) *dpop.Verifier {
	t.Helper()
	o.Now = func() time.Time { return now }
	v, err := dpop.NewVerifier(o)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVerify(t *testing.T) {
	_ = edPub
	tok := "access-token-value"
	ath := dpop.AccessTokenHash(tok)
	cases := []struct {
		name  string
		proof proofOpts
		req   dpop.Request
		err   error
	}{
		{"valid ES256", proofOpts{}, dpop.Request{}, nil},
		{"valid EdDSA", proofOpts{key: edKey, alg: jose.EdDSA}, dpop.Request{}, nil},
		{"valid RS256", proofOpts{key: rsaKey, alg: jose.RS256}, dpop.Request{}, nil},
		{"valid PS256", proofOpts{key: rsaKey, alg: jose.PS256}, dpop.Request{}, nil},
		{"valid with ath", proofOpts{claims: map[string]any{"ath": ath}}, dpop.Request{AccessToken: tok}, nil},
		{"htu query and fragment ignored", proofOpts{}, dpop.Request{URL: target + "?a=b#f"}, nil},
		{"htu normalised", proofOpts{claims: map[string]any{"htu": "HTTPS://AS.example:443/token"}}, dpop.Request{}, nil},
		{"iat within skew", proofOpts{claims: map[string]any{"iat": now.Add(4 * time.Second).Unix()}}, dpop.Request{}, nil},

		{"wrong typ", proofOpts{typ: "JWT"}, dpop.Request{}, dpop.ErrInvalidProof},
		{"no jwk", proofOpts{noJWK: true}, dpop.Request{}, dpop.ErrInvalidProof},
		{"private key in jwk", proofOpts{jwk: jose.JSONWebKey{Key: ecKey}}, dpop.Request{}, dpop.ErrInvalidProof},
		{"jwk of another key", proofOpts{jwk: jose.JSONWebKey{Key: ec2Key.Public()}}, dpop.Request{}, dpop.ErrInvalidProof},
		{"HMAC", proofOpts{alg: jose.HS256, hmacKey: make([]byte, 32), noJWK: true}, dpop.Request{}, dpop.ErrInvalidProof},
		{"short RSA key", proofOpts{key: rsaSmall, alg: jose.RS256}, dpop.Request{}, dpop.ErrInvalidProof},
		{"wrong htm", proofOpts{claims: map[string]any{"htm": "GET"}}, dpop.Request{}, dpop.ErrInvalidProof},
		{"wrong htu path", proofOpts{claims: map[string]any{"htu": "https://as.example/other"}}, dpop.Request{}, dpop.ErrInvalidProof},
		{"wrong htu host", proofOpts{claims: map[string]any{"htu": "https://evil.example/token"}}, dpop.Request{}, dpop.ErrInvalidProof},
		{"htu not absolute", proofOpts{claims: map[string]any{"htu": "/token"}}, dpop.Request{}, dpop.ErrInvalidProof},
		{"stale iat", proofOpts{claims: map[string]any{"iat": now.Add(-2 * time.Minute).Unix()}}, dpop.Request{}, dpop.ErrInvalidProof},
		{"future iat", proofOpts{claims: map[string]any{"iat": now.Add(time.Minute).Unix()}}, dpop.Request{}, dpop.ErrInvalidProof},
		{"iat as string", proofOpts{claims: map[string]any{"iat": "1800000000"}}, dpop.Request{}, dpop.ErrInvalidProof},
		{"no jti", proofOpts{drop: []string{"jti"}}, dpop.Request{}, dpop.ErrInvalidProof},
		{"long jti", proofOpts{claims: map[string]any{"jti": strings.Repeat("a", 257)}}, dpop.Request{}, dpop.ErrInvalidProof},
		{"no ath with a token", proofOpts{}, dpop.Request{AccessToken: tok}, dpop.ErrInvalidProof},
		{"ath mismatch", proofOpts{claims: map[string]any{"ath": dpop.AccessTokenHash("other")}}, dpop.Request{AccessToken: tok}, dpop.ErrInvalidProof},
		{"ath without a token", proofOpts{claims: map[string]any{"ath": ath}}, dpop.Request{}, dpop.ErrInvalidProof},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := newVerifier(t, dpop.Options{DisableNonces: true})
			if c.req.Method == "" {
				c.req.Method = "POST"
			}
			if c.req.URL == "" {
				c.req.URL = target
			}
			p, err := v.Verify(makeProof(t, c.proof), c.req)
			if c.err == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				key := c.proof.key
				if key == nil {
					key = ecKey
				}
				if want, _ := dpop.Thumbprint(key.Public()); p.JKT != want {
					t.Fatalf("JKT = %q, want %q", p.JKT, want)
				}
				return
			}
			if !errors.Is(err, c.err) {
				t.Fatalf("Verify: %v, want %v", err, c.err)
			}
		})
	}
}

func TestVerifyNotAJWS(t *testing.T) {
	v := newVerifier(t, dpop.Options{DisableNonces: true})
	for _, p := range []string{"", "a.b.c", "not a jws", strings.Repeat("a", 9000)} {
		if _, err := v.Verify(p, dpop.Request{Method: "POST", URL: target}); !errors.Is(err, dpop.ErrInvalidProof) {
			t.Errorf("Verify(%.10q) = %v", p, err)
		}
	}
}

func TestAlgorithmAllowList(t *testing.T) {
	v := newVerifier(t, dpop.Options{DisableNonces: true, Algorithms: []string{"EdDSA"}})
	if _, err := v.Verify(makeProof(t, proofOpts{}), dpop.Request{Method: "POST", URL: target}); !errors.Is(err, dpop.ErrInvalidProof) {
		t.Fatalf("ES256 proof with EdDSA only: %v", err)
	}
	if _, err := dpop.NewVerifier(dpop.Options{Algorithms: []string{"none"}}); err == nil {
		t.Fatal("none accepted as an algorithm")
	}
	if _, err := dpop.NewVerifier(dpop.Options{Algorithms: []string{"HS256"}}); err == nil {
		t.Fatal("HS256 accepted as an algorithm")
	}
}

func TestReplay(t *testing.T) {
	v := newVerifier(t, dpop.Options{DisableNonces: true})
	req := dpop.Request{Method: "POST", URL: target}
	p := makeProof(t, proofOpts{})
	if _, err := v.Verify(p, req); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(p, req); !errors.Is(err, dpop.ErrInvalidProof) {
		t.Fatalf("replayed proof: %v", err)
	}
	// The same jti under another key is another proof (RFC 9449 §11.1).
	other := makeProof(t, proofOpts{key: ec2Key, claims: map[string]any{"jti": "same"}})
	mine := makeProof(t, proofOpts{claims: map[string]any{"jti": "same"}})
	if _, err := v.Verify(other, req); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(mine, req); err != nil {
		t.Fatal(err)
	}
}

func TestReplayCacheFull(t *testing.T) {
	v := newVerifier(t, dpop.Options{DisableNonces: true, ReplayCacheSize: 2})
	req := dpop.Request{Method: "POST", URL: target}
	first := makeProof(t, proofOpts{claims: map[string]any{"iat": now.Add(-3 * time.Second).Unix()}})
	if _, err := v.Verify(first, req); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := v.Verify(makeProof(t, proofOpts{claims: map[string]any{"iat": now.Add(time.Duration(i-2) * time.Second).Unix()}}), req); err != nil {
			t.Fatal(err)
		}
	}
	// first was forgotten: its replay is still refused.
	if _, err := v.Verify(first, req); !errors.Is(err, dpop.ErrInvalidProof) {
		t.Fatalf("replay of a forgotten proof: %v", err)
	}
	// A fresh proof still passes.
	if _, err := v.Verify(makeProof(t, proofOpts{}), req); err != nil {
		t.Fatal(err)
	}
}

func TestNonces(t *testing.T) {
	key := make([]byte, 32)
	clock := now
	v, err := dpop.NewVerifier(dpop.Options{NonceKey: key, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	req := dpop.Request{Method: "POST", URL: target}
	if _, err := v.Verify(makeProof(t, proofOpts{}), req); !errors.Is(err, dpop.ErrUseNonce) {
		t.Fatalf("no nonce: %v", err)
	}
	if _, err := v.Verify(makeProof(t, proofOpts{claims: map[string]any{"nonce": "made-up"}}), req); !errors.Is(err, dpop.ErrUseNonce) {
		t.Fatalf("made-up nonce: %v", err)
	}
	n := v.Nonce()
	if _, err := v.Verify(makeProof(t, proofOpts{claims: map[string]any{"nonce": n}}), req); err != nil {
		t.Fatal(err)
	}
	// A replica with the same key accepts it.
	replica, _ := dpop.NewVerifier(dpop.Options{NonceKey: key, Now: func() time.Time { return clock }})
	if _, err := replica.Verify(makeProof(t, proofOpts{claims: map[string]any{"nonce": n}}), req); err != nil {
		t.Fatal(err)
	}
	// Another key does not.
	stranger, _ := dpop.NewVerifier(dpop.Options{Now: func() time.Time { return clock }})
	if _, err := stranger.Verify(makeProof(t, proofOpts{claims: map[string]any{"nonce": n}}), req); !errors.Is(err, dpop.ErrUseNonce) {
		t.Fatalf("foreign nonce: %v", err)
	}
	// Later in its lifetime the proof passes and a fresher nonce is offered.
	clock = now.Add(2 * time.Minute)
	p, err := v.Verify(makeProof(t, proofOpts{claims: map[string]any{"nonce": n, "iat": clock.Unix()}}), req)
	if err != nil {
		t.Fatal(err)
	}
	if p.NewNonce == "" || p.NewNonce == n {
		t.Fatalf("NewNonce = %q", p.NewNonce)
	}
	// After its lifetime it is refused.
	clock = now.Add(6 * time.Minute)
	if _, err := v.Verify(makeProof(t, proofOpts{claims: map[string]any{"nonce": n, "iat": clock.Unix()}}), req); !errors.Is(err, dpop.ErrUseNonce) {
		t.Fatalf("expired nonce: %v", err)
	}
	// A nonce forged without the key is refused.
	forged := forgeNonce(clock)
	if _, err := v.Verify(makeProof(t, proofOpts{claims: map[string]any{"nonce": forged, "iat": clock.Unix()}}), req); !errors.Is(err, dpop.ErrUseNonce) {
		t.Fatalf("forged nonce: %v", err)
	}
}

func forgeNonce(at time.Time) string {
	b := make([]byte, 24)
	slot := at.UnixNano() / int64(dpop.DefaultNonceLifetime/4)
	for i := range 8 {
		b[i] = byte(slot >> (56 - 8*i))
	}
	m := hmac.New(sha256.New, []byte("guess"))
	m.Write(b[:8])
	copy(b[8:], m.Sum(nil))
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestNonceKeyTooShort(t *testing.T) {
	if _, err := dpop.NewVerifier(dpop.Options{NonceKey: []byte("short")}); err == nil {
		t.Fatal("short NonceKey accepted")
	}
}
