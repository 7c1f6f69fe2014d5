package main

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/upstream"
)

// The "connected apps" page (/account): the signed-in user's grants, each
// with a revoke button. Who is signed in:
//
//   - with -upstream-issuer, the upstream session (signIn.GetUser), the
//     same one the consent page asks;
//   - without, a demo sign-in of this page's own: a user name, no
//     password, kept in a signed cookie. It exists because the consent
//     page's username field signs nobody in (it names the approver of one
//     request), so there is no session to ask. Anyone can sign in as any
//     name and see and revoke that name's apps: a real server asks its own
//     session here.
//
// Every form on the page carries a CSRF token: an HMAC, under a key made at
// start, of the page's session id (a random id in the account cookie) and
// the signed-in user. A cross-site page can neither read it nor, the
// cookie being signed and SameSite=Lax, make one of its own count.

// Form fields and actions of the account page.
const (
	accountFieldAction  = "action"
	accountFieldCSRF    = "csrf_token"
	accountFieldGrantID = "grant_id"
	actionSignIn        = "signin"
	actionSignOut       = "signout"
	actionRevoke        = "revoke"
)

// accountSessionLifetime is how long the account cookie lasts, as the
// upstream sessions do.
const accountSessionLifetime = 8 * time.Hour

// accountPage is the data of templates/account.html.
type accountPage struct {
	// Action is the path the page's forms post to: the page itself.
	Action    string
	CSRFToken string
	// User is who is signed in, as shown (the upstream email when there
	// is one); "" shows the sign-in.
	User string
	// Demo: the demo sign-in (no -upstream-issuer).
	Demo bool
	// SignIn is the upstream sign-in; nil in the demo.
	SignIn *signInView
	// Apps are the user's grants, newest first.
	Apps []connectedApp
	// NoRecords: the Model keeps no grant records, so there is no list.
	NoRecords bool
	// Notice is a fixed message (after a revocation).
	Notice string
	// Field names and actions.
	FieldAction, FieldCSRF, FieldGrantID string
	SignInAction, SignOutAction, Revoke  string
}

// connectedApp is one grant as the page shows it. ClientID, ClientIDHost,
// ClientName, Scopes and Resource feed the "client" and "scopes"
// templates the consent page uses.
type connectedApp struct {
	GrantID      string
	ClientID     string
	ClientIDHost string
	// ClientName is the name the client registered itself: self-asserted,
	// shown HTML-escaped; "" when it gave none or is no longer known.
	ClientName string
	Scopes     []string
	Resource   string
	// Upstream is who the user was at the upstream provider when
	// approving (email, else name, else subject); "" without one.
	Upstream string
	// Created and LastUsed are formatted times; LastUsed "not yet" before
	// the grant first issued tokens.
	Created, LastUsed string
}

// accountHandler serves /account.
type accountHandler struct {
	srv    *mcpoauth.OAuthServer
	path   string
	signIn *upstreamSignIn
	logger *slog.Logger
	// cookieName has the __Host- prefix and secure is set when the
	// issuer is https.
	cookieName string
	secure     bool
	// cookieKey signs the account cookie, csrfKey derives the CSRF
	// tokens; both are random, made at start, so sessions end with the
	// process.
	cookieKey, csrfKey []byte
}

// newAccountHandler serves the connected apps page at path; secure says
// the issuer is https.
func newAccountHandler(srv *mcpoauth.OAuthServer, path string, secure bool, signIn *upstreamSignIn, logger *slog.Logger) *accountHandler {
	h := &accountHandler{srv: srv, path: path, signIn: signIn, logger: logger, secure: secure,
		cookieName: "mcpoauth-account", cookieKey: make([]byte, 32), csrfKey: make([]byte, 32)}
	if secure {
		// __Host-: Secure, Path=/, no Domain, so neither another host nor
		// a plain-http page can plant the cookie.
		h.cookieName = "__Host-" + h.cookieName
	}
	rand.Read(h.cookieKey) // crypto/rand.Read never fails
	rand.Read(h.csrfKey)
	return h
}

func (h *accountHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The headers of the consent page, on every answer (the 303s too).
	setPageHeaders(w.Header(), cspFormActionSelf)
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		h.show(w, r)
	case http.MethodPost:
		h.post(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		renderError(w, http.StatusMethodNotAllowed, "Method not allowed", "The account page accepts GET and POST only.", h.logger, r)
	}
}

// accountSession is the account cookie's content.
type accountSession struct {
	// SID is a random id, new at every sign-in and sign-out: the CSRF
	// tokens are bound to it.
	SID string `json:"sid"`
	// User is the demo sign-in's user name; always "" with an upstream,
	// whose own session says who is signed in.
	User string `json:"user,omitempty"`
	// Exp is when the session ends, in Unix seconds.
	Exp int64 `json:"exp"`
}

// session returns the request's account session; ok is false when there is
// none, or it is forged or expired.
func (h *accountHandler) session(r *http.Request) (accountSession, bool) {
	c, err := r.Cookie(h.cookieName)
	if err != nil {
		return accountSession{}, false
	}
	payload, sig, found := strings.Cut(c.Value, ".")
	if !found {
		return accountSession{}, false
	}
	want := h.mac(h.cookieKey, payload)
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, want) {
		return accountSession{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return accountSession{}, false
	}
	var s accountSession
	if json.Unmarshal(raw, &s) != nil || s.SID == "" || time.Now().Unix() >= s.Exp {
		return accountSession{}, false
	}
	return s, true
}

// startSession sets a new account session, with a new id, for user ("" for
// nobody), and returns it.
func (h *accountHandler) startSession(w http.ResponseWriter, user string) accountSession {
	s := accountSession{SID: rand.Text(), User: user, Exp: time.Now().Add(accountSessionLifetime).Unix()}
	raw, _ := json.Marshal(s) // a struct of strings and an int: cannot fail
	payload := base64.RawURLEncoding.EncodeToString(raw)
	http.SetCookie(w, &http.Cookie{
		Name:     h.cookieName,
		Value:    payload + "." + base64.RawURLEncoding.EncodeToString(h.mac(h.cookieKey, payload)),
		Path:     "/",
		Expires:  time.Unix(s.Exp, 0),
		HttpOnly: true,
		Secure:   h.secure,
		SameSite: http.SameSiteLaxMode,
	})
	return s
}

func (h *accountHandler) mac(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// csrfToken binds the page's forms to the session and the signed-in user.
func (h *accountHandler) csrfToken(s accountSession, user string) string {
	return base64.RawURLEncoding.EncodeToString(h.mac(h.csrfKey, s.SID+"\x00"+user))
}

// user returns who is signed in: the upstream session's user (as GetUser
// answers), or the demo session's. With an upstream, view is the page's
// view of its sign-in, from the same read of the upstream session. refused
// says the upstream provider's user may not use this server
// (Options.Allow).
func (h *accountHandler) user(r *http.Request, s accountSession) (user string, view *signInView, refused bool, err error) {
	if h.signIn == nil {
		return s.User, nil, false, nil
	}
	id, err := h.signIn.Identity(r)
	view = h.signIn.viewOf(r, id, err)
	switch {
	case err == nil:
		return id.UserID(), view, false, nil
	case errors.Is(err, mcpoauth.ErrAccessDenied):
		return "", view, true, nil
	case errors.Is(err, upstream.ErrNoSession):
		return "", view, false, nil
	}
	// The session could not be read (its vault entry).
	return "", view, false, err
}

func (h *accountHandler) show(w http.ResponseWriter, r *http.Request) {
	s, ok := h.session(r)
	if !ok {
		s = h.startSession(w, "")
	}
	user, view, _, err := h.user(r, s)
	if err != nil {
		h.fail(w, r, "account page: sign-in session", err)
		return
	}
	page := accountPage{
		Action:      h.path,
		CSRFToken:   h.csrfToken(s, user),
		User:        user,
		Demo:        h.signIn == nil,
		FieldAction: accountFieldAction, FieldCSRF: accountFieldCSRF, FieldGrantID: accountFieldGrantID,
		SignInAction: actionSignIn, SignOutAction: actionSignOut, Revoke: actionRevoke,
	}
	if view != nil {
		page.SignIn = view // the link back here after signing in
		if view.User != "" {
			page.User = view.User // the email, when the provider gave one
		}
	}
	if r.URL.Query().Get("revoked") == "1" {
		page.Notice = "Access revoked: the app's tokens no longer work, and it must ask you again."
	}
	if user != "" {
		grants, err := h.srv.UserGrants(r.Context(), user)
		switch {
		case errors.Is(err, mcpoauth.ErrNoGrantRecords):
			page.NoRecords = true
		case err != nil:
			h.fail(w, r, "account page: list grants", err)
			return
		}
		for _, g := range grants {
			page.Apps = append(page.Apps, h.app(r, g))
		}
	}
	render(w, http.StatusOK, "account.html", cspFormActionSelf, page, h.logger, r)
}

// app describes a grant for the page, with its client's self-asserted name
// looked up in the Model.
func (h *accountHandler) app(r *http.Request, g *mcpoauth.Grant) connectedApp {
	a := connectedApp{
		GrantID: g.ID, ClientID: g.ClientID, Scopes: g.Scopes, Resource: g.Resource,
		Created: formatTime(g.CreatedAt), LastUsed: "not yet",
	}
	if !g.LastUsedAt.IsZero() {
		a.LastUsed = formatTime(g.LastUsedAt)
	}
	if id := g.Identity; id != nil {
		a.Upstream = id.Email
		if a.Upstream == "" {
			a.Upstream = id.Name
		}
		if a.Upstream == "" {
			a.Upstream = id.Subject
		}
	}
	// A client ID metadata document URL: its host is the one verified
	// fact about the client; Client resolves its document for the name.
	if u, err := url.Parse(g.ClientID); err == nil && u.Scheme == "https" && u.Host != "" {
		a.ClientIDHost = u.Host
	}
	c, err := h.srv.Client(r.Context(), g.ClientID)
	switch {
	case err == nil:
		a.ClientName = c.Metadata.ClientName
	case !errors.Is(err, mcpoauth.ErrNotFound):
		// The list still helps without the name.
		h.logger.LogAttrs(r.Context(), slog.LevelWarn, "account page: get client", slog.Any("error", err))
	}
	return a
}

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// maxAccountFormBytes bounds the body of an account page POST.
const maxAccountFormBytes = 8 << 10

func (h *accountHandler) post(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxAccountFormBytes)
	if err := r.ParseForm(); err != nil {
		renderError(w, http.StatusBadRequest, "Bad request", "The form could not be read.", h.logger, r)
		return
	}
	s, ok := h.session(r)
	if !ok {
		renderError(w, http.StatusForbidden, "Your session has expired", "Open the account page again and retry.", h.logger, r)
		return
	}
	user, _, refused, err := h.user(r, s)
	if err != nil {
		h.fail(w, r, "account page: sign-in session", err)
		return
	}
	// One value of each field: a repeated field is refused, not guessed.
	given := r.PostForm[accountFieldCSRF]
	if len(given) != 1 || !hmac.Equal([]byte(given[0]), []byte(h.csrfToken(s, user))) {
		renderError(w, http.StatusForbidden, "This form has expired",
			"The page was opened in another session, or you signed in or out since. Open the account page again and retry.", h.logger, r)
		return
	}
	switch action := r.PostForm.Get(accountFieldAction); {
	case action == actionSignIn && h.signIn == nil:
		name, err := username(r)
		if err != nil {
			renderError(w, http.StatusBadRequest, "Enter a user name", "Any name of up to 64 printable characters: the one you typed on the consent page.", h.logger, r)
			return
		}
		h.startSession(w, name) // a new id: tokens of the signed-out page stop working
	case action == actionSignOut && h.signIn == nil:
		h.startSession(w, "")
	case action == actionRevoke:
		ids := r.PostForm[accountFieldGrantID]
		if user == "" || refused {
			renderError(w, http.StatusForbidden, "Sign in first", "Sign in to manage your connected apps.", h.logger, r)
			return
		}
		if len(ids) != 1 {
			renderError(w, http.StatusBadRequest, "Bad request", "The form names no app.", h.logger, r)
			return
		}
		// RevokeUserGrant revokes only a grant of this user: the id comes
		// from the browser and must not reach another user's grant.
		if err := h.srv.RevokeUserGrant(r.Context(), user, ids[0]); err != nil {
			if errors.Is(err, mcpoauth.ErrNotFound) {
				renderError(w, http.StatusNotFound, "No such app", "This app is not connected to your account, or its access was already revoked.", h.logger, r)
				return
			}
			h.fail(w, r, "account page: revoke grant", err)
			return
		}
		http.Redirect(w, r, h.path+"?revoked=1", http.StatusSeeOther)
		return
	default:
		renderError(w, http.StatusBadRequest, "Bad request", "Unknown action.", h.logger, r)
		return
	}
	http.Redirect(w, r, h.path, http.StatusSeeOther)
}

// fail logs a failure of the page (never a credential: errors from the
// library and the Model carry none) and answers a fixed 500.
func (h *accountHandler) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	h.logger.LogAttrs(r.Context(), slog.LevelError, what, slog.Any("error", err))
	renderError(w, http.StatusInternalServerError, "Something went wrong", "Your connected apps could not be loaded. Try again later.", h.logger, r)
}
