// Package upstream signs users in at an MCP server through the identity
// provider they already have: it is the relying-party side of OpenID
// Connect, built on github.com/coreos/go-oidc and golang.org/x/oauth2, and
// it supplies the mcpoauth.GetUserFunc that the consent handler asks.
//
// The consent page sends a visitor nobody has signed in to the Login
// handler with return_to set to the page's own URL (with its request_id);
// Login sends the browser to the provider, Callback verifies the answer,
// sets the session cookie and sends the browser back to return_to, where
// GetUser now knows the user.
//
// The session is a cookie, sealed with AES-256-GCM (encrypted and
// authenticated) under Options.CookieKey, not a row in the Model: signing
// in then needs no storage of its own and no sweeping, and a session is
// only an identity with a fixed expiry, which a cookie holds. The cost is
// that a session cannot be revoked at the server before it expires except
// by rotating the key; Logout clears it in the browser.
//
// # Who the user is, with each grant
//
// SignIn.OnApproval is the mcpoauth.Config.OnApproval hook: when the
// signed-in user approves a client, it returns their identity at the
// provider (issuer, subject, email, name and the claims named in
// Options.Claims), which the server stores with the grant and tells tools
// through bearer.AuthInfo.Identity.
//
// # The upstream token vault
//
// With Options.TokenStore (usually the Model, when it is an
// mcpoauth.UpstreamTokenStore such as MemoryModel) and Options.TokenKeys,
// the provider's access and refresh tokens are kept for each grant, so
// that a tool can call the provider's APIs as the user: SignIn.Token
// returns a valid access token of the grant, refreshed at the provider
// when it expired (once, however many requests ask at the same moment,
// and across replicas sharing the store), and SignIn.UserInfo asks the
// provider's user-info endpoint with it. The tokens are sealed
// (AES-256-GCM, under the first TokenKey; any of them opens, which lets
// keys rotate) before they reach the store, never logged, and deleted with
// the grant (RevokeGrant, DeleteClient). The MCP token is never sent
// upstream, and the upstream token must never reach the MCP client.
//
// Callback stores the tokens of a sign-in for the session; OnApproval
// moves them to the grant. They move rather than being copied, so that two
// grants never share, and fight over, one rotating refresh token. Hence a
// session whose tokens went to a grant is over: Identity and GetUser
// report nobody signed in, and approving a second client sends the user
// through the provider's sign-in again (which is usually silent, as the
// user is still signed in at the provider). Logout deletes the session's
// tokens too.
package upstream

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/mcpoauth/mcpoauth"
	"golang.org/x/oauth2"
)

// Defaults of Options.
const (
	DefaultSessionLifetime = 8 * time.Hour
	// loginLifetime bounds a sign-in at the provider: the login cookie
	// (state, nonce, PKCE verifier) is refused after it.
	loginLifetime = 10 * time.Minute
	// refusedLifetime bounds a refused session, so that the user can try
	// another account soon.
	refusedLifetime = 5 * time.Minute
)

// Cookie names, before the __Host- prefix a secure deployment adds.
const (
	sessionCookie = "mcpoauth-session"
	loginCookie   = "mcpoauth-login"
)

// ReturnToParam is the query parameter of the Login handler naming the
// local path (with its query) to come back to after signing in.
const ReturnToParam = "return_to"

// Options configure an OpenID Connect provider as the sign-in step.
type Options struct {
	// Issuer is the provider's issuer URL; its configuration is read from
	// Issuer + "/.well-known/openid-configuration" (OpenID Connect
	// Discovery 1.0).
	Issuer string
	// ClientID and ClientSecret are this server's registration at the
	// provider.
	ClientID     string
	ClientSecret string
	// Scopes asked of the provider; "openid" is always added. Default:
	// openid, email and profile.
	Scopes []string
	// RedirectURL is where the Callback handler is mounted, as registered
	// at the provider. When it is https, the cookies are Secure and take
	// the __Host- prefix.
	RedirectURL string
	// CookieKey is the 32-byte AES-256 key sealing the login and session
	// cookies. Keep it secret; changing it signs everybody out.
	CookieKey []byte
	// SessionLifetime is how long a session lasts, from sign-in; it is not
	// extended by use. Default DefaultSessionLifetime.
	SessionLifetime time.Duration
	// Allow decides which of the provider's users may sign in (a domain, a
	// claim, a group); nil allows all of them. A refused user's session
	// makes GetUser return an error wrapping mcpoauth.ErrAccessDenied, so
	// the pending authorization ends with access_denied at the client.
	Allow func(ctx context.Context, id Identity) error
	// HTTPClient makes the requests to the provider. Default
	// http.DefaultClient.
	HTTPClient *http.Client
	// Logger receives sign-in failures (never a token). Default
	// slog.Default().
	Logger *slog.Logger

	// Claims names further claims of the ID token (NewOIDC) or of the
	// user-info answer (NewOAuth2) to keep in the session and store with
	// each grant (mcpoauth.Identity.Claims), such as "groups" or "hd".
	// They ride in the session cookie, which must stay under 4 KB: keep
	// them few and small.
	Claims []string
	// TokenStore, if set, keeps the upstream token vault (see the package
	// documentation): usually the Model. Nil: no vault; the provider's
	// tokens are dropped after sign-in.
	TokenStore mcpoauth.UpstreamTokenStore
	// TokenKeys seal the vault's entries, required with TokenStore: the
	// first seals, all of them open. To rotate, put a new key first and
	// keep the old ones until every entry they sealed is gone (the longest
	// grant lifetime); an entry read with an old key is sealed anew under
	// the first.
	TokenKeys []TokenKey
}

// Identity is who the provider says the user is: from the verified ID
// token (NewOIDC) or from the user-info endpoint (NewOAuth2).
type Identity struct {
	Issuer  string `json:"iss"`
	Subject string `json:"sub"`
	Email   string `json:"email,omitempty"`
	// EmailVerified is the provider's email_verified claim: an Allow hook
	// matching on the email's domain should require it.
	EmailVerified bool   `json:"email_verified,omitempty"`
	Name          string `json:"name,omitempty"`
	// Claims are all the ID token's claims (NewOIDC; completed with the
	// user-info members the ID token lacks, when it names no email) or
	// the user-info members (NewOAuth2), for Allow to read (groups, hd,
	// tid, login).
	// Only those named in Options.Claims are kept in the session.
	Claims map[string]any `json:"-"`
}

// UserID is the user's id at the MCP server: Issuer + "#" + Subject. It is
// stable (OpenID Connect Core §5.7: iss and sub together are the only
// stable identifier of a user) and unambiguous, since an issuer has no
// fragment (OpenID Connect Discovery §3).
func (id Identity) UserID() string {
	return id.Issuer + "#" + id.Subject
}

// SignIn is an upstream provider as the sign-in step of the consent page.
type SignIn struct {
	oauth oauth2.Config
	// nonce: Login sends a nonce (OpenID Connect), which identify checks.
	nonce bool
	// identify finds who signed in from the token response: by the ID
	// token (NewOIDC) or the user-info endpoint (NewOAuth2). nonce is the
	// login's.
	identify func(ctx context.Context, token *oauth2.Token, nonce string) (Identity, *failure)
	// userInfo asks the provider's user-info endpoint with the token, and
	// returns the answer and the subject it names.
	userInfo func(ctx context.Context, token *oauth2.Token) (info map[string]any, subject string, err error)
	cookies  *sealer
	lifetime time.Duration
	allow    func(context.Context, Identity) error
	client   *http.Client
	log      *slog.Logger
	// claims are the names of Options.Claims.
	claims []string
	// vault keeps the upstream tokens; nil without Options.TokenStore.
	vault *vault
}

// NewOIDC reads the provider's configuration by discovery and returns the
// sign-in step through it.
func NewOIDC(ctx context.Context, opts Options) (*SignIn, error) {
	if opts.Issuer == "" || opts.ClientID == "" || opts.RedirectURL == "" {
		return nil, errors.New("upstream: Issuer, ClientID and RedirectURL are required")
	}
	s, err := newBase(opts)
	if err != nil {
		return nil, err
	}
	provider, err := oidc.NewProvider(s.clientContext(ctx), opts.Issuer)
	if err != nil {
		return nil, fmt.Errorf("upstream: discovery of %s: %w", opts.Issuer, err)
	}
	scopes := opts.Scopes
	if len(scopes) == 0 {
		scopes = []string{"email", "profile"}
	}
	scopes = append([]string{oidc.ScopeOpenID}, scopes...)
	s.oauth.Endpoint = provider.Endpoint()
	s.oauth.Scopes = dedupe(scopes)
	// Verify checks the signature (keys from the provider's jwks_uri), iss,
	// aud (our client id) and exp; identifyByIDToken checks the nonce.
	verifier := provider.Verifier(&oidc.Config{ClientID: opts.ClientID})
	s.nonce = true
	client := s.client
	s.userInfo = func(ctx context.Context, token *oauth2.Token) (map[string]any, string, error) {
		return oidcUserInfo(ctx, client, provider, token)
	}
	s.identify = func(ctx context.Context, token *oauth2.Token, nonce string) (Identity, *failure) {
		id, f := identifyByIDToken(ctx, verifier, token, nonce)
		if f != nil || id.Email != "" || provider.UserInfoEndpoint() == "" {
			return id, f
		}
		// OpenID Connect Core §5.4: a provider may put the profile and
		// email claims in the user-info answer only, not in the ID token
		// of the code flow (node-oidc-provider does by default). Without
		// them Allow could not match on the email's domain.
		return withUserInfo(ctx, id, token, s.userInfo), nil
	}
	return s, nil
}

// withUserInfo completes an identity from the ID token with the claims of
// the user-info answer it lacks (email, email_verified, name, and any
// other claim). A user-info answer about another subject is ignored (OpenID
// Connect Core §5.3.2: its sub must match the ID token's), and so is a
// failed request: the ID token alone identifies the user.
func withUserInfo(ctx context.Context, id Identity, token *oauth2.Token, userInfo func(context.Context, *oauth2.Token) (map[string]any, string, error)) Identity {
	info, sub, err := userInfo(ctx, token)
	if err != nil || sub != id.Subject {
		return id
	}
	if v, ok := info["email"].(string); ok {
		// The ID token vouched for no email (that is why user-info is
		// asked): whether this one is verified is user-info's to say
		// alone, and unverified unless it says so, never the ID token's
		// email_verified, which spoke of no address.
		id.Email = v
		id.EmailVerified, _ = info["email_verified"].(bool)
	}
	if v, ok := info["name"].(string); ok && id.Name == "" {
		id.Name = v
	}
	if id.Claims == nil {
		id.Claims = make(map[string]any, len(info))
	}
	for k, v := range info {
		if _, ok := id.Claims[k]; !ok {
			id.Claims[k] = v
		}
	}
	return id
}

// newBase checks and applies the options NewOIDC and NewOAuth2 share
// (NewOAuth2 passes its own as Options); the caller sets oauth's Endpoint
// and Scopes, nonce, identify and userInfo.
func newBase(o Options) (*SignIn, error) {
	redirect, err := url.Parse(o.RedirectURL)
	if err != nil || (redirect.Scheme != "https" && redirect.Scheme != "http") || redirect.Host == "" {
		return nil, fmt.Errorf("upstream: RedirectURL %q is not an absolute http(s) URL", o.RedirectURL)
	}
	cookies, err := newSealer(o.CookieKey, redirect.Scheme == "https")
	if err != nil {
		return nil, err
	}
	s := &SignIn{
		oauth:   oauth2.Config{ClientID: o.ClientID, ClientSecret: o.ClientSecret, RedirectURL: o.RedirectURL},
		cookies: cookies, lifetime: o.SessionLifetime, allow: o.Allow, client: o.HTTPClient, log: o.Logger, claims: dedupe(o.Claims),
	}
	if s.lifetime <= 0 {
		s.lifetime = DefaultSessionLifetime
	}
	if s.client == nil {
		s.client = http.DefaultClient
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.vault, err = newVault(o.TokenStore, o.TokenKeys, s.log); err != nil {
		return nil, err
	}
	return s, nil
}

// failure is why a sign-in failed at the identify step: the status to
// answer, a short public reason, and the logged cause (never a token).
type failure struct {
	status int
	what   string
	err    error
}

// identifyByIDToken verifies the ID token of the token response
// (signature, iss, aud, exp, nonce) and reads the identity from it.
func identifyByIDToken(ctx context.Context, verifier *oidc.IDTokenVerifier, token *oauth2.Token, nonce string) (Identity, *failure) {
	raw, _ := token.Extra("id_token").(string)
	if raw == "" {
		return Identity{}, &failure{http.StatusBadGateway, "no id_token in the token response", nil}
	}
	idToken, err := verifier.Verify(ctx, raw)
	if err != nil {
		return Identity{}, &failure{http.StatusBadGateway, "ID token verification", err}
	}
	if subtle.ConstantTimeCompare([]byte(idToken.Nonce), []byte(nonce)) != 1 {
		return Identity{}, &failure{http.StatusBadGateway, "ID token nonce mismatch", nil}
	}
	id := Identity{Issuer: idToken.Issuer, Subject: idToken.Subject}
	if err := idToken.Claims(&id); err != nil {
		return Identity{}, &failure{http.StatusBadGateway, "ID token claims", err}
	}
	if err := idToken.Claims(&id.Claims); err != nil {
		return Identity{}, &failure{http.StatusBadGateway, "ID token claims", err}
	}
	return id, nil
}

func (s *SignIn) clientContext(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, s.client)
}

// login is the login cookie: what Callback needs to check the provider's
// answer.
type login struct {
	State    string    `json:"state"`
	Nonce    string    `json:"nonce,omitempty"`
	Verifier string    `json:"verifier"`
	ReturnTo string    `json:"return_to"`
	Expires  time.Time `json:"exp"`
}

// session is the session cookie.
type session struct {
	Identity
	// Kept are the claims named in Options.Claims.
	Kept map[string]any `json:"claims,omitempty"`
	// Vault is the ID of the session's entry in the token vault, with one.
	Vault string `json:"vault,omitempty"`
	// Refused: Allow refused this identity.
	Refused bool      `json:"refused,omitempty"`
	Expires time.Time `json:"exp"`
}

// Login starts signing in at the provider (GET, with return_to: a local
// path such as the consent page's URL, default "/"). It sends the browser
// to the provider's authorization endpoint with a fresh state, PKCE S256
// challenge and (OpenID Connect) nonce, kept in a sealed cookie for Callback. A return_to
// that is not a local path is refused, so the handler is no open redirect.
func (s *SignIn) Login() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		returnTo := r.URL.Query().Get(ReturnToParam)
		if returnTo == "" {
			returnTo = "/"
		}
		if !localPath(returnTo) {
			http.Error(w, "return_to must be a path on this server", http.StatusBadRequest)
			return
		}
		l := login{
			State:    randomString(),
			Verifier: oauth2.GenerateVerifier(),
			ReturnTo: returnTo,
			Expires:  time.Now().Add(loginLifetime),
		}
		opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(l.Verifier)}
		if s.nonce {
			l.Nonce = randomString()
			opts = append(opts, oidc.Nonce(l.Nonce))
		}
		if err := s.cookies.set(w, loginCookie, l, l.Expires); err != nil {
			s.fail(w, r, http.StatusInternalServerError, "login cookie", err)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, s.oauth.AuthCodeURL(l.State, opts...), http.StatusFound)
	})
}

// Callback receives the provider's answer at Options.RedirectURL. It checks
// the state against the login cookie, exchanges the code with the PKCE
// verifier, finds who signed in (NewOIDC: verifies the ID token's
// signature, iss, aud, exp and nonce; NewOAuth2: asks the user-info
// endpoint with the access token), asks Allow, sets the session cookie and sends the browser back to return_to.
func (s *SignIn) Callback() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var l login
		err := s.cookies.open(r, loginCookie, &l)
		// One answer per login: the cookie goes whatever happens next.
		s.cookies.clear(w, loginCookie)
		w.Header().Set("Cache-Control", "no-store")
		q := r.URL.Query()
		if err != nil || time.Now().After(l.Expires) {
			s.fail(w, r, http.StatusBadRequest, "no sign-in under way (or it expired)", err)
			return
		}
		if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(l.State)) != 1 {
			s.fail(w, r, http.StatusBadRequest, "state mismatch", nil)
			return
		}
		if e := q.Get("error"); e != "" {
			// RFC 6749 §4.1.2.1: the provider refused (the user said no).
			s.fail(w, r, http.StatusForbidden, "the identity provider refused the sign-in", errors.New(e))
			return
		}
		ctx := s.clientContext(r.Context())
		token, err := s.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(l.Verifier))
		if err != nil {
			s.fail(w, r, http.StatusBadGateway, "code exchange", errWithoutToken(err))
			return
		}
		id, f := s.identify(ctx, token, l.Nonce)
		if f != nil {
			s.fail(w, r, f.status, f.what, f.err)
			return
		}
		sess := session{Identity: id, Kept: s.keptClaims(id), Expires: time.Now().Add(s.lifetime)}
		if s.allow != nil {
			if err := s.allow(r.Context(), id); err != nil {
				s.log.InfoContext(r.Context(), "upstream sign-in refused by Allow", "user", id.UserID(), "reason", err.Error())
				sess = session{Identity: id, Refused: true, Expires: time.Now().Add(refusedLifetime)}
			}
		}
		if s.vault != nil {
			// A new sign-in replaces the browser's session: its tokens go.
			s.dropVaultEntry(r)
			if !sess.Refused {
				if sess.Vault, err = s.vault.saveSession(r.Context(), payloadOf(token, id.Subject), sess.Expires); err != nil {
					s.fail(w, r, http.StatusInternalServerError, "token vault", err)
					return
				}
			}
		}
		if err := s.cookies.set(w, sessionCookie, sess, sess.Expires); err != nil {
			if sess.Vault != "" {
				s.vault.drop(r.Context(), sess.Vault)
			}
			s.fail(w, r, http.StatusInternalServerError, "session cookie", err)
			return
		}
		http.Redirect(w, r, l.ReturnTo, http.StatusSeeOther)
	})
}

// keptClaims are the claims of id named in Options.Claims.
func (s *SignIn) keptClaims(id Identity) map[string]any {
	var kept map[string]any
	for _, name := range s.claims {
		if v, ok := id.Claims[name]; ok {
			if kept == nil {
				kept = map[string]any{}
			}
			kept[name] = v
		}
	}
	return kept
}

// ErrNoSession is Identity's error when nobody is signed in: no session
// cookie, or one expired or tampered with, or, with a token vault, one
// whose upstream tokens went to a grant (OnApproval). Identity's other
// errors are a refused user (mcpoauth.ErrAccessDenied) or a failure to
// read the session's vault entry, which a page answers with a 500.
var ErrNoSession = errNoCookie

// Identity returns the signed-in user's identity (with only the Claims
// named in Options.Claims), or ErrNoSession if nobody is signed in; an
// error wrapping mcpoauth.ErrAccessDenied says Allow refused the user.
func (s *SignIn) Identity(r *http.Request) (Identity, error) {
	sess, err := s.session(r)
	if err != nil {
		return Identity{}, err
	}
	id := sess.Identity
	id.Claims = sess.Kept
	return id, nil
}

// session returns the request's session: errNoCookie if there is none
// (or it expired, or its vault entry is gone), an error wrapping
// mcpoauth.ErrAccessDenied if Allow refused its user.
func (s *SignIn) session(r *http.Request) (session, error) {
	var sess session
	if err := s.cookies.open(r, sessionCookie, &sess); err != nil {
		return session{}, err
	}
	if !time.Now().Before(sess.Expires) {
		return session{}, errNoCookie
	}
	if sess.Refused {
		return session{}, fmt.Errorf("upstream: %s may not sign in: %w", sess.UserID(), mcpoauth.ErrAccessDenied)
	}
	if s.vault != nil {
		if sess.Vault == "" {
			return session{}, errNoCookie // signed in before the vault was configured
		}
		ok, err := s.vault.exists(r.Context(), sess.Vault)
		if err != nil {
			return session{}, err
		}
		if !ok {
			return session{}, errNoCookie
		}
	}
	return sess, nil
}

// dropVaultEntry deletes the vault entry of the request's session, if any.
func (s *SignIn) dropVaultEntry(r *http.Request) {
	var sess session
	if s.vault != nil && s.cookies.open(r, sessionCookie, &sess) == nil && sess.Vault != "" {
		s.vault.drop(r.Context(), sess.Vault)
	}
}

// GetUser is the mcpoauth.GetUserFunc for the consent handler: the
// signed-in user's Identity.UserID, "" when nobody is signed in, or an
// error wrapping mcpoauth.ErrAccessDenied when Allow refused the user.
func (s *SignIn) GetUser(r *http.Request) (string, error) {
	id, err := s.Identity(r)
	if errors.Is(err, ErrNoSession) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return id.UserID(), nil
}

var _ mcpoauth.GetUserFunc = (*SignIn)(nil).GetUser

// Logout clears the session (POST, so that a cross-site link or image
// cannot sign the user out), deletes its upstream tokens from the vault,
// and sends the browser to return_to (a local path, default "/").
func (s *SignIn) Logout() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		returnTo := r.FormValue(ReturnToParam)
		if returnTo == "" || !localPath(returnTo) {
			returnTo = "/"
		}
		s.dropVaultEntry(r)
		s.cookies.clear(w, sessionCookie)
		http.Redirect(w, r, returnTo, http.StatusSeeOther)
	})
}

// fail logs why a sign-in failed (err never carries a token) and answers
// with a plain message that says no more than the status.
func (s *SignIn) fail(w http.ResponseWriter, r *http.Request, status int, what string, err error) {
	attrs := []any{"reason", what}
	if err != nil {
		attrs = append(attrs, "err", err.Error())
	}
	s.log.WarnContext(r.Context(), "upstream sign-in failed", attrs...)
	http.Error(w, "sign-in failed: "+what, status)
}

// errWithoutToken keeps of an exchange error only what carries no secret:
// an oauth2.RetrieveError's body may echo what was sent.
func errWithoutToken(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.ErrorCode != "" {
			return fmt.Errorf("token endpoint answered %s", re.ErrorCode)
		}
		if re.Response != nil {
			return fmt.Errorf("token endpoint answered HTTP %d", re.Response.StatusCode)
		}
	}
	return err
}

// localPath reports whether p is a path on this server: it starts with one
// "/" and is not "//host" or "/\host" (which browsers read as another
// host), and has no scheme, host or control characters.
func localPath(p string) bool {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return false
	}
	for _, c := range p {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	u, err := url.Parse(p)
	return err == nil && u.Scheme == "" && u.Host == "" && u.User == nil
}

func randomString() string {
	return base64.RawURLEncoding.EncodeToString(randomBytes(32))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func dedupe(xs []string) []string {
	seen := map[string]bool{}
	out := xs[:0:0]
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
