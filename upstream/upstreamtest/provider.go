// Package upstreamtest is a fake OpenID provider for tests of code that
// signs users in through package upstream: discovery, a JWKS, an authorize
// endpoint that approves at once (it redirects back to the redirect_uri
// with a code, as if the user had signed in and consented), and a token
// endpoint that checks the client, the code, the redirect URI and the PKCE
// verifier and answers an ES256 ID token.
//
// It is also a plain OAuth 2 provider without OpenID Connect, GitHub-style
// (see OAuth2AuthURL): no nonce, no ID token, and a user-info endpoint
// that answers who the access token's user is.
//
// Its token endpoint also issues refresh tokens and answers the
// refresh_token grant, rotating the refresh token each time (the old one
// is refused after use, as providers with reuse detection do); it counts
// the refreshes (Refreshes), can hold them until a test releases them
// (HoldRefreshes), and can fail them (FailRefreshes), so tests can check
// that a client refreshes once however many callers race. An OpenID
// user-info endpoint is published by discovery.
//
// It is for the cases a real provider cannot produce (a wrong nonce, a bad
// signature, an expired ID token) and for tests that need an upstream
// without Node; it is not a conformant provider.
package upstreamtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// AccessToken is the upstream access token the token endpoint answers to
// a code; a refresh answers AccessToken + "-" + a number. Every access
// token the provider issues starts with AccessToken.
const AccessToken = "upstream-access"

// RefreshToken starts every refresh token the provider issues.
const RefreshToken = "upstream-refresh"

// Provider is a fake OpenID provider on a loopback httptest server, closed
// when the test ends.
type Provider struct {
	// ClientID and ClientSecret are the one client the provider knows;
	// its token endpoint refuses any other (client_secret_basic or
	// client_secret_post). A test may change them before the first
	// request.
	ClientID     string
	ClientSecret string

	t   testing.TB
	srv *httptest.Server
	key *ecdsa.PrivateKey

	mu      sync.Mutex
	user    User
	idToken func(claims map[string]any)
	forger  *ecdsa.PrivateKey
	codes   map[string]authorizeRequest
	// userInfo, userInfoStatus: the user-info endpoints' answer, if set.
	userInfo       map[string]any
	userInfoStatus int
	// issued counts the tokens issued, for unique values; accessTokens
	// and refreshTokens are the valid ones.
	issued        int
	accessTokens  map[string]bool
	refreshTokens map[string]bool
	refreshes     int
	lifetime      time.Duration
	failRefresh   bool
	// hold, if set, makes refresh requests wait until it is closed;
	// arrived receives once per held request.
	hold    chan struct{}
	arrived chan struct{}
}

// User is who the provider signs in: the claims of the ID tokens it
// issues.
type User struct {
	Subject       string
	Email         string
	EmailVerified bool
	Name          string
}

type authorizeRequest struct {
	nonce, challenge, clientID, redirectURI string
	// plain: asked at the plain OAuth 2 authorize endpoint, answered
	// without an ID token.
	plain bool
}

// DefaultUser is the user a new Provider signs in.
var DefaultUser = User{Subject: "alice-123", Email: "alice@example.com", EmailVerified: true, Name: "Alice"}

// NewProvider starts a provider signing in DefaultUser, with client ID
// "mcp-server" and a random client secret.
func NewProvider(t testing.TB) *Provider {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p := &Provider{
		ClientID:      "mcp-server",
		ClientSecret:  rand.Text(),
		t:             t,
		key:           key,
		user:          DefaultUser,
		codes:         map[string]authorizeRequest{},
		accessTokens:  map[string]bool{},
		refreshTokens: map[string]bool{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) { p.authorize(w, r, false) })
	mux.HandleFunc("GET /oauth/authorize", func(w http.ResponseWriter, r *http.Request) { p.authorize(w, r, true) })
	mux.HandleFunc("POST /token", p.token)
	mux.HandleFunc("GET /user", p.userInfoEndpoint)
	mux.HandleFunc("GET /userinfo", p.oidcUserInfoEndpoint)
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

// URL is the provider's issuer URL (no trailing slash).
func (p *Provider) URL() string { return p.srv.URL }

// OAuth2AuthURL is the plain OAuth 2 authorization endpoint: it asks for
// neither a nonce nor the openid scope, and its codes are answered at
// TokenURL without an ID token.
func (p *Provider) OAuth2AuthURL() string { return p.srv.URL + "/oauth/authorize" }

// TokenURL is the token endpoint.
func (p *Provider) TokenURL() string { return p.srv.URL + "/token" }

// UserInfoURL is the GitHub-style user-info endpoint: GET with the access
// token as a Bearer token, it answers the user as a JSON object
// {"id", "login", "email", "name"} (id the user's Subject), or what
// SetUserInfo set.
func (p *Provider) UserInfoURL() string { return p.srv.URL + "/user" }

// SetUserInfo makes the user-info endpoint answer status with info as its
// JSON body (a numeric id, a missing id, an error); status 0 restores the
// default answer.
func (p *Provider) SetUserInfo(status int, info map[string]any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.userInfoStatus, p.userInfo = status, info
}

func (p *Provider) userInfoEndpoint(w http.ResponseWriter, r *http.Request) {
	user, status, info, ok := p.userInfoAnswer(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Bad credentials"})
		return
	}
	if status == 0 {
		status = http.StatusOK
		info = map[string]any{"id": user.Subject, "login": strings.SplitN(user.Email, "@", 2)[0], "email": user.Email, "name": user.Name}
	}
	writeJSON(w, status, info)
}

// OIDCUserInfoURL is the OpenID Connect user-info endpoint (the
// discovered userinfo_endpoint): GET with a valid access token, it answers
// the user's claims {"sub", "email", "email_verified", "name"}, or what
// SetUserInfo set.
func (p *Provider) OIDCUserInfoURL() string { return p.srv.URL + "/userinfo" }

func (p *Provider) oidcUserInfoEndpoint(w http.ResponseWriter, r *http.Request) {
	user, status, info, ok := p.userInfoAnswer(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if status == 0 {
		status = http.StatusOK
		info = map[string]any{"sub": user.Subject, "email": user.Email, "email_verified": user.EmailVerified, "name": user.Name}
	}
	writeJSON(w, status, info)
}

// userInfoAnswer checks the request's access token and returns the user
// and the answer SetUserInfo set (status 0: none).
func (p *Provider) userInfoAnswer(r *http.Request) (user User, status int, info map[string]any, ok bool) {
	token, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	p.mu.Lock()
	defer p.mu.Unlock()
	if !found || !p.accessTokens[token] {
		return User{}, 0, nil, false
	}
	return p.user, p.userInfoStatus, p.userInfo, true
}

// ExpireAccessTokens makes every access token issued so far invalid at the
// user-info endpoints, as if it had expired or been revoked.
func (p *Provider) ExpireAccessTokens() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.accessTokens)
}

// SetTokenLifetime sets the expires_in of the access tokens issued from now
// on; 0 restores the default (an hour; none for a plain OAuth 2 code).
func (p *Provider) SetTokenLifetime(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lifetime = d
}

// Refreshes is how many refresh_token grant requests the token endpoint
// has received (answered or not).
func (p *Provider) Refreshes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refreshes
}

// FailRefreshes makes the refresh_token grant fail with invalid_grant (an
// error_description that echoes the refresh token, as a careless provider
// might) while on is true.
func (p *Provider) FailRefreshes(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failRefresh = on
}

// HoldRefreshes makes refresh requests wait, once counted, until release
// is called; arrived receives once for each request held. release is
// idempotent, and called when the test ends.
func (p *Provider) HoldRefreshes() (arrived <-chan struct{}, release func()) {
	hold, arr := make(chan struct{}), make(chan struct{}, 1000)
	p.mu.Lock()
	p.hold, p.arrived = hold, arr
	p.mu.Unlock()
	var once sync.Once
	release = func() {
		once.Do(func() {
			p.mu.Lock()
			p.hold, p.arrived = nil, nil
			p.mu.Unlock()
			close(hold)
		})
	}
	p.t.Cleanup(release)
	return arr, release
}

// SetUser sets who the provider signs in from now on.
func (p *Provider) SetUser(u User) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.user = u
}

// ModifyIDToken sets f to change the claims of every ID token before it
// is signed (a wrong nonce, aud or iss, an expired exp); nil stops it.
func (p *Provider) ModifyIDToken(f func(claims map[string]any)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.idToken = f
}

// SignWith makes the provider sign ID tokens with key instead of the key
// it publishes (a forged signature, under the published key ID); nil
// restores the published key.
func (p *Provider) SignWith(key *ecdsa.PrivateKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.forger = key
}

func (p *Provider) discovery(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                p.srv.URL,
		"authorization_endpoint":                p.srv.URL + "/authorize",
		"token_endpoint":                        p.srv.URL + "/token",
		"jwks_uri":                              p.srv.URL + "/jwks",
		"userinfo_endpoint":                     p.srv.URL + "/userinfo",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"ES256"},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
	})
}

// authorize approves every well-formed request at once: it redirects to
// redirect_uri with a code and the state.
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request, plain bool) {
	q := r.URL.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	oidc := q.Get("nonce") != "" && strings.Contains(q.Get("scope"), "openid")
	if q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" ||
		q.Get("state") == "" || (!plain && !oidc) || err != nil || !redirect.IsAbs() || redirect.RawQuery != "" {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	if q.Get("client_id") != p.ClientID {
		http.Error(w, "unknown client", http.StatusBadRequest)
		return
	}
	code := rand.Text()
	p.mu.Lock()
	p.codes[code] = authorizeRequest{q.Get("nonce"), q.Get("code_challenge"), q.Get("client_id"), q.Get("redirect_uri"), plain}
	p.mu.Unlock()
	redirect.RawQuery = url.Values{"code": {code}, "state": {q.Get("state")}}.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	if !p.clientAuthenticated(r) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		p.codeGrant(w, r)
	case "refresh_token":
		p.refreshGrant(w, r)
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
	}
}

// issue records and returns a new access token (AccessToken for a code,
// numbered for a refresh) and refresh token, and the expires_in to
// answer (0: none). Call with mu held.
func (p *Provider) issueLocked(refresh, plain bool) (access, refreshToken string, expiresIn int64) {
	p.issued++
	access = AccessToken
	if refresh {
		access = fmt.Sprintf("%s-%d", AccessToken, p.issued)
	}
	refreshToken = fmt.Sprintf("%s-%d", RefreshToken, p.issued)
	p.accessTokens[access] = true
	p.refreshTokens[refreshToken] = true
	switch {
	case p.lifetime > 0:
		expiresIn = int64(p.lifetime / time.Second)
	case !plain:
		expiresIn = 3600
	}
	return access, refreshToken, expiresIn
}

// refreshGrant answers the refresh_token grant (RFC 6749 §6), rotating
// the refresh token: the one used is refused from now on.
func (p *Provider) refreshGrant(w http.ResponseWriter, r *http.Request) {
	old := r.PostForm.Get("refresh_token")
	p.mu.Lock()
	p.refreshes++
	hold, arrived := p.hold, p.arrived
	p.mu.Unlock()
	if hold != nil {
		arrived <- struct{}{}
		<-hold
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failRefresh || !p.refreshTokens[old] {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant", "error_description": "refresh token " + old + " is not valid"})
		return
	}
	delete(p.refreshTokens, old)
	access, refresh, expiresIn := p.issueLocked(true, false)
	body := map[string]any{"access_token": access, "refresh_token": refresh, "token_type": "Bearer"}
	if expiresIn > 0 {
		body["expires_in"] = expiresIn
	}
	writeJSON(w, http.StatusOK, body)
}

func (p *Provider) codeGrant(w http.ResponseWriter, r *http.Request) {
	code := r.PostForm.Get("code")
	p.mu.Lock()
	req, ok := p.codes[code]
	delete(p.codes, code)
	user, modify, key := p.user, p.idToken, p.key
	if p.forger != nil {
		key = p.forger
	}
	var access, refresh string
	var expiresIn int64
	if ok {
		access, refresh, expiresIn = p.issueLocked(false, req.plain)
	}
	p.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if !ok || req.clientID != p.ClientID || req.redirectURI != r.PostForm.Get("redirect_uri") ||
		base64.RawURLEncoding.EncodeToString(sum[:]) != req.challenge {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
		return
	}
	if req.plain {
		body := map[string]any{"access_token": access, "refresh_token": refresh, "token_type": "bearer", "scope": "read:user"}
		if expiresIn > 0 {
			body["expires_in"] = expiresIn
		}
		writeJSON(w, http.StatusOK, body)
		return
	}
	now := time.Now()
	claims := map[string]any{
		"iss": p.srv.URL, "sub": user.Subject, "aud": req.clientID, "nonce": req.nonce,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"email": user.Email, "email_verified": user.EmailVerified, "name": user.Name,
	}
	if modify != nil {
		modify(claims)
	}
	idToken, err := sign(key, claims)
	if err != nil {
		p.t.Errorf("upstreamtest: signing the ID token: %v", err)
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"access_token": access, "refresh_token": refresh, "token_type": "Bearer", "expires_in": expiresIn, "id_token": idToken})
}

// clientAuthenticated checks client_secret_basic (RFC 6749 §2.3.1: the
// credentials form-encoded before base64) or client_secret_post.
func (p *Provider) clientAuthenticated(r *http.Request) bool {
	id, secret, basic := r.BasicAuth()
	if basic {
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return false
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	return id == p.ClientID && subtle.ConstantTimeCompare([]byte(secret), []byte(p.ClientSecret)) == 1
}

func sign(key *ecdsa.PrivateKey, claims map[string]any) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1").WithType("JWT"))
	if err != nil {
		return "", err
	}
	return jwt.Signed(signer).Claims(claims).Serialize()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
