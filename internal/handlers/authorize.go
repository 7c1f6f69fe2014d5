package handlers

import (
	"net/http"
	"net/url"

	"github.com/mcpoauth/mcpoauth/internal/grants"
	"github.com/mcpoauth/mcpoauth/internal/httpx"
	"github.com/mcpoauth/mcpoauth/internal/oautherr"
	"github.com/mcpoauth/mcpoauth/internal/redirect"
)

// Authorize serves the authorization endpoint (OAuth 2.1 §4.1.1), GET and
// POST. It verifies client_id and redirect_uri first; until both hold, errors
// are shown on the error page, never redirected (OAuth 2.1 §4.1.2.1, RFC 9700
// §4.11). Later errors go to a pre-registered client's redirect URI with iss
// (RFC 9207) and state; any other client's are shown too (RFC 9700
// §4.11.2). A valid request is stored as pending and the browser is sent to
// the consent page with an opaque request_id.
func Authorize(env *Env) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.NoStore(w)
		form, oerr := httpx.ParseForm(w, r)
		if oerr != nil {
			env.showError(w, r, "authorize", oerr)
			return
		}
		clientID, oerr := httpx.Param(form, "client_id")
		if oerr != nil {
			env.showError(w, r, "authorize", oerr)
			return
		}
		requestedRedirect, oerr := httpx.Param(form, "redirect_uri")
		if oerr != nil {
			env.showError(w, r, "authorize", oerr)
			return
		}
		if clientID == "" {
			env.showError(w, r, "authorize", oautherr.InvalidRequest("client_id is required"))
			return
		}
		// A URL client_id is resolved through its metadata document; its
		// failures are shown like an unknown client's, never redirected.
		client, oerr := env.Grants.GetClient(r.Context(), clientID)
		if oerr != nil {
			env.showError(w, r, "authorize", oerr)
			return
		}
		redirectURI, err := redirect.Resolve(client.Metadata.RedirectURIs, requestedRedirect)
		if err != nil {
			env.showError(w, r, "authorize", oautherr.InvalidRequest(err.Error()))
			return
		}
		state := ""
		if len(form["state"]) == 1 {
			state = form["state"][0]
		}
		// From here on the redirect URI is the client's. Errors go back to
		// it only for a client the operator vetted: anyone can register a
		// phishing page as a redirect URI, and an error sent there with no
		// user in the loop would make this server an open redirector
		// (RFC 9700 §4.11.2). Other clients' errors are shown.
		fail := func(oerr *oautherr.Error) {
			if !client.PreRegistered {
				env.showError(w, r, "authorize", oerr)
				return
			}
			if env.OnError != nil {
				env.OnError(r.Context(), "authorize", oerr)
			}
			redirectError(w, r, env.Issuer, redirectURI, state, oerr)
		}
		if len(form["resource"]) > 1 {
			// RFC 8707 §2 allows several; tokens here have one audience.
			fail(oautherr.InvalidTarget("only one resource per request is supported"))
			return
		}
		p, oerr := params(form, "response_type", "code_challenge", "code_challenge_method", "scope", "resource", "state", "prompt")
		if oerr != nil {
			fail(oerr)
			return
		}
		id, pending, oerr := env.Grants.Authorize(r.Context(), grants.AuthorizationParams{
			Client:              client,
			RedirectURI:         redirectURI,
			RedirectURIProvided: requestedRedirect != "",
			ResponseType:        p[0],
			CodeChallenge:       p[1],
			CodeChallengeMethod: p[2],
			Scope:               p[3],
			Resource:            p[4],
			State:               state,
			Prompt:              p[6],
			BrowserSecret:       ensureBrowserSecret(w, r, env.SecureCookies),
		})
		if oerr != nil {
			fail(oerr)
			return
		}
		u := *env.AuthorizationURL
		u.RawQuery = consentQuery(u.RawQuery, id)
		if env.ModifyAuthorizationRedirectURL != nil {
			env.ModifyAuthorizationRedirectURL(&u, client, pending)
		}
		httpx.Redirect(w, u.String(), redirectStatus(r))
	})
}

// consentQuery is the query of the consent page URL: the configured one's
// (query) with request_id set, encoded as url.Values.Encode does. An
// AuthorizationURL without a query, the usual case, needs no map and no
// sorting for its one parameter.
func consentQuery(query, id string) string {
	if query == "" {
		return ParamRequestID + "=" + url.QueryEscape(id)
	}
	q, _ := url.ParseQuery(query)
	q.Set(ParamRequestID, id)
	return q.Encode()
}

// redirectStatus is 303 after a POST (RFC 9700 §4.12: never 307, which would
// repost the form) and 302 otherwise.
func redirectStatus(r *http.Request) int {
	if r.Method == http.MethodPost {
		return http.StatusSeeOther
	}
	return http.StatusFound
}

// redirectError sends an OAuth error to a verified redirect URI, with state
// when one was sent and always iss (RFC 9207 §2).
func redirectError(w http.ResponseWriter, r *http.Request, issuer, redirectURI, state string, oerr *oautherr.Error) {
	v := url.Values{"error": {oerr.Code}}
	if oerr.Description != "" {
		v.Set("error_description", oerr.Description)
	}
	if state != "" {
		v.Set("state", state)
	}
	v.Set("iss", issuer)
	httpx.Redirect(w, redirect.WithParams(redirectURI, v), redirectStatus(r))
}
