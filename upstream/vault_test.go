package upstream

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/internal/testclock"
	"github.com/mcpoauth/mcpoauth/upstream/upstreamtest"
	"golang.org/x/oauth2"
)

var (
	key1 = TokenKey{ID: "k1", Key: []byte("vault key one, 32 bytes long....")}
	key2 = TokenKey{ID: "k2", Key: []byte("vault key two, 32 bytes long....")}
)

// vaultEnv is a provider, a shared store and a clock (tests expire tokens
// and leases by moving it, not by sleeping), for one or more
// SignIn replicas.
type vaultEnv struct {
	p     *upstreamtest.Provider
	model *mcpoauth.MemoryModel
	clock *testclock.Clock
	logs  *syncBuffer
}

func newVaultEnv(t *testing.T) *vaultEnv {
	t.Helper()
	model := mcpoauth.NewMemoryModel(mcpoauth.MemoryModelOptions{SweepInterval: mcpoauth.NoSweep})
	t.Cleanup(func() { model.Close() })
	return &vaultEnv{p: upstreamtest.NewProvider(t), model: model, clock: testclock.New(time.Now()), logs: &syncBuffer{}}
}

// replica is a SignIn through e's provider on e's store, with keys (none:
// no vault).
func (e *vaultEnv) replica(t *testing.T, keys ...TokenKey) *SignIn {
	t.Helper()
	opts := Options{
		Issuer: e.p.URL(), ClientID: e.p.ClientID, ClientSecret: e.p.ClientSecret,
		RedirectURL: "http://127.0.0.1/callback", CookieKey: testKey,
		Claims: []string{"groups"},
		Logger: slog.New(slog.NewTextHandler(e.logs, nil)),
	}
	if len(keys) > 0 {
		opts.TokenStore, opts.TokenKeys = e.model, keys
	}
	s, err := NewOIDC(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if s.vault != nil {
		s.vault.now = e.clock.Now
	}
	return s
}

// user is the id of the provider's default user.
func (e *vaultEnv) user() string { return e.p.URL() + "#" + upstreamtest.DefaultUser.Subject }

// grant is a grant of the default user for client-1, expiring in a day.
func (e *vaultEnv) grant(id string) *mcpoauth.Grant {
	return &mcpoauth.Grant{ID: id, ClientID: "client-1", UserID: e.user(), ExpiresAt: e.clock.Now().Add(24 * time.Hour)}
}

// approved signs the default user in at s and approves grant id, and
// returns the callback's response (its session cookie).
func (e *vaultEnv) approved(t *testing.T, s *SignIn, id string) *httptest.ResponseRecorder {
	t.Helper()
	rec := flow(t, s, e.p, "/consent", nil)
	if _, err := s.OnApproval(withSession(t, rec), e.grant(id)); err != nil {
		t.Fatalf("OnApproval: %v", err)
	}
	return rec
}

// sessionOf opens the session cookie rec set.
func sessionOf(t *testing.T, s *SignIn, rec *httptest.ResponseRecorder) session {
	t.Helper()
	var sess session
	if err := s.cookies.open(withSession(t, rec), sessionCookie, &sess); err != nil {
		t.Fatal(err)
	}
	return sess
}

// entry is the stored vault entry id, or nil.
func (e *vaultEnv) entry(t *testing.T, id string) *mcpoauth.UpstreamToken {
	t.Helper()
	ent, err := e.model.GetUpstreamToken(context.Background(), id)
	if errors.Is(err, mcpoauth.ErrNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return ent
}

// noSecret fails if s holds an upstream token.
func noSecret(t *testing.T, what string, s []byte) {
	t.Helper()
	for _, secret := range []string{upstreamtest.AccessToken, upstreamtest.RefreshToken} {
		if bytes.Contains(s, []byte(secret)) {
			t.Fatalf("%s holds an upstream token: %q", what, s)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.b.Bytes())
}

func TestVaultOptionsRules(t *testing.T) {
	p := upstreamtest.NewProvider(t)
	model := mcpoauth.NewMemoryModel(mcpoauth.MemoryModelOptions{SweepInterval: mcpoauth.NoSweep})
	defer model.Close()
	tests := []struct {
		name  string
		store mcpoauth.UpstreamTokenStore
		keys  []TokenKey
		want  string
	}{
		{name: "TokenStore needs TokenKeys", store: model, want: "needs TokenKeys"},
		{name: "TokenKeys need a TokenStore", keys: []TokenKey{key1}, want: "without a TokenStore"},
		{name: "key of 16 bytes refused", store: model, keys: []TokenKey{{ID: "short", Key: make([]byte, 16)}}, want: "32 bytes"},
		{name: "empty key ID refused", store: model, keys: []TokenKey{{Key: key1.Key}}, want: "1 to 255 bytes"},
		{name: "key ID over 255 bytes refused", store: model, keys: []TokenKey{{ID: strings.Repeat("k", 256), Key: key1.Key}}, want: "1 to 255 bytes"},
		{name: "duplicate key ID refused", store: model, keys: []TokenKey{key1, {ID: key1.ID, Key: key2.Key}}, want: "used twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, build := range []func() error{
				func() error {
					_, err := NewOIDC(context.Background(), Options{Issuer: p.URL(), ClientID: p.ClientID, RedirectURL: "http://127.0.0.1/cb", CookieKey: testKey, TokenStore: tt.store, TokenKeys: tt.keys})
					return err
				},
				func() error {
					_, err := NewOAuth2(context.Background(), OAuth2Options{Issuer: githubIssuer, AuthURL: p.OAuth2AuthURL(), TokenURL: p.TokenURL(), UserInfoURL: p.UserInfoURL(), ClientID: p.ClientID, RedirectURL: "http://127.0.0.1/cb", CookieKey: testKey, TokenStore: tt.store, TokenKeys: tt.keys})
					return err
				},
			} {
				if err := build(); err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("got %v, want an error saying %q", err, tt.want)
				}
			}
		})
	}
}

func TestVaultSealingRules(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T, e *vaultEnv)
	}{
		{"session entry holds no plaintext token", func(t *testing.T, e *vaultEnv) {
			s := e.replica(t, key1)
			rec := flow(t, s, e.p, "/consent", nil)
			ent := e.entry(t, sessionOf(t, s, rec).Vault)
			if ent == nil || ent.GrantID != "" || len(ent.Sealed) == 0 {
				t.Fatalf("session entry %+v", ent)
			}
			noSecret(t, "the session entry", ent.Sealed)
			noSecret(t, "the session cookie", []byte(cookies(rec)[sessionCookie].Value))
		}},
		{"grant entry holds no plaintext token", func(t *testing.T, e *vaultEnv) {
			s := e.replica(t, key1)
			e.approved(t, s, "g1")
			ent := e.entry(t, grantEntryID("g1"))
			if ent == nil || ent.GrantID != "g1" || ent.ClientID != "client-1" {
				t.Fatalf("grant entry %+v", ent)
			}
			noSecret(t, "the grant entry", ent.Sealed)
		}},
		{"entry copied to another grant does not open", func(t *testing.T, e *vaultEnv) {
			s := e.replica(t, key1)
			e.approved(t, s, "g1")
			copied := &mcpoauth.UpstreamToken{ID: grantEntryID("g2"), GrantID: "g2", Sealed: e.entry(t, grantEntryID("g1")).Sealed, ExpiresAt: e.clock.Now().Add(time.Hour)}
			if err := e.model.SaveUpstreamToken(ctx, copied); err != nil {
				t.Fatal(err)
			}
			if tok, err := s.Token(ctx, "g2"); err == nil || !strings.Contains(err.Error(), "does not open") {
				t.Fatalf("Token of the copy = %v, %v; want refused", tok, err)
			}
		}},
		{"tampered entry does not open", func(t *testing.T, e *vaultEnv) {
			s := e.replica(t, key1)
			e.approved(t, s, "g1")
			ent := *e.entry(t, grantEntryID("g1"))
			ent.Sealed = bytes.Clone(ent.Sealed)
			ent.Sealed[len(ent.Sealed)-1] ^= 1
			ent.Version++
			if err := e.model.ReplaceUpstreamToken(ctx, &ent, ent.Version-1); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Token(ctx, "g1"); err == nil || !strings.Contains(err.Error(), "does not open") {
				t.Fatalf("Token = %v; want refused", err)
			}
		}},
		{"rotation: an old key's entry opens and is sealed anew", func(t *testing.T, e *vaultEnv) {
			e.approved(t, e.replica(t, key1), "g1")
			rotated := e.replica(t, key2, key1)
			if tok, err := rotated.Token(ctx, "g1"); err != nil || tok.AccessToken != upstreamtest.AccessToken {
				t.Fatalf("Token after rotation = %v, %v", tok, err)
			}
			// Re-sealed under k2: the old key can go.
			if tok, err := e.replica(t, key2).Token(ctx, "g1"); err != nil || tok.AccessToken != upstreamtest.AccessToken {
				t.Fatalf("Token with only the new key = %v, %v", tok, err)
			}
		}},
		{"a retired key's entry does not open", func(t *testing.T, e *vaultEnv) {
			e.approved(t, e.replica(t, key1), "g1")
			if _, err := e.replica(t, key2).Token(ctx, "g1"); err == nil || !strings.Contains(err.Error(), `key "k1"`) {
				t.Fatalf("Token = %v; want an unknown key", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newVaultEnv(t)) })
	}
}

func TestVaultSessionRules(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T, e *vaultEnv)
	}{
		{"approval returns the identity with the chosen claims", func(t *testing.T, e *vaultEnv) {
			e.p.ModifyIDToken(func(c map[string]any) { c["groups"] = []string{"admins"}; c["secret"] = "x" })
			s := e.replica(t, key1)
			rec := flow(t, s, e.p, "/consent", nil)
			id, err := s.OnApproval(withSession(t, rec), e.grant("g1"))
			if err != nil || id.Issuer != e.p.URL() || id.Subject != "alice-123" || id.Email != "alice@example.com" || id.Name != "Alice" {
				t.Fatalf("OnApproval = %+v, %v", id, err)
			}
			if g, ok := id.Claims["groups"].([]any); !ok || len(g) != 1 || g[0] != "admins" || len(id.Claims) != 1 {
				t.Fatalf("Claims = %#v; want only groups", id.Claims)
			}
		}},
		{"kept claims too large for a cookie fail the sign-in", func(t *testing.T, e *vaultEnv) {
			e.p.ModifyIDToken(func(c map[string]any) { c["groups"] = strings.Repeat("g", maxCookieSize) })
			rec := flow(t, e.replica(t, key1), e.p, "/consent", nil)
			if rec.Code != http.StatusInternalServerError || cookies(rec)[sessionCookie] != nil {
				t.Fatalf("callback: %d; want 500 and no session cookie", rec.Code)
			}
		}},
		{"approval moves the tokens: the session is over", func(t *testing.T, e *vaultEnv) {
			s := e.replica(t, key1)
			rec := e.approved(t, s, "g1")
			if e.entry(t, sessionOf(t, s, rec).Vault) != nil {
				t.Fatal("session entry still there")
			}
			if user, err := s.GetUser(withSession(t, rec)); user != "" || err != nil {
				t.Fatalf("GetUser = %q, %v; want nobody", user, err)
			}
		}},
		{"a second approval from the session gets no tokens", func(t *testing.T, e *vaultEnv) {
			s := e.replica(t, key1)
			rec := e.approved(t, s, "g1")
			if _, err := s.OnApproval(withSession(t, rec), e.grant("g2")); err == nil {
				t.Fatal("second approval succeeded")
			}
			if e.entry(t, grantEntryID("g2")) != nil {
				t.Fatal("second grant has an entry")
			}
		}},
		{"racing approvals from one session: one gets the tokens", func(t *testing.T, e *vaultEnv) {
			s := e.replica(t, key1)
			sess := sessionOf(t, s, flow(t, s, e.p, "/consent", nil))
			var wins int
			for _, g := range []string{"g1", "g2"} {
				if s.vault.moveToGrant(ctx, sess.Vault, sess.Subject, e.grant(g)) == nil {
					wins++
				}
			}
			if wins != 1 {
				t.Fatalf("%d grants got the session's tokens", wins)
			}
		}},
		{"approval for another user is refused", func(t *testing.T, e *vaultEnv) {
			s := e.replica(t, key1)
			rec := flow(t, s, e.p, "/consent", nil)
			g := e.grant("g1")
			g.UserID = "https://other.example#mallory"
			if _, err := s.OnApproval(withSession(t, rec), g); err == nil {
				t.Fatal("approved for another user")
			}
			if e.entry(t, sessionOf(t, s, rec).Vault) == nil || e.entry(t, grantEntryID("g1")) != nil {
				t.Fatal("tokens moved on a refused approval")
			}
		}},
		{"approval without a session is refused", func(t *testing.T, e *vaultEnv) {
			if _, err := e.replica(t, key1).OnApproval(httptest.NewRequest("POST", "/consent", nil), e.grant("g1")); err == nil {
				t.Fatal("approved without a session")
			}
		}},
		{"a refused user's tokens are not kept", func(t *testing.T, e *vaultEnv) {
			s := e.replica(t, key1)
			s.allow = func(context.Context, Identity) error { return errors.New("no") }
			rec := flow(t, s, e.p, "/consent", nil)
			if v := sessionOf(t, s, rec).Vault; v != "" {
				t.Fatalf("refused session has vault entry %q", v)
			}
		}},
		{"logout deletes the session's tokens", func(t *testing.T, e *vaultEnv) {
			s := e.replica(t, key1)
			rec := flow(t, s, e.p, "/consent", nil)
			id := sessionOf(t, s, rec).Vault
			req := httptest.NewRequest("POST", "/logout", nil)
			req.AddCookie(cookies(rec)[sessionCookie])
			s.Logout().ServeHTTP(httptest.NewRecorder(), req)
			if e.entry(t, id) != nil {
				t.Fatal("session entry survives logout")
			}
		}},
		{"a new sign-in deletes the previous session's tokens", func(t *testing.T, e *vaultEnv) {
			s := e.replica(t, key1)
			first := flow(t, s, e.p, "/consent", nil)
			id := sessionOf(t, s, first).Vault
			// The callback of a second sign-in, in the same browser.
			rec := httptest.NewRecorder()
			s.Login().ServeHTTP(rec, httptest.NewRequest("GET", "/login", nil))
			l := cookies(rec)[loginCookie]
			resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Get(rec.Header().Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			back, _ := resp.Location()
			req := httptest.NewRequest("GET", "/callback?"+back.RawQuery, nil)
			req.AddCookie(l)
			req.AddCookie(cookies(first)[sessionCookie])
			s.Callback().ServeHTTP(httptest.NewRecorder(), req)
			if e.entry(t, id) != nil {
				t.Fatal("previous session entry survives a new sign-in")
			}
		}},
		{"without a vault the session survives approval", func(t *testing.T, e *vaultEnv) {
			s := e.replica(t)
			rec := e.approved(t, s, "g1")
			if user, err := s.GetUser(withSession(t, rec)); user != e.user() || err != nil {
				t.Fatalf("GetUser = %q, %v", user, err)
			}
			if _, err := s.Token(ctx, "g1"); !errors.Is(err, ErrNoUpstreamToken) {
				t.Fatalf("Token without a vault = %v; want ErrNoUpstreamToken", err)
			}
		}},
		{"a session from before the vault signs in again", func(t *testing.T, e *vaultEnv) {
			rec := flow(t, e.replica(t), e.p, "/consent", nil)
			if user, err := e.replica(t, key1).GetUser(withSession(t, rec)); user != "" || err != nil {
				t.Fatalf("GetUser = %q, %v; want nobody", user, err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newVaultEnv(t)) })
	}
}

func TestVaultTokenRules(t *testing.T) {
	ctx := context.Background()
	// expire makes the stored access token expired at the vault's clock,
	// and the provider's next ones good for an hour past it.
	expire := func(e *vaultEnv) {
		e.clock.Advance(10 * time.Minute)
		e.p.SetTokenLifetime(time.Hour)
	}
	tests := []struct {
		name string
		run  func(t *testing.T, e *vaultEnv, s *SignIn)
	}{
		{"a fresh token is returned without a refresh", func(t *testing.T, e *vaultEnv, s *SignIn) {
			tok, err := s.Token(ctx, "g1")
			if err != nil || tok.AccessToken != upstreamtest.AccessToken || tok.RefreshToken != "" || e.p.Refreshes() != 0 {
				t.Fatalf("Token = %+v, %v; %d refreshes", tok, err, e.p.Refreshes())
			}
		}},
		{"an expired token is refreshed and the new tokens stored", func(t *testing.T, e *vaultEnv, s *SignIn) {
			expire(e)
			tok, err := s.Token(ctx, "g1")
			if err != nil || tok.AccessToken == upstreamtest.AccessToken || !strings.HasPrefix(tok.AccessToken, upstreamtest.AccessToken) {
				t.Fatalf("Token = %+v, %v; want a refreshed one", tok, err)
			}
			again, err := s.Token(ctx, "g1")
			if err != nil || again.AccessToken != tok.AccessToken || e.p.Refreshes() != 1 {
				t.Fatalf("Token again = %+v, %v; %d refreshes, want the stored one", again, err, e.p.Refreshes())
			}
			// The rotated refresh token was stored: a second expiry refreshes
			// again (the provider refuses the first refresh token now).
			e.clock.Advance(2 * time.Hour)
			e.p.SetTokenLifetime(4 * time.Hour)
			if _, err := s.Token(ctx, "g1"); err != nil || e.p.Refreshes() != 2 {
				t.Fatalf("second refresh: %v; %d refreshes", err, e.p.Refreshes())
			}
		}},
		{"a token expiring within the skew is refreshed", func(t *testing.T, e *vaultEnv, s *SignIn) {
			e.clock.Advance(time.Minute - expirySkew/2) // tokens of the provider last a minute here
			e.p.SetTokenLifetime(time.Hour)
			if _, err := s.Token(ctx, "g1"); err != nil || e.p.Refreshes() != 1 {
				t.Fatalf("Token = %v; %d refreshes, want 1", err, e.p.Refreshes())
			}
		}},
		{"the old refresh token is kept when the provider sends none", func(t *testing.T, e *vaultEnv, s *SignIn) {
			expire(e)
			_, err := s.vault.token(ctx, "g1", func(context.Context, string) (*oauth2.Token, error) {
				return &oauth2.Token{AccessToken: "new", Expiry: e.clock.Now().Add(time.Hour)}, nil
			}, "")
			if err != nil {
				t.Fatal(err)
			}
			_, p, _, err := s.vault.load(ctx, "g1")
			if err != nil || p.AccessToken != "new" || !strings.HasPrefix(p.RefreshToken, upstreamtest.RefreshToken) {
				t.Fatalf("stored %v, refresh token kept: %v", err, strings.HasPrefix(p.RefreshToken, upstreamtest.RefreshToken))
			}
		}},
		{"a revoked grant has no token", func(t *testing.T, e *vaultEnv, s *SignIn) {
			if err := e.model.RevokeGrant(ctx, "g1"); err != nil {
				t.Fatal(err)
			}
			if e.entry(t, grantEntryID("g1")) != nil {
				t.Fatal("entry survives RevokeGrant")
			}
			if tok, err := s.Token(ctx, "g1"); !errors.Is(err, ErrNoUpstreamToken) {
				t.Fatalf("Token = %v, %v; want ErrNoUpstreamToken", tok, err)
			}
		}},
		{"a deleted client's grants have no token", func(t *testing.T, e *vaultEnv, s *SignIn) {
			if err := e.model.RegisterClient(ctx, &mcpoauth.Client{ID: "client-1"}); err != nil {
				t.Fatal(err)
			}
			if err := e.model.DeleteClient(ctx, "client-1"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Token(ctx, "g1"); !errors.Is(err, ErrNoUpstreamToken) {
				t.Fatalf("Token = %v; want ErrNoUpstreamToken", err)
			}
		}},
		{"an unknown grant has no token", func(t *testing.T, e *vaultEnv, s *SignIn) {
			if _, err := s.Token(ctx, "nope"); !errors.Is(err, ErrNoUpstreamToken) {
				t.Fatalf("Token = %v; want ErrNoUpstreamToken", err)
			}
		}},
		{"an entry past the grant's end has no token", func(t *testing.T, e *vaultEnv, s *SignIn) {
			e.clock.Advance(25 * time.Hour)
			if _, err := s.Token(ctx, "g1"); !errors.Is(err, ErrNoUpstreamToken) || e.p.Refreshes() != 0 {
				t.Fatalf("Token = %v, %d refreshes; want ErrNoUpstreamToken", err, e.p.Refreshes())
			}
		}},
		{"an expired token without a refresh token is none", func(t *testing.T, e *vaultEnv, s *SignIn) {
			_, p, _, _ := s.vault.load(ctx, "g1")
			p.RefreshToken = ""
			storeRaw(t, e, s, "g1", p)
			expire(e)
			if _, err := s.Token(ctx, "g1"); !errors.Is(err, ErrNoUpstreamToken) || e.p.Refreshes() != 0 {
				t.Fatalf("Token = %v, %d refreshes; want ErrNoUpstreamToken", err, e.p.Refreshes())
			}
		}},
		{"a failed refresh says so without the token and releases the lease", func(t *testing.T, e *vaultEnv, s *SignIn) {
			expire(e)
			e.p.FailRefreshes(true) // its error_description echoes the refresh token
			_, err := s.Token(ctx, "g1")
			if !errors.Is(err, ErrUpstreamRefresh) || !strings.Contains(err.Error(), "invalid_grant") {
				t.Fatalf("Token = %v; want ErrUpstreamRefresh with the error code", err)
			}
			noSecret(t, "the error", []byte(err.Error()))
			if ent := e.entry(t, grantEntryID("g1")); !ent.LeaseUntil.IsZero() {
				t.Fatalf("lease kept after a failed refresh: %v", ent.LeaseUntil)
			}
			e.p.FailRefreshes(false)
			if _, err := s.Token(ctx, "g1"); err != nil {
				t.Fatalf("Token after the provider recovered: %v", err)
			}
		}},
		{"a lapsed lease is taken over", func(t *testing.T, e *vaultEnv, s *SignIn) {
			expire(e)
			ent := *e.entry(t, grantEntryID("g1"))
			ent.LeaseUntil, ent.Version = e.clock.Now().Add(leaseDuration), ent.Version+1
			if err := e.model.ReplaceUpstreamToken(ctx, &ent, ent.Version-1); err != nil {
				t.Fatal(err) // a replica that took the lease and died
			}
			e.clock.Advance(leaseDuration + time.Second)
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if _, err := s.Token(ctx, "g1"); err != nil || e.p.Refreshes() != 1 {
				t.Fatalf("Token = %v; %d refreshes", err, e.p.Refreshes())
			}
		}},
		{"user info is about the grant's user", func(t *testing.T, e *vaultEnv, s *SignIn) {
			info, err := s.UserInfo(ctx, "g1")
			if err != nil || info["sub"] != "alice-123" || info["email"] != "alice@example.com" {
				t.Fatalf("UserInfo = %v, %v", info, err)
			}
		}},
		{"user info about another user is refused", func(t *testing.T, e *vaultEnv, s *SignIn) {
			e.p.SetUser(upstreamtest.User{Subject: "bob-7"})
			if info, err := s.UserInfo(ctx, "g1"); err == nil {
				t.Fatalf("UserInfo = %v; want refused", info)
			}
		}},
		{"a token the provider refuses before its expiry is refreshed once", func(t *testing.T, e *vaultEnv, s *SignIn) {
			e.p.ExpireAccessTokens()
			info, err := s.UserInfo(ctx, "g1")
			if err != nil || info["sub"] != "alice-123" || e.p.Refreshes() != 1 {
				t.Fatalf("UserInfo = %v, %v; %d refreshes, want 1", info, err, e.p.Refreshes())
			}
		}},
		{"user info with a refused token that cannot be refreshed fails without it", func(t *testing.T, e *vaultEnv, s *SignIn) {
			e.p.ExpireAccessTokens()
			e.p.FailRefreshes(true)
			_, err := s.UserInfo(ctx, "g1")
			if !errors.Is(err, ErrUpstreamRefresh) || e.p.Refreshes() != 1 {
				t.Fatalf("UserInfo = %v; %d refreshes; want ErrUpstreamRefresh after one", err, e.p.Refreshes())
			}
			noSecret(t, "the error", []byte(err.Error()))
		}},
		{"user info of a revoked grant has no token", func(t *testing.T, e *vaultEnv, s *SignIn) {
			_ = e.model.RevokeGrant(ctx, "g1")
			if _, err := s.UserInfo(ctx, "g1"); !errors.Is(err, ErrNoUpstreamToken) {
				t.Fatalf("UserInfo = %v; want ErrNoUpstreamToken", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newVaultEnv(t)
			e.p.SetTokenLifetime(time.Minute)
			s := e.replica(t, key1)
			e.approved(t, s, "g1")
			e.p.SetTokenLifetime(0)
			tt.run(t, e, s)
			noSecret(t, "the logs", e.logs.Bytes())
		})
	}
}

// storeRaw seals p as the grant's entry, replacing the stored one.
func storeRaw(t *testing.T, e *vaultEnv, s *SignIn, grantID string, p vaultPayload) {
	t.Helper()
	ent := *e.entry(t, grantEntryID(grantID))
	sealed, err := s.vault.seal(ent.ID, p)
	if err != nil {
		t.Fatal(err)
	}
	ent.Sealed, ent.Version = sealed, ent.Version+1
	if err := e.model.ReplaceUpstreamToken(context.Background(), &ent, ent.Version-1); err != nil {
		t.Fatal(err)
	}
}

// TestVaultConcurrentCallersRefreshOnce: fifty tool calls at the same
// moment with an expired token make one refresh, and all get its token.
// The provider holds the refresh until the 49 others have joined it.
func TestVaultConcurrentCallersRefreshOnce(t *testing.T) {
	const callers = 50
	e := newVaultEnv(t)
	e.p.SetTokenLifetime(time.Minute)
	s := e.replica(t, key1)
	e.approved(t, s, "g1")
	e.clock.Advance(10 * time.Minute)
	e.p.SetTokenLifetime(time.Hour)
	arrived, release := e.p.HoldRefreshes()
	joined := make(chan struct{}, callers)
	s.vault.joined = func() { joined <- struct{}{} }

	start := make(chan struct{})
	tokens, errs := make(chan string, callers), make(chan error, callers)
	for range callers {
		go func() {
			<-start
			tok, err := s.Token(context.Background(), "g1")
			if err != nil {
				errs <- err
				return
			}
			tokens <- tok.AccessToken
		}()
	}
	close(start)
	timeout := time.After(10 * time.Second)
	for i := 0; i < callers; i++ { // one refresh arrives, 49 callers join it
		select {
		case <-arrived:
		case <-joined:
		case err := <-errs:
			t.Fatal(err)
		case <-timeout:
			t.Fatalf("after %d of %d: callers neither refresh nor join a refresh", i, callers)
		}
	}
	release()
	var first string
	for range callers {
		select {
		case tok := <-tokens:
			if first == "" {
				first = tok
			}
			if tok != first || tok == upstreamtest.AccessToken {
				t.Fatalf("callers got different or stale tokens")
			}
		case err := <-errs:
			t.Fatal(err)
		}
	}
	if n := e.p.Refreshes(); n != 1 {
		t.Fatalf("%d refreshes upstream, want 1", n)
	}
}

// TestVaultReplicasRefreshOnce: two replicas sharing one store make one
// refresh: the second waits for the first's lease, then reads its result.
func TestVaultReplicasRefreshOnce(t *testing.T) {
	setup := func(t *testing.T) (*vaultEnv, *SignIn, *SignIn) {
		e := newVaultEnv(t)
		e.p.SetTokenLifetime(time.Minute)
		a, b := e.replica(t, key1), e.replica(t, key1)
		e.approved(t, a, "g1")
		e.clock.Advance(10 * time.Minute)
		e.p.SetTokenLifetime(time.Hour)
		return e, a, b
	}
	t.Run("the second waits for the first's lease", func(t *testing.T) {
		e, a, b := setup(t)
		arrived, release := e.p.HoldRefreshes()
		waiting := make(chan struct{}, 100)
		b.vault.leaseWait = func() { waiting <- struct{}{} }
		type result struct {
			tok *oauth2.Token
			err error
		}
		ra, rb := make(chan result, 1), make(chan result, 1)
		go func() { tok, err := a.Token(context.Background(), "g1"); ra <- result{tok, err} }()
		<-arrived // a holds the lease and is refreshing
		go func() { tok, err := b.Token(context.Background(), "g1"); rb <- result{tok, err} }()
		select {
		case <-waiting:
		case r := <-rb:
			t.Fatalf("replica b did not wait for the lease: %v", r.err)
		}
		release()
		x, y := <-ra, <-rb
		if x.err != nil || y.err != nil || x.tok.AccessToken != y.tok.AccessToken {
			t.Fatalf("a: %v; b: %v; want the same token", x.err, y.err)
		}
		if n := e.p.Refreshes(); n != 1 {
			t.Fatalf("%d refreshes upstream, want 1", n)
		}
	})
	t.Run("racing callers on both replicas", func(t *testing.T) {
		e, a, b := setup(t)
		start := make(chan struct{})
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for i := range 40 {
			s := a
			if i%2 == 1 {
				s = b
			}
			wg.Go(func() {
				<-start
				if _, err := s.Token(context.Background(), "g1"); err != nil {
					errs <- err
				}
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if n := e.p.Refreshes(); n != 1 {
			t.Fatalf("%d refreshes upstream, want 1", n)
		}
	})
}

// TestVaultOAuth2 runs the vault through a plain OAuth 2 provider: the
// tokens are kept, refreshed, and UserInfo asks UserInfoURL.
func TestVaultOAuth2(t *testing.T) {
	ctx := context.Background()
	e := newVaultEnv(t)
	s, err := NewOAuth2(ctx, OAuth2Options{
		Issuer:  githubIssuer,
		AuthURL: e.p.OAuth2AuthURL(), TokenURL: e.p.TokenURL(), UserInfoURL: e.p.UserInfoURL(),
		ClientID: e.p.ClientID, ClientSecret: e.p.ClientSecret,
		RedirectURL: "http://127.0.0.1/callback", CookieKey: testKey,
		Claims: []string{"login"}, TokenStore: e.model, TokenKeys: []TokenKey{key1},
		Logger: slog.New(slog.NewTextHandler(e.logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	s.vault.now = e.clock.Now
	e.p.SetTokenLifetime(time.Minute)
	rec := flow(t, s, e.p, "/consent", nil)
	g := e.grant("g1")
	g.UserID = githubIssuer + "#alice-123"
	id, err := s.OnApproval(withSession(t, rec), g)
	if err != nil || id.Claims["login"] != "alice" {
		t.Fatalf("OnApproval = %+v, %v", id, err)
	}
	e.clock.Advance(10 * time.Minute)
	e.p.SetTokenLifetime(time.Hour)
	e.p.ExpireAccessTokens()
	info, err := s.UserInfo(ctx, "g1")
	if err != nil || info["id"] != "alice-123" || e.p.Refreshes() != 1 {
		t.Fatalf("UserInfo = %v, %v; %d refreshes", info, err, e.p.Refreshes())
	}
	noSecret(t, "the logs", e.logs.Bytes())
}
