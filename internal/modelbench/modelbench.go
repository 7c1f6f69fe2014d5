// Package modelbench runs the same server benchmarks on any Model, so
// that the memory, SQLite and PostgreSQL models compare in one table
// (docs/performance.md): each Model's package calls Run from a Benchmark
// of its own, since the nested modules cannot be imported from one place.
//
// It is benchmark plumbing, like benchapp, whose deployment it drives in
// process (no network).
package modelbench

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/internal/benchapp"
)

// verifyTokens is how many access tokens the verification benchmark
// verifies in turn.
const verifyTokens = 1024

// Run runs, as sub-benchmarks of b, per call on the model newModel returns
// (a fresh one for each):
//
//   - Verify: the verification behind every protected request
//     (OAuthServer.VerifyAccessToken: digest, GetToken, AuthInfo), over
//     1,024 tokens in turn;
//   - ClientCredentials: POST /token of a client_credentials grant
//     (client authentication, one token saved);
//   - Login: a full authorization-code login, GET /authorize, the
//     consent approval and POST /token (a request saved and consumed, a
//     code saved and redeemed with two tokens).
func Run(b *testing.B, newModel func(b *testing.B) mcpoauth.Model) {
	b.Run("Verify", func(b *testing.B) {
		d := newDriver(b, newModel(b))
		h := basicHeader(d.register(benchapp.ConfidentialClientJSON))
		tokens := make([]string, verifyTokens)
		for i := range tokens {
			tokens[i] = d.accessToken(d.post("/token", h, benchapp.ClientCredentialsForm, http.StatusOK))
		}
		ctx := context.Background()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := d.app.Server.VerifyAccessToken(ctx, tokens[i%verifyTokens]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("ClientCredentials", func(b *testing.B) {
		d := newDriver(b, newModel(b))
		h := basicHeader(d.register(benchapp.ConfidentialClientJSON))
		b.ReportAllocs()
		for b.Loop() {
			d.post("/token", h, benchapp.ClientCredentialsForm, http.StatusOK)
		}
	})
	b.Run("Login", func(b *testing.B) {
		d := newDriver(b, newModel(b))
		client, _ := d.register(benchapp.PublicClientJSON)
		authorize := "/authorize?" + d.app.AuthorizeQuery(client)
		b.ReportAllocs()
		for b.Loop() {
			d.login(client, authorize)
		}
	})
}

// driver serves requests through a benchapp deployment.
type driver struct {
	tb  testing.TB
	app *benchapp.App
}

func newDriver(tb testing.TB, model mcpoauth.Model) *driver {
	tb.Helper()
	app, err := benchapp.New("http://127.0.0.1:8080", model)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = app.Close() })
	return &driver{tb: tb, app: app}
}

var (
	formHeader = http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	jsonHeader = http.Header{"Content-Type": {"application/json"}}
)

// serve runs one request and fails the benchmark unless it answers code.
func (d *driver) serve(method, target string, header http.Header, body string, code int) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	r.RemoteAddr = "127.0.0.1:40000"
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	d.app.Handler.ServeHTTP(w, r)
	if w.Code != code {
		d.tb.Fatalf("%s %s: status %d, want %d: %s", method, target, w.Code, code, w.Body)
	}
	return w
}

func (d *driver) post(target string, header http.Header, body string, code int) *httptest.ResponseRecorder {
	return d.serve(http.MethodPost, target, header, body, code)
}

// register registers a client and returns its id and secret.
func (d *driver) register(body string) (id, secret string) {
	w := d.post("/register", jsonHeader, body, http.StatusCreated)
	var out struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		d.tb.Fatal(err)
	}
	return out.ClientID, out.ClientSecret
}

// accessToken returns the access_token of a token response.
func (d *driver) accessToken(w *httptest.ResponseRecorder) string {
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out.AccessToken == "" {
		d.tb.Fatalf("not a token response: %s", w.Body)
	}
	return out.AccessToken
}

// basicHeader is the token request header of a client_secret_basic client.
func basicHeader(id, secret string) http.Header {
	cred := base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id) + ":" + url.QueryEscape(secret)))
	return http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Authorization": {"Basic " + cred}}
}

// login runs authorize → consent (auto-approved) → token.
func (d *driver) login(clientID, authorizeTarget string) {
	w := d.serve(http.MethodGet, authorizeTarget, nil, "", http.StatusFound)
	consent, err := url.Parse(w.Header().Get("Location"))
	if err != nil {
		d.tb.Fatal(err)
	}
	cookie, _, _ := strings.Cut(w.Header().Get("Set-Cookie"), ";")
	w = d.post("/consent", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Cookie": {cookie}},
		consent.RawQuery, http.StatusSeeOther)
	back, err := url.Parse(w.Header().Get("Location"))
	if err != nil {
		d.tb.Fatal(err)
	}
	d.post("/token", formHeader, d.app.ExchangeForm(clientID, back.Query().Get("code")), http.StatusOK)
}
