package upstream

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/upstream/upstreamtest"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func newSignIn(t *testing.T, p *upstreamtest.Provider, redirect string, allow func(context.Context, Identity) error) *SignIn {
	t.Helper()
	s, err := NewOIDC(context.Background(), Options{
		Issuer: p.URL(), ClientID: p.ClientID, ClientSecret: p.ClientSecret,
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
func flow(t *testing.T, s *SignIn, p *upstreamtest.Provider, returnTo string, tamper func(url.Values)) *httptest.ResponseRecorder {
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

// checkCallback checks the Callback's answer rec: wantCode with wantWhy
// in the body; the access token neither in the body nor in logs; and
// unless it redirects back (303), no session cookie.
func checkCallback(t *testing.T, rec *httptest.ResponseRecorder, logs string, wantCode int, wantWhy string) {
	t.Helper()
	if rec.Code != wantCode || !strings.Contains(rec.Body.String(), wantWhy) {
		t.Fatalf("callback: got %d %q, want %d %q", rec.Code, rec.Body, wantCode, wantWhy)
	}
	if strings.Contains(rec.Body.String()+logs, upstreamtest.AccessToken) {
		t.Fatalf("the access token in the response or the logs: %q %q", rec.Body, logs)
	}
	if c := cookies(rec)[sessionCookie]; c != nil && rec.Code != http.StatusSeeOther {
		t.Fatalf("session cookie set on failure")
	}
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
		setup    func(*upstreamtest.Provider)
		allow    func(context.Context, Identity) error
		wantCode int
		wantWhy  string
	}{
		{name: "state mismatch", tamper: func(q url.Values) { q.Set("state", "forged") }, wantCode: http.StatusBadRequest, wantWhy: "state mismatch"},
		{name: "nonce mismatch", idToken: func(c map[string]any) { c["nonce"] = "other" }, wantCode: http.StatusBadGateway, wantWhy: "nonce mismatch"},
		{name: "wrong aud", idToken: func(c map[string]any) { c["aud"] = "another-client" }, wantCode: http.StatusBadGateway, wantWhy: "verification"},
		{name: "wrong iss", idToken: func(c map[string]any) { c["iss"] = "https://evil.example" }, wantCode: http.StatusBadGateway, wantWhy: "verification"},
		{name: "expired ID token", idToken: func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() }, wantCode: http.StatusBadGateway, wantWhy: "verification"},
		{name: "bad signature", setup: func(p *upstreamtest.Provider) {
			forger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			p.SignWith(forger)
		}, wantCode: http.StatusBadGateway, wantWhy: "verification"},
		{name: "code replaced", tamper: func(q url.Values) { q.Set("code", "stolen") }, wantCode: http.StatusBadGateway, wantWhy: "code exchange"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := upstreamtest.NewProvider(t)
			p.ModifyIDToken(tt.idToken)
			if tt.setup != nil {
				tt.setup(p)
			}
			s := newSignIn(t, p, "http://127.0.0.1/callback", tt.allow)
			checkCallback(t, flow(t, s, p, consent, tt.tamper), "", tt.wantCode, tt.wantWhy)
		})
	}
}

func TestSignInHappyPath(t *testing.T) {
	p := upstreamtest.NewProvider(t)
	s := newSignIn(t, p, "http://127.0.0.1/callback", nil)
	rec := flow(t, s, p, "/consent?request_id=abc", nil)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/consent?request_id=abc" {
		t.Fatalf("callback: %d to %q, want 303 to the consent page", rec.Code, rec.Header().Get("Location"))
	}
	user, err := s.GetUser(withSession(t, rec))
	if err != nil || user != p.URL()+"#alice-123" {
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
	p := upstreamtest.NewProvider(t)
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
	p := upstreamtest.NewProvider(t)
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
	p := upstreamtest.NewProvider(t)
	s := newSignIn(t, p, "http://127.0.0.1/callback", nil)
	rec := flow(t, s, p, "/", nil)
	good := cookies(rec)[sessionCookie]

	t.Run("no cookie: Identity says ErrNoSession", func(t *testing.T) {
		if _, err := s.Identity(httptest.NewRequest("GET", "/", nil)); !errors.Is(err, ErrNoSession) {
			t.Fatalf("Identity error = %v; want ErrNoSession", err)
		}
	})
	t.Run("tampered session cookie refused", func(t *testing.T) {
		raw, _ := base64.RawURLEncoding.DecodeString(good.Value)
		raw[len(raw)-1] ^= 1
		req := httptest.NewRequest("GET", "/", nil)
		req.AddCookie(&http.Cookie{Name: good.Name, Value: base64.RawURLEncoding.EncodeToString(raw)})
		if user, err := s.GetUser(req); user != "" || err != nil {
			t.Fatalf("GetUser = %q, %v; want nobody", user, err)
		}
		if _, err := s.Identity(req); !errors.Is(err, ErrNoSession) {
			t.Fatalf("Identity error = %v; want ErrNoSession", err)
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
		id := Identity{Issuer: p.URL(), Subject: "alice-123"}
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
	p := upstreamtest.NewProvider(t)
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

// TestIdentityFromUserInfo: a provider that keeps the email and profile
// claims out of the code flow's ID token (OpenID Connect Core §5.4;
// node-oidc-provider by default) still yields them, from its user-info
// endpoint, but only when that answer is about the ID token's subject
// (§5.3.2).
func TestIdentityFromUserInfo(t *testing.T) {
	withoutProfile := func(c map[string]any) {
		delete(c, "email")
		delete(c, "email_verified")
		delete(c, "name")
	}
	for _, tt := range []struct {
		name         string
		idToken      func(map[string]any)
		userInfo     map[string]any
		wantEmail    string
		wantName     string
		wantVerified bool
	}{
		{"claims in the ID token", nil, nil, "alice@example.com", upstreamtest.DefaultUser.Name, true},
		{"claims from user-info", withoutProfile, nil, "alice@example.com", upstreamtest.DefaultUser.Name, true},
		{"user-info about another subject is ignored", func(c map[string]any) {
			withoutProfile(c)
			c["sub"] = "someone-else"
		}, nil, "", "", false},
		{"the ID token's email_verified does not vouch for user-info's email", func(c map[string]any) {
			delete(c, "email")
			c["email_verified"] = true
		}, map[string]any{"sub": upstreamtest.DefaultUser.Subject, "email": "mallory@corp.example"}, "mallory@corp.example", upstreamtest.DefaultUser.Name, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := upstreamtest.NewProvider(t)
			p.ModifyIDToken(tt.idToken)
			if tt.userInfo != nil {
				p.SetUserInfo(http.StatusOK, tt.userInfo)
			}
			s := newSignIn(t, p, "http://127.0.0.1/callback", nil)
			id, err := s.Identity(withSession(t, flow(t, s, p, "/", nil)))
			if err != nil {
				t.Fatal(err)
			}
			if id.Email != tt.wantEmail || id.Name != tt.wantName || id.EmailVerified != tt.wantVerified {
				t.Fatalf("identity %+v; want email %q (verified %v), name %q", id, tt.wantEmail, tt.wantVerified, tt.wantName)
			}
		})
	}
}
