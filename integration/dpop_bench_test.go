package integration_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/dpop"
	"github.com/mcpoauth/mcpoauth/internal/benchapp"
	"github.com/mcpoauth/mcpoauth/internal/secret"
)

// benchProver signs DPoP proofs for the benchmarks.
type benchProver struct {
	signer jose.Signer
	nonce  string
}

func newBenchProver(b *testing.B) *benchProver {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k},
		(&jose.SignerOptions{}).WithType(dpop.ProofType).WithHeader("jwk", jose.JSONWebKey{Key: k.Public()}))
	if err != nil {
		b.Fatal(err)
	}
	return &benchProver{signer: s}
}

func (p *benchProver) proof(b *testing.B, method, target, token string) string {
	claims := map[string]any{"jti": secret.NewID(), "htm": method, "htu": target, "iat": time.Now().Unix(), "nonce": p.nonce}
	if token != "" {
		claims["ath"] = dpop.AccessTokenHash(token)
	}
	payload, _ := json.Marshal(claims)
	obj, err := p.signer.Sign(payload)
	if err != nil {
		b.Fatal(err)
	}
	out, _ := obj.CompactSerialize()
	return out
}

// BenchmarkDPoP compares a protected request with a DPoP-bound token (the
// token lookup plus the proof's ES256 signature check, thumbprint, nonce
// and replay cache) with one of a bearer token, through the router and
// RequireBearerAuth. Proofs are signed outside the timer, a batch at a
// time, as clients make them.
//
//	go test -run '^$' -bench DPoP ./integration
func BenchmarkDPoP(b *testing.B) {
	d := newBenchDriver(b, nil, func(c *mcpoauth.Config) { c.DPoP.Enabled = true })
	header := basicHeader(d.register(benchapp.ConfidentialClientJSON))
	bearerToken := d.issueTokens(1)[0]

	p := newBenchProver(b)
	tokenURL := benchBase + "/token"
	issue := func() *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, tokenURL, strings.NewReader(benchapp.ClientCredentialsForm))
		for k, v := range header {
			r.Header[k] = v
		}
		r.Header.Set(dpop.Header, p.proof(b, http.MethodPost, tokenURL, ""))
		w := httptest.NewRecorder()
		d.app.Handler.ServeHTTP(w, r)
		if n := w.Header().Get(dpop.NonceHeader); n != "" {
			p.nonce = n
		}
		return w
	}
	w := issue() // use_dpop_nonce, with the nonce
	if w.Code != http.StatusBadRequest || p.nonce == "" {
		b.Fatalf("first token request: %d %s", w.Code, w.Body)
	}
	if w = issue(); w.Code != http.StatusOK {
		b.Fatalf("token request: %d %s", w.Code, w.Body)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &tr); err != nil || tr.TokenType != "DPoP" {
		b.Fatalf("token response %s: %v", w.Body, err)
	}
	mcpURL := benchBase + "/mcp"

	b.Run("bearer", func(b *testing.B) {
		d.serveLoop(b, benchRequest(http.MethodGet, "/mcp", http.Header{"Authorization": {"Bearer " + bearerToken}}, ""))
	})
	b.Run("dpop", func(b *testing.B) {
		w := newBenchWriter()
		batched(b, 1000, func() string { return p.proof(b, http.MethodGet, mcpURL, tr.AccessToken) }, func(proof string) {
			r := benchRequest(http.MethodGet, "/mcp", http.Header{"Authorization": {"DPoP " + tr.AccessToken}, "Dpop": {proof}}, "")
			w.reset()
			d.app.Handler.ServeHTTP(w, r)
			if w.code != http.StatusOK {
				b.Fatalf("status %d: %s %v", w.code, w.body, w.h)
			}
		})
	})
}
