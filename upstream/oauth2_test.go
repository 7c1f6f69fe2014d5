package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/upstream/upstreamtest"
)

const githubIssuer = "https://github.com"

func newOAuth2SignIn(t *testing.T, p *upstreamtest.Provider, logs *bytes.Buffer, allow func(context.Context, Identity) error) *SignIn {
	t.Helper()
	s, err := NewOAuth2(context.Background(), OAuth2Options{
		Issuer:  githubIssuer,
		AuthURL: p.OAuth2AuthURL(), TokenURL: p.TokenURL(), UserInfoURL: p.UserInfoURL(),
		ClientID: p.ClientID, ClientSecret: p.ClientSecret, Scopes: []string{"read:user"},
		RedirectURL: "http://127.0.0.1/callback", CookieKey: testKey, Allow: allow,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOAuth2SignInRules(t *testing.T) {
	const consent = "/consent?request_id=abc"
	tests := []struct {
		name       string
		tamper     func(url.Values)
		setup      func(*upstreamtest.Provider)
		allow      func(context.Context, Identity) error
		wantCode   int
		wantWhy    string
		wantUser   string // after a redirect back to consent; "" with wantDenied
		wantDenied bool
		wantEmail  string
	}{
		{name: "state mismatch", tamper: func(q url.Values) { q.Set("state", "forged") }, wantCode: http.StatusBadRequest, wantWhy: "state mismatch"},
		{name: "code replaced", tamper: func(q url.Values) { q.Set("code", "stolen") }, wantCode: http.StatusBadGateway, wantWhy: "code exchange"},
		{name: "user-info failure", setup: func(p *upstreamtest.Provider) {
			p.SetUserInfo(http.StatusInternalServerError, map[string]any{"message": "boom"})
		}, wantCode: http.StatusBadGateway, wantWhy: "user-info request"},
		{name: "user-info not an object", setup: func(p *upstreamtest.Provider) {
			p.SetUserInfo(http.StatusOK, nil) // JSON null
		}, wantCode: http.StatusBadGateway, wantWhy: "user-info request"},
		{name: "missing subject", setup: func(p *upstreamtest.Provider) {
			p.SetUserInfo(http.StatusOK, map[string]any{"login": "alice"})
		}, wantCode: http.StatusBadGateway, wantWhy: "no subject"},
		{name: "fractional id is no subject", setup: func(p *upstreamtest.Provider) {
			p.SetUserInfo(http.StatusOK, map[string]any{"id": 1.5})
		}, wantCode: http.StatusBadGateway, wantWhy: "no subject"},
		{name: "allow-list refusal", allow: func(ctx context.Context, id Identity) error {
			if id.Claims["login"] != "octocat" {
				return errors.New("not octocat")
			}
			return nil
		}, wantCode: http.StatusSeeOther, wantDenied: true},
		{name: "happy path", wantCode: http.StatusSeeOther, wantUser: githubIssuer + "#alice-123", wantEmail: "alice@example.com"},
		{name: "numeric id", setup: func(p *upstreamtest.Provider) {
			p.SetUserInfo(http.StatusOK, map[string]any{"id": json.Number("9007199254740993"), "login": "octocat", "email": nil})
		}, wantCode: http.StatusSeeOther, wantUser: githubIssuer + "#9007199254740993"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := upstreamtest.NewProvider(t)
			if tt.setup != nil {
				tt.setup(p)
			}
			var logs bytes.Buffer
			s := newOAuth2SignIn(t, p, &logs, tt.allow)
			rec := flow(t, s, p, consent, tt.tamper)
			checkCallback(t, rec, logs.String(), tt.wantCode, tt.wantWhy)
			if rec.Code != http.StatusSeeOther {
				return
			}
			if loc := rec.Header().Get("Location"); loc != consent {
				t.Fatalf("callback redirected to %q, want %q", loc, consent)
			}
			user, err := s.GetUser(withSession(t, rec))
			if tt.wantDenied {
				if user != "" || !errors.Is(err, mcpoauth.ErrAccessDenied) {
					t.Fatalf("GetUser = %q, %v; want ErrAccessDenied", user, err)
				}
				return
			}
			if err != nil || user != tt.wantUser {
				t.Fatalf("GetUser = %q, %v; want %q", user, err, tt.wantUser)
			}
			id, err := s.Identity(withSession(t, rec))
			if err != nil || id.Email != tt.wantEmail || id.EmailVerified {
				t.Fatalf("Identity = %+v, %v; want email %q, not verified", id, err, tt.wantEmail)
			}
		})
	}
}

func TestOAuth2LoginSendsNoNonce(t *testing.T) {
	p := upstreamtest.NewProvider(t)
	s := newOAuth2SignIn(t, p, &bytes.Buffer{}, nil)
	rec := httptest.NewRecorder()
	s.Login().ServeHTTP(rec, httptest.NewRequest("GET", "/login", nil))
	u, err := url.Parse(rec.Header().Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Has("nonce") || q.Get("state") == "" || q.Get("code_challenge_method") != "S256" || q.Get("scope") != "read:user" {
		t.Fatalf("authorize request %q: want state and S256 PKCE, no nonce, scope read:user", u.RawQuery)
	}
}

func TestOAuth2CustomClaimMapping(t *testing.T) {
	p := upstreamtest.NewProvider(t)
	p.SetUserInfo(http.StatusOK, map[string]any{"user": map[string]any{"uuid": "u-1"}, "mail": "bob@example.com", "display": "Bob"})
	s, err := NewOAuth2(context.Background(), OAuth2Options{
		Issuer:  "https://bitbucket.example",
		AuthURL: p.OAuth2AuthURL(), TokenURL: p.TokenURL(), UserInfoURL: p.UserInfoURL(),
		ClientID: p.ClientID, ClientSecret: p.ClientSecret,
		RedirectURL: "http://127.0.0.1/callback", CookieKey: testKey,
		Subject: func(info map[string]any) (string, error) {
			u, _ := info["user"].(map[string]any)
			id, _ := u["uuid"].(string)
			return id, nil
		},
		EmailMember: "mail", NameMember: "display",
		Logger: slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := flow(t, s, p, "/", nil)
	id, err := s.Identity(withSession(t, rec))
	if err != nil || id.UserID() != "https://bitbucket.example#u-1" || id.Email != "bob@example.com" || id.Name != "Bob" {
		t.Fatalf("Identity = %+v, %v", id, err)
	}
}

func TestNewOAuth2RefusesBadOptions(t *testing.T) {
	good := OAuth2Options{
		Issuer: githubIssuer, AuthURL: "https://github.com/login/oauth/authorize",
		TokenURL: "https://github.com/login/oauth/access_token", UserInfoURL: "https://api.github.com/user",
		ClientID: "id", RedirectURL: "https://mcp.example/callback", CookieKey: testKey,
	}
	if _, err := NewOAuth2(context.Background(), good); err != nil {
		t.Fatalf("good options refused: %v", err)
	}
	for name, change := range map[string]func(*OAuth2Options){
		"issuer with #":      func(o *OAuth2Options) { o.Issuer = "https://github.com#x" },
		"no issuer":          func(o *OAuth2Options) { o.Issuer = "" },
		"relative user-info": func(o *OAuth2Options) { o.UserInfoURL = "/user" },
		"no token URL":       func(o *OAuth2Options) { o.TokenURL = "" },
		"short cookie key":   func(o *OAuth2Options) { o.CookieKey = []byte("short") },
		"relative redirect":  func(o *OAuth2Options) { o.RedirectURL = "/callback" },
	} {
		o := good
		change(&o)
		if _, err := NewOAuth2(context.Background(), o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func ExampleNewOAuth2() {
	signIn, err := NewOAuth2(context.Background(), OAuth2Options{
		Issuer:      "https://github.com",
		AuthURL:     "https://github.com/login/oauth/authorize",
		TokenURL:    "https://github.com/login/oauth/access_token",
		UserInfoURL: "https://api.github.com/user",
		ClientID:    "Iv1.0123456789abcdef",
		RedirectURL: "https://mcp.example.com/login/callback",
		CookieKey:   make([]byte, 32), // from a secret store
		// The default Subject is GitHub's numeric "id", which a user cannot
		// change (unlike "login"); Allow may read id.Claims["login"].
	})
	if err != nil {
		return
	}
	mux := http.NewServeMux()
	mux.Handle("GET /login", signIn.Login())
	mux.Handle("GET /login/callback", signIn.Callback())
	mux.Handle("POST /logout", signIn.Logout())
}
