// The device verification flow (RFC 8628 §3.3): the user opens the
// application's device page (Config.DeviceAuthorizationURL), types the code
// the device shows, sees PendingDeviceAuthorization, and approves or denies
// through the two handlers below.

package mcpoauth

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/mcpoauth/mcpoauth/internal/grants"
	"github.com/mcpoauth/mcpoauth/internal/handlers"
	"github.com/mcpoauth/mcpoauth/internal/oautherr"
)

// Field names of the device verification form that the approve and deny
// handlers read (with FormCSRFToken), and the query parameter and values
// with which they report the decision back to DeviceAuthorizationURL.
const (
	FormUserCode         = "user_code"
	DeviceResultParam    = "result"
	DeviceResultApproved = "approved"
	DeviceResultDenied   = "denied"
)

// ApproveDeviceAuthorizationHandler receives the user's approval from the
// device verification page (DeviceAuthorizationURL): a POST whose body
// carries FormUserCode (as typed: case, dashes and spaces do not matter;
// never read from the query) and FormCSRFToken (from DeviceFormToken).
// getUser tells who is signed in; nobody signed in is 403 access_denied.
// The decision is final and atomic. Success is a 303 to
// DeviceAuthorizationURL with DeviceResultParam=DeviceResultApproved;
// errors are JSON OAuth errors: 403 access_denied for a missing or wrong
// CSRF token or cookie, 400 invalid_grant for an unknown or decided code,
// 400 expired_token for an expired one, 429 when the per-IP user code
// budget (RateLimits.DeviceVerification, shared with the deny handler and
// PendingDeviceAuthorization) is spent. The body may have been parsed by
// the application already (r.PostForm). Mount it on the issuer's origin,
// where the browser-binding cookie is visible.
func (s *OAuthServer) ApproveDeviceAuthorizationHandler(getUser GetUserFunc) http.Handler {
	return s.telemetry.Endpoint("device_approve", methods(s.deviceVerification.Middleware(handlers.ApproveDevice(s.env, getUser.internal())), http.MethodPost))
}

// DenyDeviceAuthorizationHandler receives the user's denial from the device
// verification page, exactly as ApproveDeviceAuthorizationHandler receives
// an approval: the same fields, a signed-in user (so that knowing a code is
// not enough to deny it), the same CSRF check and rate limit. Success is a
// 303 to DeviceAuthorizationURL with DeviceResultParam=DeviceResultDenied;
// the device's next poll gets access_denied.
func (s *OAuthServer) DenyDeviceAuthorizationHandler(getUser GetUserFunc) http.Handler {
	return s.telemetry.Endpoint("device_deny", methods(s.deviceVerification.Middleware(handlers.DenyDevice(s.env, getUser.internal())), http.MethodPost))
}

// DeviceFormToken returns the CSRF token the device verification form must
// carry in its FormCSRFToken field, and sets the browser-binding cookie when
// the browser has none yet. Call it once per render of the form, before
// writing the body. The token is an HMAC under that cookie's secret, so a
// form posted from another site, or from a browser that never loaded the
// page, fails; it does not depend on the user code, which the user may type
// into the same form.
func (s *OAuthServer) DeviceFormToken(w http.ResponseWriter, r *http.Request) string {
	return handlers.DeviceFormToken(w, r, s.env.SecureCookies)
}

// PendingDeviceAuthorization is what a device verification page shows
// before the user decides (RFC 8628 §5.4: the user must see which client
// asks for what, so that a code sent by a phisher is recognised).
type PendingDeviceAuthorization struct {
	// UserCode is the code in display form (XXXX-XXXX), for the form's
	// FormUserCode field.
	UserCode string
	ClientID string
	// ClientIDHost is the host of a client ID metadata document client_id,
	// empty otherwise; see PendingAuthorization.
	ClientIDHost string
	// ClientName, ClientURI and LogoURI are registered by the client itself:
	// show them as claims, HTML-escaped.
	ClientName string
	ClientURI  string
	LogoURI    string
	Scopes     []string
	Resource   string
	// ExpiresAt is when the code stops being accepted.
	ExpiresAt time.Time
}

// ErrNoPendingDeviceAuthorization is wrapped by PendingDeviceAuthorization's
// error for a malformed, unknown, expired or already decided user code;
// the error also wraps the OAuthError that tells which (errors.Is with
// &OAuthError{Code: "expired_token"} finds an expired one).
var ErrNoPendingDeviceAuthorization = errors.New("mcpoauth: no pending device authorization for this user code")

// ErrTooManyUserCodeAttempts is returned by PendingDeviceAuthorization when
// the client IP spent its user code budget (RateLimits.DeviceVerification);
// the page should answer 429.
var ErrTooManyUserCodeAttempts = errors.New("mcpoauth: too many user code attempts, try again later")

// PendingDeviceAuthorization looks up the pending device authorization a
// user code names (as the user typed it, or from verification_uri_complete's
// user_code query parameter), so the verification page can show it. Each
// call with a non-empty code takes one attempt from the client IP's user
// code budget, shared with the approve and deny handlers: a lookup answers
// whether a code exists, so it would otherwise be a guessing oracle
// (RFC 8628 §5.1).
func (s *OAuthServer) PendingDeviceAuthorization(r *http.Request, userCode string) (*PendingDeviceAuthorization, error) {
	if userCode == "" {
		return nil, fmt.Errorf("%w: %w", ErrNoPendingDeviceAuthorization, publicError(grants.ErrUnknownUserCode))
	}
	if ok, _, err := s.deviceVerification.Allow(r); !ok {
		if err != nil {
			// The shared rate-limit store is down (FailClosed): a
			// storage failure, not the user's attempts.
			return nil, publicError(oautherr.ServerError(err))
		}
		return nil, ErrTooManyUserCodeAttempts
	}
	d, client, oerr := s.grants.PendingDevice(r.Context(), userCode)
	if oerr != nil {
		if oerr.Code == oautherr.CodeServerError {
			return nil, publicError(oerr)
		}
		return nil, fmt.Errorf("%w: %w", ErrNoPendingDeviceAuthorization, publicError(oerr))
	}
	norm, _ := grants.NormalizeUserCode(userCode)
	return &PendingDeviceAuthorization{
		UserCode:     grants.FormatUserCode(norm),
		ClientID:     client.ID,
		ClientIDHost: s.clientIDHost(client.ID),
		ClientName:   client.Metadata.ClientName,
		ClientURI:    client.Metadata.ClientURI,
		LogoURI:      client.Metadata.LogoURI,
		Scopes:       d.Scopes,
		Resource:     d.Resource,
		ExpiresAt:    d.ExpiresAt,
	}, nil
}
