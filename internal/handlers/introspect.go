package handlers

import (
	"net/http"
	"strings"

	"github.com/mcpoauth/mcpoauth/internal/httpx"
	"github.com/mcpoauth/mcpoauth/record"
)

// introspectionResponse is the RFC 7662 §2.2 response. Only active is sent
// for an inactive token.
type introspectionResponse struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	TokenType string `json:"token_type,omitempty"`
	// Cnf is the DPoP binding (RFC 9449 §6.2).
	Cnf *introspectionCnf `json:"cnf,omitempty"`
	Exp int64             `json:"exp,omitempty"`
	Iat int64             `json:"iat,omitempty"`
	Sub string            `json:"sub,omitempty"`
	Aud string            `json:"aud,omitempty"`
	Iss string            `json:"iss,omitempty"`
}

// inactiveBody is the one answer for a token the caller may not know about.
var inactiveBody = []byte(`{"active":false}`)

// Introspect serves the token introspection endpoint (RFC 7662 §2): POST,
// form-encoded, the caller authenticated as at the revocation endpoint and
// required to be a confidential client (a public client is 401
// invalid_client with a Basic challenge). token is required;
// token_type_hint is accepted and ignored. The answer is 200 with
// Cache-Control: no-store: {"active":false} for an unknown, expired,
// revoked or rotated token and for a token the caller may not see (the
// visibility rule is grants.Service.Introspect's), else active, scope,
// client_id, token_type ("Bearer" for an access token; absent for a refresh
// token, which is no RFC 6749 §5.1 token type), exp, iat, sub (the user;
// absent for a client's own client_credentials token), aud (the RFC 8707
// resource) and iss. A storage failure is 500, never a false inactive.
func Introspect(env *Env) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client, token, ok := env.tokenRequest(w, r, "introspect")
		if !ok {
			return
		}
		info, oerr := env.Grants.Introspect(r.Context(), client, token)
		if oerr != nil {
			if oerr.Status == http.StatusUnauthorized {
				// A public client: the Basic challenge names the scheme
				// to authenticate with.
				env.writeClientError(w, r, "introspect", oerr)
				return
			}
			env.fail(w, r, "introspect", oerr)
			return
		}
		if !info.Active {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(inactiveBody)
			return
		}
		resp := introspectionResponse{
			Active:   true,
			Scope:    strings.Join(info.Scopes, " "),
			ClientID: info.ClientID,
			Exp:      info.ExpiresAt.Unix(),
			Sub:      info.UserID,
			Aud:      info.Resource,
			Iss:      env.Issuer,
		}
		if !info.IssuedAt.IsZero() {
			resp.Iat = info.IssuedAt.Unix()
		}
		if info.Kind == record.AccessToken {
			// RFC 6750 §4 spells the type "Bearer".
			resp.TokenType = "Bearer"
		}
		if info.JKT != "" {
			// RFC 9449 §6.2: a bound token's key, and its type.
			resp.Cnf = &introspectionCnf{JKT: info.JKT}
			if info.Kind == record.AccessToken {
				resp.TokenType = "DPoP"
			}
		}
		httpx.WriteJSON(w, http.StatusOK, resp)
	})
}

// introspectionCnf is the cnf member of a DPoP-bound token (RFC 7800 §3.1,
// RFC 9449 §6.2).
type introspectionCnf struct {
	JKT string `json:"jkt"`
}
