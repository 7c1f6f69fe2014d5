package handlers

import (
	"net/http"

	"github.com/mcpoauth/mcpoauth/internal/grants"
	"github.com/mcpoauth/mcpoauth/internal/httpx"
	"github.com/mcpoauth/mcpoauth/internal/oautherr"
	"github.com/mcpoauth/mcpoauth/record"
)

// grantHandler runs one grant type at the token endpoint for an
// authenticated client and returns the token response; jkt is the
// thumbprint of the key the request's DPoP proof proved ("" for none). It
// is a method expression, not a method value bound to the Env, which would
// allocate a closure on every request.
type grantHandler func(e *Env, r *http.Request, client *record.Client, form map[string][]string, jkt string) (*grants.TokenResponse, *oautherr.Error)

// Token serves the token endpoint (OAuth 2.1 §3.2): POST, form-encoded, the
// client authenticated first; then grant_type must be enabled on the server
// (unsupported_grant_type) and registered by the client (unauthorized_client)
// before the grant runs. Success is exactly 200 with the RFC 6749 §5.1
// members and Cache-Control: no-store.
func Token(env *Env) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		form, client, ok := env.clientRequest(w, r, "token")
		if !ok {
			return
		}
		grantType, oerr := httpx.Param(form, "grant_type")
		if oerr == nil && grantType == "" {
			oerr = oautherr.InvalidRequest("grant_type is required")
		}
		if oerr != nil {
			env.fail(w, r, "token", oerr)
			return
		}
		handler := grantHandlerOf(grantType)
		switch {
		case handler == nil || !env.Grants.Enabled(grantType):
			env.fail(w, r, "token", oautherr.UnsupportedGrantType("grant_type is not supported"))
			return
		case !client.HasGrantType(grantType) && grantType != grants.RefreshToken:
			// A refresh is checked by the grant: a grant with
			// offline_access may be refreshed without the registration.
			env.fail(w, r, "token", oautherr.UnauthorizedClient("client is not registered for this grant_type"))
			return
		}
		var jkt string
		if env.DPoP != nil {
			var ok bool
			if jkt, ok = env.checkProof(w, r, client); !ok {
				return
			}
		}
		resp, oerr := handler(env, r, client, form, jkt)
		if oerr != nil && oerr.Code == oautherr.CodeInvalidClient {
			// The client was deleted while the grant ran: answered as a
			// failed authentication is, with the Basic challenge.
			env.writeClientError(w, r, "token:"+grantType, oerr)
			return
		}
		if oerr != nil {
			env.fail(w, r, "token:"+grantType, oerr)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(resp.AppendJSON(make([]byte, 0, 256)))
	})
}

func grantHandlerOf(grantType string) grantHandler {
	switch grantType {
	case grants.AuthorizationCode:
		return (*Env).exchangeCode
	case grants.RefreshToken:
		return (*Env).refresh
	case grants.ClientCredentials:
		return (*Env).clientCredentials
	case grants.DeviceCode:
		return (*Env).pollDeviceCode
	case grants.JWTBearer:
		return (*Env).jwtBearer
	}
	return nil
}

// maxParams is the most names one call of params reads: the authorization
// request's seven.
const maxParams = 7

// params reads single-valued parameters, failing on the first repeated one.
// The values come back in an array, in the order of names, so that reading
// them allocates nothing; more than maxParams names panic.
func params(form map[string][]string, names ...string) (p [maxParams]string, oerr *oautherr.Error) {
	for i, n := range names {
		if p[i], oerr = httpx.Param(form, n); oerr != nil {
			return p, oerr
		}
	}
	return p, nil
}

func (e *Env) exchangeCode(r *http.Request, client *record.Client, form map[string][]string, jkt string) (*grants.TokenResponse, *oautherr.Error) {
	p, oerr := params(form, "code", "code_verifier", "redirect_uri", "resource")
	if oerr != nil {
		return nil, oerr
	}
	return e.Grants.ExchangeCode(r.Context(), grants.CodeExchange{Client: client, Code: p[0], CodeVerifier: p[1], RedirectURI: p[2], Resource: p[3], JKT: jkt})
}

func (e *Env) refresh(r *http.Request, client *record.Client, form map[string][]string, jkt string) (*grants.TokenResponse, *oautherr.Error) {
	p, oerr := params(form, "refresh_token", "scope", "resource")
	if oerr != nil {
		return nil, oerr
	}
	return e.Grants.Refresh(r.Context(), grants.RefreshRequest{Client: client, RefreshToken: p[0], Scope: p[1], Resource: p[2], JKT: jkt})
}

func (e *Env) clientCredentials(r *http.Request, client *record.Client, form map[string][]string, jkt string) (*grants.TokenResponse, *oautherr.Error) {
	p, oerr := params(form, "scope", "resource")
	if oerr != nil {
		return nil, oerr
	}
	return e.Grants.ClientCredentials(r.Context(), grants.ClientCredentialsRequest{Client: client, Scope: p[0], Resource: p[1], JKT: jkt})
}

// pollDeviceCode reads only device_code: RFC 8628 §3.4 defines no other
// parameter, and golang.org/x/oauth2 repeats scope on every poll (ignored,
// the scope was fixed at the device authorization request).
func (e *Env) pollDeviceCode(r *http.Request, client *record.Client, form map[string][]string, jkt string) (*grants.TokenResponse, *oautherr.Error) {
	p, oerr := params(form, "device_code")
	if oerr != nil {
		return nil, oerr
	}
	return e.Grants.PollDeviceCode(r.Context(), grants.DeviceTokenRequest{Client: client, DeviceCode: p[0], JKT: jkt})
}

// jwtBearer redeems an identity assertion (RFC 7523 §2.1: assertion, and
// optionally scope; RFC 8707 resource).
func (e *Env) jwtBearer(r *http.Request, client *record.Client, form map[string][]string, jkt string) (*grants.TokenResponse, *oautherr.Error) {
	p, oerr := params(form, "assertion", "scope", "resource")
	if oerr != nil {
		return nil, oerr
	}
	return e.Grants.JWTBearer(r.Context(), grants.JWTBearerRequest{Client: client, Assertion: p[0], Scope: p[1], Resource: p[2], JKT: jkt})
}
