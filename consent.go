// The consent flow: /authorize sends the browser to the application's
// consent page (Config.AuthorizationURL) with a request_id; the page calls
// PendingAuthorization to show who asks for what and renders a form with its
// hidden fields; the form posts the user's decision to AuthenticateHandler,
// which asks the application's GetUserFunc who approves and sends the
// browser back to the client.

package mcpoauth

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/mcpoauth/mcpoauth/internal/grants"
	"github.com/mcpoauth/mcpoauth/internal/handlers"
	"github.com/mcpoauth/mcpoauth/internal/oautherr"
)

// GetUserFunc returns the id of the user signed in on a request, or "" or an
// error if nobody is. AuthenticateHandler calls it to learn who approves;
// an error wrapping ErrAccessDenied says the user is signed in but may not
// authorize the request.
type GetUserFunc func(r *http.Request) (string, error)

// internal is f as the handlers call it: a refusal (ErrAccessDenied) is
// handed on as the one the grants recognise.
func (f GetUserFunc) internal() handlers.GetUserFunc {
	return func(r *http.Request) (string, error) {
		user, err := f(r)
		if errors.Is(err, ErrAccessDenied) {
			err = fmt.Errorf("%w: %w", grants.ErrAccessDenied, err)
		}
		return user, err
	}
}

// ErrAccessDenied is what a GetUserFunc returns (or wraps) for a signed-in
// user the application refuses (the wrong tenant, a suspended account).
// AuthenticateHandler then consumes the request and sends the browser back
// to the client with error=access_denied and iss (RFC 6749 §4.1.2.1), so the
// client stops waiting; "" or any other error means nobody is signed in,
// which stays a page of the application (ErrorPage, 403).
var ErrAccessDenied = errors.New("mcpoauth: the signed-in user may not authorize this request")

// Field names of the consent form that AuthenticateHandler reads.
const (
	FormRequestID = "request_id"
	FormCSRFToken = "csrf_token"
	FormDecision  = "decision"
	// DecisionApprove and DecisionDeny are the values of FormDecision.
	DecisionApprove = "approve"
	DecisionDeny    = "deny"
)

// AuthenticateHandler receives the consent page's decision (see
// PendingAuthorization): a POST with request_id, csrf_token and decision
// (approve or deny). getUser tells who is signed in; it is asked only for an
// approval. The response is a 303 to the client's redirect URI, with a code,
// or with error=access_denied after a denial or when getUser returns
// ErrAccessDenied. Errors about the request itself, and nobody signed in,
// are rendered with ErrorPage. The body may have been parsed by a
// middleware already (r.PostForm). Mount it on the issuer's origin, where
// the browser-binding cookie set by /authorize is visible.
func (s *OAuthServer) AuthenticateHandler(getUser GetUserFunc) http.Handler {
	h := handlers.Authenticate(s.env, getUser.internal())
	return s.telemetry.Endpoint("authenticate", methods(s.limit("authenticate", s.cfg.RateLimits.Authenticate, h), http.MethodPost))
}

// ApproveRemembered lets a consent page skip itself for a user who approved
// this client before: call it first when the page is opened (GET). When the
// signed-in user (getUser) already holds a grant of the same client for
// every requested scope, or more, and the same resource, it approves the
// request as AuthenticateHandler would, sends the browser back to the
// client, and returns true; the page then writes nothing. Otherwise it
// writes nothing and returns false: show the page. A request for a scope
// the user has not approved asks again, and approval is per client, as the
// MCP authorization spec requires of a server fronting another provider.
// It needs a Model that is a GrantStore (grants are remembered only there);
// an application that always asks simply does not call it.
//
// Only a client whose identity the redirect proves is remembered: a
// confidential client, or a public one whose every redirect URI is https
// and not loopback (RFC 8252 §8.6). A public client with a loopback or
// private-use-scheme redirect URI is asked every time, since any program
// on the user's machine could claim its client_id and a port of its own.
// A request whose prompt parameter asks for the user (consent, login or
// select_account; OpenID Connect Core §3.1.2.1) is shown the page too.
func (s *OAuthServer) ApproveRemembered(w http.ResponseWriter, r *http.Request, getUser GetUserFunc) bool {
	return handlers.ApproveRemembered(s.env, w, r, getUser.internal())
}

// PendingAuthorization is what a consent page shows and posts back: who asks
// (the client's self-asserted name, and the redirect host where the browser
// will go), for what (scopes, resource), and the hidden fields the decision
// form must carry.
type PendingAuthorization struct {
	// RequestID and CSRFToken go in hidden form fields named FormRequestID
	// and FormCSRFToken.
	RequestID string
	CSRFToken string
	ClientID  string
	// ClientIDHost is the host (and port, if any) of a client_id that is a
	// client ID metadata document URL, empty for any other client. It is
	// the one verified fact about such a client (its document is served
	// there): show it prominently (draft-ietf-oauth-client-id-metadata-
	// document §8.5).
	ClientIDHost string
	// ClientName, ClientURI and LogoURI are registered by the client itself:
	// show them as claims, HTML-escaped.
	ClientName string
	ClientURI  string
	LogoURI    string
	// RedirectURI is where the browser goes after the decision; show its
	// host (MCP authorization: the redirect host must be displayed).
	RedirectURI  string
	RedirectHost string
	Scopes       []string
	Resource     string
	ExpiresAt    time.Time
}

// ErrNoPendingAuthorization is returned by PendingAuthorization for an
// unknown, expired or decided request, or one started in another browser.
var ErrNoPendingAuthorization = errors.New("mcpoauth: no pending authorization request for this browser")

// PendingAuthorization looks up the authorization request a consent page
// was opened for (its request_id query parameter), checking that this
// browser started it.
func (s *OAuthServer) PendingAuthorization(r *http.Request) (*PendingAuthorization, error) {
	pending, oerr := handlers.PendingConsent(s.env, r)
	if oerr != nil {
		if oerr.Code == oautherr.CodeServerError {
			return nil, publicError(oerr)
		}
		return nil, fmt.Errorf("%w: %s", ErrNoPendingAuthorization, oerr.Description)
	}
	req, client := pending.Request, pending.Client
	p := &PendingAuthorization{
		RequestID:    pending.RequestID,
		CSRFToken:    pending.CSRFToken,
		ClientID:     client.ID,
		ClientIDHost: s.clientIDHost(client.ID),
		ClientName:   client.Metadata.ClientName,
		ClientURI:    client.Metadata.ClientURI,
		LogoURI:      client.Metadata.LogoURI,
		RedirectURI:  req.RedirectURI,
		Scopes:       req.Scopes,
		Resource:     req.Resource,
		ExpiresAt:    req.ExpiresAt,
	}
	if u, err := url.Parse(req.RedirectURI); err == nil {
		p.RedirectHost = u.Host
		if p.RedirectHost == "" {
			p.RedirectHost = u.Scheme + ":"
		}
	}
	return p, nil
}
