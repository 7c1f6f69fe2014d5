// Package handlers is the HTTP face of the authorization server: one
// constructor per endpoint, each returning an http.Handler that parses and
// validates its request, calls package grants, and renders the response or
// the OAuth error. Each handler can be mounted alone on any router; the root
// package's Router mounts them all.
package handlers

import (
	"context"
	"net/http"
	"net/url"

	"github.com/mcpoauth/mcpoauth/dpop"
	"github.com/mcpoauth/mcpoauth/internal/grants"
	"github.com/mcpoauth/mcpoauth/internal/httpx"
	"github.com/mcpoauth/mcpoauth/internal/oautherr"
	"github.com/mcpoauth/mcpoauth/metadata"
	"github.com/mcpoauth/mcpoauth/record"
)

// Env is what every handler shares: the grant logic and the server-wide
// settings that shape responses.
type Env struct {
	// Grants runs the grant logic.
	Grants *grants.Service
	// Registrar stores clients registered at /register; nil disables it.
	Registrar grants.ClientRegistrar
	// Issuer is the canonical issuer identifier, sent as iss on every
	// authorization response (RFC 9207 §2).
	Issuer string
	// AuthorizationURL is the consent page /authorize sends the browser to.
	AuthorizationURL *url.URL
	// ModifyAuthorizationRedirectURL may add display hints to the consent
	// URL; it must not remove request_id.
	ModifyAuthorizationRedirectURL func(u *url.URL, client *record.Client, req *record.AuthorizationRequest)
	// SecureCookies marks the browser-binding cookie Secure and gives it the
	// __Host- prefix; set when the issuer is https.
	SecureCookies bool
	// OnError sees every error a handler answers with, tagged with the step
	// that failed. It never receives a credential.
	OnError func(ctx context.Context, step string, err *oautherr.Error)
	// OnApproval is the application's hook on an approval
	// (Config.OnApproval); nil for none.
	OnApproval func(r *http.Request, g *record.Grant) (*record.Identity, error)
	// ErrorPage renders the errors of the browser-facing steps; nil means
	// DefaultErrorPage.
	ErrorPage func(w http.ResponseWriter, r *http.Request, err *oautherr.Error)
	// RegistrationPolicy, if set, sees each validated registration with its
	// request; it may narrow the metadata or refuse, and tells whether the
	// client may have the client_credentials grant.
	RegistrationPolicy func(r *http.Request, m *metadata.ClientMetadata) (allowClientCredentials bool, err *oautherr.Error)
	// DPoP checks the DPoP proofs of token requests (RFC 9449 §5); nil
	// when DPoP is off, and then a DPoP header is ignored.
	DPoP *dpop.Verifier
	// TokenURL is the token endpoint's URL, which a proof's htu names.
	TokenURL string
}

func (e *Env) fail(w http.ResponseWriter, r *http.Request, step string, oerr *oautherr.Error) {
	if e.OnError != nil {
		e.OnError(r.Context(), step, oerr)
	}
	httpx.WriteError(w, oerr)
}

// Parameter names of the consent form AuthenticateHandler reads.
const (
	ParamRequestID  = "request_id"
	ParamCSRFToken  = "csrf_token"
	ParamDecision   = "decision"
	DecisionApprove = "approve"
	DecisionDeny    = "deny"
)

// identify is env.OnApproval for the approval r carries; nil without a hook.
func (env *Env) identify(r *http.Request) grants.IdentifyFunc {
	if env.OnApproval == nil {
		return nil
	}
	return func(g *record.Grant) (*record.Identity, error) { return env.OnApproval(r, g) }
}
