package upstream

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/mcpoauth/mcpoauth"
)

// fakeProvider is an OpenID provider for the failure cases a real one
// cannot produce: idToken lets a test change the ID token's claims.
type fakeProvider struct {
	srv     *httptest.Server
	key     *ecdsa.PrivateKey
	idToken func(claims map[string]any)
	// forger, when set, signs the ID tokens instead of the published key.
	forger *ecdsa.PrivateKey

	mu    sync.Mutex
	codes map[string]authorizeRequest
}

type authorizeRequest struct{ nonce, challenge, clientID string }

func newFakeProvider(t *testing.T) *fakeProvider {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p := &fakeProvider{key: key, codes: map[string]authorizeRequest{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{
			"issuer":                                p.srv.URL,
			"authorization_endpoint":                p.srv.URL + "/authorize",
			"token_endpoint":                        p.srv.URL + "/token",
			"jwks_uri":                              p.srv.URL + "/jwks",
			"response_types_supported":              []string{"code"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"ES256"},
			"code_challenge_methods_supported":      []string{"S256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("code_challenge_method") != "S256" || q.Get("nonce") == "" || q.Get("state") == "" || !strings.Contains(q.Get("scope"), "openid") {
			http.Error(w, "bad authorization request", http.StatusBadRequest)
			return
		}
		code := rand.Text()
		p.mu.Lock()
		p.codes[code] = authorizeRequest{q.Get("nonce"), q.Get("code_challenge"), q.Get("client_id")}
		p.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?"+url.Values{"code": {code}, "state": {q.Get("state")}}.Encode(), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		req, ok := p.codes[r.FormValue("code")]
		delete(p.codes, r.FormValue("code"))
		p.mu.Unlock()
		sum := sha256.Sum256([]byte(r.FormValue("code_verifier")))
		if !ok || base64.RawURLEncoding.EncodeToString(sum[:]) != req.challenge {
			w.WriteHeader(http.StatusBadRequest)
			writeJSON(w, map[string]string{"error": "invalid_grant"})
			return
		}
		now := time.Now()
		claims := map[string]any{
			"iss": p.srv.URL, "sub": "alice-123", "aud": req.clientID, "nonce": req.nonce,
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
			"email": "alice@example.com", "email_verified": true, "name": "Alice",
		}
		if p.idToken != nil {
			p.idToken(claims)
		}
		writeJSON(w, map[string]any{"access_token": "upstream-access", "token_type": "Bearer", "expires_in": 3600, "id_token": p.sign(t, claims)})
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *fakeProvider) sign(t *testing.T, claims map[string]any) string {
	key := p.key
	if p.forger != nil {
		key = p.forger
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1").WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

var testKey = []byte("0123456789abcdef0123456789abcdef")

func newSignIn(t *testing.T, p *fakeProvider, redirect string, allow func(context.Context, Identity) error) *SignIn {
	t.Helper()
	s, err := NewOIDC(context.Background(), Options{
		Issuer: p.srv.URL, ClientID: "mcp-server", ClientSecret: "secret",
		RedirectURL: redirect, CookieKey: testKey, Allow: allow,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// cookies returns the cookies rec set, by name.
func cookies(rec *httptest.ResponseRecorder) map[string]*http.Cookie {
	m := map[string]*http.Cookie{}
	for _, c := range rec.Result().Cookies() {
		m[c.Name] = c
	}
	return m
}

// flow walks Login, the provider's authorize endpoint and Callback;
// tamper may change the callback's query before Callback sees it. It
// returns Callback's response.
func flow(t *testing.T, s *SignIn, p *fakeProvider, returnTo string, tamper func(url.Values)) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	s.Login().ServeHTTP(rec, httptest.NewRequest("GET", "/login?"+url.Values{ReturnToParam: {returnTo}}.Encode(), nil))
	if rec.Code != http.StatusFound {
		t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	login := cookies(rec)[loginCookie]
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(rec.Header().Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	back, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: %d %v", resp.StatusCode, err)
	}
	q := back.Query()
	if tamper != nil {
		tamper(q)
	}
	req := httptest.NewRequest("GET", "/callback?"+q.Encode(), nil)
	req.AddCookie(login)
	rec = httptest.NewRecorder()
	s.Callback().ServeHTTP(rec, req)
	return rec
}

// withSession is a request carrying the session cookie rec set.
func withSession(t *testing.T, rec *httptest.ResponseRecorder) *http.Request {
	t.Helper()
	c := cookies(rec)[sessionCookie]
	if c == nil {
		t.Fatalf("no session cookie set: %d %s", rec.Code, rec.Body)
	}
	req := httptest.NewRequest("GET", "/consent", nil)
	req.AddCookie(c)
	return req
}

func TestSignInRules(t *testing.T) {
	const consent = "/consent?request_id=abc"
	tests := []struct {
		name     string
		idToken  func(map[string]any)
		tamper   func(url.Values)
		setup    func(*fakeProvider)
		allow    func(context.Context, Identity) error
		wantCode int
		wantWhy  string
	}{
		{name: "state mismatch", tamper: func(q url.Values) { q.Set("state", "forged") }, wantCode: http.StatusBadRequest, wantWhy: "state mismatch"},
		{name: "nonce mismatch", idToken: func(c map[string]any) { c["nonce"] = "other" }, wantCode: http.StatusBadGateway, wantWhy: "nonce mismatch"},
		{name: "wrong aud", idToken: func(c map[string]any) { c["aud"] = "another-client" }, wantCode: http.StatusBadGateway, wantWhy: "verification"},
		{name: "wrong iss", idToken: func(c map[string]any) { c["iss"] = "https://evil.example" }, wantCode: http.StatusBadGateway, wantWhy: "verification"},
		{name: "expired ID token", idToken: func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() }, wantCode: http.StatusBadGateway, wantWhy: "verification"},
		{name: "bad signature", setup: func(p *fakeProvider) { p.forger, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }, wantCode: http.StatusBadGateway, wantWhy: "verification"},
		{name: "code replaced", tamper: func(q url.Values) { q.Set("code", "stolen") }, wantCode: http.StatusBadGateway, wantWhy: "code exchange"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newFakeProvider(t)
			p.idToken = tt.idToken
			if tt.setup != nil {
				tt.setup(p)
			}
			s := newSignIn(t, p, "http://127.0.0.1/callback", tt.allow)
			rec := flow(t, s, p, consent, tt.tamper)
			if rec.Code != tt.wantCode || !strings.Contains(rec.Body.String(), tt.wantWhy) {
				t.Fatalf("callback: got %d %q, want %d", rec.Code, rec.Body, tt.wantCode)
			}
			if c := cookies(rec)[sessionCookie]; c != nil {
				t.Fatalf("session cookie set on failure")
			}
			if strings.Contains(rec.Body.String(), "upstream-access") {
				t.Fatalf("a token in the response: %q", rec.Body)
			}
		})
	}
}

func TestSignInHappyPath(t *testing.T) {
	p := newFakeProvider(t)
	s := newSignIn(t, p, "http://127.0.0.1/callback", nil)
	rec := flow(t, s, p, "/consent?request_id=abc", nil)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/consent?request_id=abc" {
		t.Fatalf("callback: %d to %q, want 303 to the consent page", rec.Code, rec.Header().Get("Location"))
	}
	user, err := s.GetUser(withSession(t, rec))
	if err != nil || user != p.srv.URL+"#alice-123" {
		t.Fatalf("GetUser = %q, %v", user, err)
	}
	id, err := s.Identity(withSession(t, rec))
	if err != nil || id.Email != "alice@example.com" || id.Name != "Alice" || !id.EmailVerified {
		t.Fatalf("Identity = %+v, %v", id, err)
	}
	// The login cookie is single use: the same answer again is refused.
	if c := cookies(rec)[loginCookie]; c == nil || c.MaxAge >= 0 {
		t.Fatalf("login cookie not cleared: %+v", c)
	}
}

func TestAllowListRefusal(t *testing.T) {
	p := newFakeProvider(t)
	allow := func(ctx context.Context, id Identity) error {
		if !id.EmailVerified || !strings.HasSuffix(id.Email, "@corp.example") {
			return errors.New("not a corp.example account")
		}
		return nil
	}
	s := newSignIn(t, p, "http://127.0.0.1/callback", allow)
	rec := flow(t, s, p, "/consent?request_id=abc", nil)
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("callback: %d %s", rec.Code, rec.Body)
	}
	user, err := s.GetUser(withSession(t, rec))
	if user != "" || !errors.Is(err, mcpoauth.ErrAccessDenied) {
		t.Fatalf("GetUser = %q, %v; want ErrAccessDenied", user, err)
	}
}

func TestReturnToNotLocalRefused(t *testing.T) {
	p := newFakeProvider(t)
	s := newSignIn(t, p, "http://127.0.0.1/callback", nil)
	for _, rt := range []string{"https://evil.example/", "//evil.example/x", "/\\evil.example", "evil.example", "javascript:alert(1)", "/ok\r\nLocation: x"} {
		rec := httptest.NewRecorder()
		s.Login().ServeHTTP(rec, httptest.NewRequest("GET", "/login?"+url.Values{ReturnToParam: {rt}}.Encode(), nil))
		if rec.Code != http.StatusBadRequest {
			t.Errorf("return_to %q: got %d, want 400", rt, rec.Code)
		}
	}
}

func TestSessionCookieRules(t *testing.T) {
	p := newFakeProvider(t)
	s := newSignIn(t, p, "http://127.0.0.1/callback", nil)
	rec := flow(t, s, p, "/", nil)
	good := cookies(rec)[sessionCookie]

	t.Run("tampered session cookie refused", func(t *testing.T) {
		raw, _ := base64.RawURLEncoding.DecodeString(good.Value)
		raw[len(raw)-1] ^= 1
		req := httptest.NewRequest("GET", "/", nil)
		req.AddCookie(&http.Cookie{Name: good.Name, Value: base64.RawURLEncoding.EncodeToString(raw)})
		if user, err := s.GetUser(req); user != "" || err != nil {
			t.Fatalf("GetUser = %q, %v; want nobody", user, err)
		}
	})
	t.Run("login cookie not accepted as session", func(t *testing.T) {
		rec := httptest.NewRecorder()
		s.Login().ServeHTTP(rec, httptest.NewRequest("GET", "/login", nil))
		req := httptest.NewRequest("GET", "/", nil)
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: cookies(rec)[loginCookie].Value})
		if user, _ := s.GetUser(req); user != "" {
			t.Fatalf("GetUser = %q; want nobody", user)
		}
	})
	t.Run("expired session refused", func(t *testing.T) {
		rec := httptest.NewRecorder()
		past := time.Now().Add(-time.Minute)
		id := Identity{Issuer: p.srv.URL, Subject: "alice-123"}
		if err := s.cookies.set(rec, sessionCookie, session{Identity: id, Expires: past}, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if user, err := s.GetUser(withSession(t, rec)); user != "" || err != nil {
			t.Fatalf("GetUser = %q, %v; want nobody", user, err)
		}
	})
	t.Run("another key refused", func(t *testing.T) {
		other := newSignIn(t, p, "http://127.0.0.1/callback", nil)
		other.cookies, _ = newSealer([]byte("another key, 32 bytes long......"), false)
		req := httptest.NewRequest("GET", "/", nil)
		req.AddCookie(good)
		if user, _ := other.GetUser(req); user != "" {
			t.Fatalf("GetUser = %q; want nobody", user)
		}
	})
	t.Run("logout clears the session", func(t *testing.T) {
		rec := httptest.NewRecorder()
		s.Logout().ServeHTTP(rec, httptest.NewRequest("POST", "/logout", nil))
		c := cookies(rec)[sessionCookie]
		if rec.Code != http.StatusSeeOther || c == nil || c.MaxAge >= 0 {
			t.Fatalf("logout: %d, cookie %+v", rec.Code, c)
		}
	})
}

func TestCookieAttributes(t *testing.T) {
	p := newFakeProvider(t)
	for _, tt := range []struct {
		redirect string
		name     string
		secure   bool
	}{
		{"https://mcp.example/callback", "__Host-" + loginCookie, true},
		{"http://127.0.0.1/callback", loginCookie, false},
	} {
		s := newSignIn(t, p, tt.redirect, nil)
		rec := httptest.NewRecorder()
		s.Login().ServeHTTP(rec, httptest.NewRequest("GET", "/login", nil))
		c := cookies(rec)[tt.name]
		if c == nil {
			t.Fatalf("%s: no cookie %s", tt.redirect, tt.name)
		}
		if !c.HttpOnly || c.Secure != tt.secure || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
			t.Errorf("%s: cookie %+v", tt.redirect, c)
		}
	}
}

func ExampleNewOIDC() {
	ctx := context.Background()
	signIn, err := NewOIDC(ctx, Options{
		Issuer:       "https://accounts.example.com",
		ClientID:     "mcp-server",
		ClientSecret: "…",
		RedirectURL:  "https://mcp.example.com/login/callback",
		CookieKey:    make([]byte, 32), // from a secret store
		Allow: func(ctx context.Context, id Identity) error {
			if id.EmailVerified && strings.HasSuffix(id.Email, "@example.com") {
				return nil
			}
			return fmt.Errorf("%s is not an example.com account", id.Email)
		},
	})
	if err != nil {
		return
	}
	mux := http.NewServeMux()
	mux.Handle("GET /login", signIn.Login())
	mux.Handle("GET /login/callback", signIn.Callback())
	mux.Handle("POST /logout", signIn.Logout())
	// The consent page sends a visitor for whom signIn.GetUser returns ""
	// to /login?return_to=<the page's URL>, and mounts
	// server.AuthenticateHandler(signIn.GetUser).
}
