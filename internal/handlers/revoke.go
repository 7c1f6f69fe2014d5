package handlers

import (
	"net/http"
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
