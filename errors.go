package mcpoauth

import (
	"errors"

	"github.com/mcpoauth/mcpoauth/internal/oautherr"
)

// OAuthError is an OAuth error response (RFC 6749 §5.2, §4.1.2.1): the error
// code, a fixed description and the HTTP status it is served with.
// ErrorHandler and ErrorPage receive one for every error an endpoint
// answers; a storage failure arrives as server_error whose Cause is the
// Model's error. errors.Is compares codes:
// errors.Is(err, &OAuthError{Code: "expired_token"}) holds for any
// expired_token. A RegistrationPolicy may return one to choose the answer.
type OAuthError struct {
	// Code is the error code ("invalid_grant", "access_denied", ...).
	Code string
	// Description is the human-readable error_description. The server's
	// own are fixed strings that never echo request input.
	Description string
	// Status is the HTTP status; 0 means 400.
	Status int
	// Cause is the underlying error, for ErrorHandler and logs; it is never
	// sent to the client and never holds a credential.
	Cause error
}

// Error returns "code: description".
func (e *OAuthError) Error() string { return e.internal().Error() }

// Unwrap returns the cause.
func (e *OAuthError) Unwrap() error { return e.Cause }

// Is reports whether target is an *OAuthError with the same code.
func (e *OAuthError) Is(target error) bool {
	t, ok := target.(*OAuthError)
	return ok && t.Code == e.Code
}

// internal is e as the endpoints' error type.
func (e *OAuthError) internal() *oautherr.Error {
	return &oautherr.Error{Code: e.Code, Description: e.Description, Status: e.Status, Cause: e.Cause}
}

// publicError is an endpoint's error as the users' type: the one place
// where the internal error type turns into OAuthError.
func publicError(e *oautherr.Error) *OAuthError {
	if e == nil {
		return nil
	}
	return &OAuthError{Code: e.Code, Description: e.Description, Status: e.Status, Cause: e.Cause}
}

// asInternalError finds an OAuthError (or an endpoint's own error) in err's
// chain.
func asInternalError(err error) (*oautherr.Error, bool) {
	var pub *OAuthError
	if errors.As(err, &pub) {
		return pub.internal(), true
	}
	var oerr *oautherr.Error
	if errors.As(err, &oerr) {
		return oerr, true
	}
	return nil, false
}
