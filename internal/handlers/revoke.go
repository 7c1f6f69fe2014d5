package handlers

import (
	"net/http"

	"github.com/mcpoauth/mcpoauth/record"
)

// Revoke serves the revocation endpoint (RFC 7009 §2): POST, form-encoded,
// the client authenticated first. token_type_hint is accepted and ignored:
// both kinds are searched (RFC 7009 §2.1 lets the server ignore it, and a
// wrong hint must not hide a token). Success, including an unknown token or another
// client's, is exactly 200 with an empty body (RFC 7009 §2.2); a storage
// failure is 500, never a false 200.
func Revoke(env *Env) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client, token, ok := env.tokenRequest(w, r, "revoke")
		if !ok {
			return
		}
		if oerr := env.Grants.Revoke(r.Context(), client, token); oerr != nil {
			env.fail(w, r, "revoke", oerr)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}

// tokenRequest begins a request about one token, at the revocation or the
// introspection endpoint: the client authenticated (clientRequest), then
// the token parameter (RFC 7009 §2.1, RFC 7662 §2.1) and token_type_hint,
// read only so that a repeated hint is refused (OAuth 2.1 §3.1). Whether
// token is present is the grant's rule. On a failure it has answered,
// under step, and ok is false.
func (e *Env) tokenRequest(w http.ResponseWriter, r *http.Request, step string) (client *record.Client, token string, ok bool) {
	form, client, ok := e.clientRequest(w, r, step)
	if !ok {
		return nil, "", false
	}
	p, oerr := params(form, "token", "token_type_hint")
	if oerr != nil {
		e.fail(w, r, step, oerr)
		return nil, "", false
	}
	return client, p[0], true
}
