package handlers

import (
	"net/http"
	"net/url"

	"github.com/mcpoauth/mcpoauth/internal/grants"
	"github.com/mcpoauth/mcpoauth/internal/httpx"
	"github.com/mcpoauth/mcpoauth/internal/oautherr"
	"github.com/mcpoauth/mcpoauth/internal/redirect"
	"github.com/mcpoauth/mcpoauth/internal/secret"
	"github.com/mcpoauth/mcpoauth/record"
)

// The consent flow, in the order a browser goes through it: /authorize
// (authorize.go) sets the browser-binding cookie and stores the request;
// the consent page asks Pending what to show; the page's form posts the
// decision to Authenticate.

// Browser binding: /authorize sets a random cookie and stores its digest with
// the pending request; the consent decision must present the same cookie and
// a CSRF token derived from it. A decision forged in another browser, or
// posted cross-site (the cookie is SameSite=Lax), fails (MCP Security Best
// Practices, consent page).

const (
	browserCookie       = "mcpoauth-browser"
	secureBrowserCookie = "__Host-mcpoauth-browser"
)

// BrowserSecret returns the browser-binding secret the request carries, or
// "" if it has none (or a malformed one).
func BrowserSecret(r *http.Request, secure bool) string {
	name := browserCookie
	if secure {
		name = secureBrowserCookie
	}
	c, err := r.Cookie(name)
	if err != nil || len(c.Value) != 43 {
		return ""
	}
	return c.Value
}

// ensureBrowserSecret returns the request's browser secret, setting a new
// cookie when it has none.
func ensureBrowserSecret(w http.ResponseWriter, r *http.Request, secure bool) string {
	if s := BrowserSecret(r, secure); s != "" {
		return s
	}
	s := secret.New()
	name := browserCookie
	if secure {
		name = secureBrowserCookie
	}
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: s, Path: "/", HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode,
	})
	return s
}

// Pending is what the consent page shows and posts back: the pending
// request, its client, and the form's hidden fields.
type Pending struct {
	RequestID string
	CSRFToken string
	Request   *record.AuthorizationRequest
	Client    *record.Client
}

// PendingConsent looks up the request a consent page was opened for (its
// request_id query parameter), checking that this browser started it, and
// derives the CSRF token the decision form must carry.
func PendingConsent(env *Env, r *http.Request) (*Pending, *oautherr.Error) {
	id := r.URL.Query().Get(ParamRequestID)
	browser := BrowserSecret(r, env.SecureCookies)
	req, client, oerr := env.Grants.PendingRequest(r.Context(), id, browser)
	if oerr != nil {
		return nil, oerr
	}
	return &Pending{RequestID: id, CSRFToken: grants.CSRFToken(browser, id), Request: req, Client: client}, nil
}

// GetUserFunc returns the id of the user signed in on r, or "" (or an error)
// if nobody is. An error wrapping grants.ErrAccessDenied says the user is
// signed in but may not authorize the request. The application owns
// sign-in; the library only asks.
type GetUserFunc func(r *http.Request) (string, error)

// Authenticate receives the user's decision from the consent page: a POST
// (body only, never the query) with request_id, csrf_token and decision
// (approve or deny). It checks the decision comes from the browser that
// started the request, asks getUser who approves, consumes the pending
// request once, and answers 303 to the client's redirect URI with code,
// state and iss, or with error=access_denied (a denial, or a user getUser
// refuses with ErrAccessDenied). Errors about the request itself, and
// nobody signed in, are shown on the error page, never redirected. The body
// may have been parsed by the application already (r.PostForm).
func Authenticate(env *Env, getUser GetUserFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.NoStore(w)
		form, oerr := postForm(w, r)
		if oerr != nil {
			env.showError(w, r, "authenticate", oerr)
			return
		}
		var d grants.Decision
		var decision string
		for _, f := range []struct {
			name string
			dst  *string
		}{{ParamRequestID, &d.RequestID}, {ParamCSRFToken, &d.CSRFToken}, {ParamDecision, &decision}} {
			if *f.dst, oerr = httpx.Param(form, f.name); oerr != nil {
				env.showError(w, r, "authenticate", oerr)
				return
			}
		}
		switch decision {
		case DecisionApprove:
			d.Approve = true
		case DecisionDeny:
		default:
			env.showError(w, r, "authenticate", oautherr.InvalidRequest("decision must be approve or deny"))
			return
		}
		d.BrowserSecret = BrowserSecret(r, env.SecureCookies)
		d.SignIn = func() (string, error) { return getUser(r) }
		d.Identify = env.identify(r)
		decide(env, w, r, "authenticate", d)
	})
}

// decide takes the decision and sends the browser back to the client: 303
// to its redirect URI with code, state and iss, or with the error; errors
// about the request itself go to the error page.
func decide(env *Env, w http.ResponseWriter, r *http.Request, step string, d grants.Decision) {
	out, oerr := env.Grants.Decide(r.Context(), d)
	if oerr != nil {
		env.showError(w, r, step, oerr)
		return
	}
	if out.Err != nil {
		if env.OnError != nil && out.Err.Code != oautherr.CodeAccessDenied {
			env.OnError(r.Context(), step, out.Err)
		}
		redirectError(w, r, env.Issuer, out.RedirectURI, out.State, out.Err)
		return
	}
	// RFC 9700 §4.12: 303 after a POST, never 307 (and after a GET, 303
	// as well: the remembered consent's answer).
	httpx.Redirect(w, redirect.WithQuery(out.RedirectURI, codeResponse(out.Code, env.Issuer, out.State)), http.StatusSeeOther)
}

// codeResponse is the query of a successful authorization response: code,
// iss (RFC 9207) and state when one was sent, encoded and ordered as
// url.Values.Encode would, without building and sorting a map.
func codeResponse(code, issuer, state string) string {
	q := "code=" + url.QueryEscape(code) + "&iss=" + url.QueryEscape(issuer)
	if state != "" {
		q += "&state=" + url.QueryEscape(state)
	}
	return q
}

// ApproveRemembered approves the pending request the consent page r opens
// without showing the page, when the signed-in user approved the same
// client for these scopes (or more) and this resource before
// (grants.Remembered), and reports whether it answered. It answers nothing,
// and returns false, when nobody is signed in, the user is refused, the
// request is unknown or started in another browser, or nothing is
// remembered: the page is shown then, as usual.
//
// Approving on a GET is safe here as it is for any silent re-authorization:
// the request was made by the client at /authorize in this browser (the
// browser binding is checked), its code goes only to the client's
// registered redirect URI, and it is useless without the client's PKCE
// verifier.
func ApproveRemembered(env *Env, w http.ResponseWriter, r *http.Request, getUser GetUserFunc) bool {
	user, err := getUser(r)
	if err != nil || user == "" {
		return false
	}
	p, oerr := PendingConsent(env, r)
	if oerr != nil {
		return false
	}
	ok, err := env.Grants.Remembered(r.Context(), user, p.Request, p.Client)
	if err != nil {
		if env.OnError != nil {
			env.OnError(r.Context(), "authenticate:remembered", oautherr.ServerError(err))
		}
		return false
	}
	if !ok {
		return false
	}
	httpx.NoStore(w)
	decide(env, w, r, "authenticate:remembered", grants.Decision{
		RequestID:     p.RequestID,
		CSRFToken:     p.CSRFToken,
		BrowserSecret: BrowserSecret(r, env.SecureCookies),
		Approve:       true,
		SignIn:        func() (string, error) { return user, nil },
		Identify:      env.identify(r),
	})
	return true
}

// postForm returns the form body of a browser's POST: r.PostForm when a
// middleware or the application parsed it already (the body is then
// consumed), else the strictly parsed body, which it stores in r.PostForm
// and r.Form, so that getUser can read a sign-in field.
func postForm(w http.ResponseWriter, r *http.Request) (url.Values, *oautherr.Error) {
	if r.PostForm != nil {
		return r.PostForm, nil
	}
	form, oerr := httpx.ParseForm(w, r)
	if oerr != nil {
		return nil, oerr
	}
	r.Form, r.PostForm = form, form
	return form, nil
}
