package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/metadata"
	"github.com/mcpoauth/mcpoauth/upstream/upstreamtest"
)

// TestAllowListRefusalEndsAtTheClient: a user the Allow hook refuses signs
// in upstream, approves on the consent page, and the MCP client receives
// error=access_denied (RFC 6749 §4.1.2.1) instead of a code, with no
// grant made.
func TestAllowListRefusalEndsAtTheClient(t *testing.T) {
	p := upstreamtest.NewProvider(t)
	ts := httptest.NewUnstartedServer(nil)
	base := "http://" + ts.Listener.Addr().String()
	model := mcpoauth.NewMemoryModel(mcpoauth.MemoryModelOptions{SweepInterval: mcpoauth.NoSweep})
	t.Cleanup(func() { _ = model.Close() })
	signIn, err := NewOIDC(context.Background(), Options{
		Issuer: p.URL(), ClientID: p.ClientID, ClientSecret: p.ClientSecret,
		RedirectURL: base + "/login/callback", CookieKey: testKey,
		TokenStore: model, TokenKeys: []TokenKey{{ID: "k", Key: testKey}},
		Allow: func(_ context.Context, id Identity) error {
			if !strings.HasSuffix(id.Email, "@corp.example") {
				return errors.New("not a corp.example account")
			}
			return nil
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := mcpoauth.New(mcpoauth.Config{
		Model: model, Issuer: base, AuthorizationURL: base + "/consent", ResourceServerURL: base + "/mcp", ScopesSupported: []string{"mcp:tools"},
		OnApproval: signIn.OnApproval,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		RateLimits: mcpoauth.RateLimits{Disabled: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	const redirect = "http://127.0.0.1:9/cb"
	if _, err := srv.RegisterClient(context.Background(), metadata.ClientInformation{
		ClientID:       "app",
		ClientMetadata: metadata.ClientMetadata{RedirectURIs: []string{redirect}, TokenEndpointAuthMethod: "none"},
	}); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", srv.Router())
	mux.Handle("/login", signIn.Login())
	mux.Handle("/login/callback", signIn.Callback())
	mux.HandleFunc("GET /consent", func(w http.ResponseWriter, r *http.Request) {
		pending, err := srv.PendingAuthorization(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_ = json.NewEncoder(w).Encode(pending)
	})
	mux.Handle("POST /consent", srv.AuthenticateHandler(signIn.GetUser))
	ts.Config.Handler = mux
	ts.Start()
	t.Cleanup(ts.Close)

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(u string) *http.Response {
		t.Helper()
		resp, err := browser.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = resp.Body.Close() })
		return resp
	}
	resp := get(base + "/authorize?" + url.Values{
		"response_type": {"code"}, "client_id": {"app"}, "redirect_uri": {redirect}, "state": {"s1"},
		"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGEzHHTfLo"}, "code_challenge_method": {"S256"},
	}.Encode())
	consentURL := resp.Header.Get("Location")
	// Sign in: /login → the provider (auto-approves) → /login/callback →
	// back to the consent page.
	next := base + "/login?" + url.Values{ReturnToParam: {strings.TrimPrefix(consentURL, base)}}.Encode()
	for range 3 {
		next = get(next).Header.Get("Location")
		if !strings.HasPrefix(next, "http") {
			next = base + next
		}
	}
	if next != consentURL {
		t.Fatalf("the sign-in came back to %q, want the consent page %q", next, consentURL)
	}
	var pending mcpoauth.PendingAuthorization
	if err := json.NewDecoder(get(consentURL).Body).Decode(&pending); err != nil {
		t.Fatal(err)
	}
	resp, err = browser.PostForm(base+"/consent", url.Values{
		mcpoauth.FormRequestID: {pending.RequestID}, mcpoauth.FormCSRFToken: {pending.CSRFToken}, mcpoauth.FormDecision: {mcpoauth.DecisionApprove},
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc.String(), redirect) ||
		loc.Query().Get("error") != "access_denied" || loc.Query().Get("code") != "" || loc.Query().Get("state") != "s1" {
		t.Fatalf("decision: %d %s; want 303 to the client with error=access_denied", resp.StatusCode, loc)
	}
	if grants, _ := model.ListUserGrants(context.Background(), p.URL()+"#"+upstreamtest.DefaultUser.Subject); len(grants) != 0 {
		t.Fatalf("a refused user got %d grants", len(grants))
	}
}
