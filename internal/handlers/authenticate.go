package handlers

import (
	"net/http"
	"net/url"

	"github.com/mcpoauth/mcpoauth/internal/grants"
	"github.com/mcpoauth/mcpoauth/internal/httpx"
	"github.com/mcpoauth/mcpoauth/internal/oautherr"
	"github.com/mcpoauth/mcpoauth/internal/redirect"
)

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
		out, oerr := env.Grants.Decide(r.Context(), d)
		if oerr != nil {
			env.showError(w, r, "authenticate", oerr)
			return
		}
		if out.Err != nil {
			if env.OnError != nil && out.Err.Code != oautherr.CodeAccessDenied {
				env.OnError(r.Context(), "authenticate", out.Err)
			}
			redirectError(w, r, env.Issuer, out.RedirectURI, out.State, out.Err)
			return
		}
		v := url.Values{"code": {out.Code}}
		if out.State != "" {
			v.Set("state", out.State)
		}
		v.Set("iss", env.Issuer)
		// RFC 9700 §4.12: 303 after a POST, never 307.
		httpx.Redirect(w, redirect.WithParams(out.RedirectURI, v), http.StatusSeeOther)
	})
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
