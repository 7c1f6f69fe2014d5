// Package oautherr defines the one error type of the authorization server: an
// OAuth error that knows its RFC 6749 §5.2 code, a fixed human-readable
// description and the HTTP status it is served with.
//
// Descriptions are fixed strings chosen by the server: they never echo request
// input, so they stay within the RFC 6749 error_description character set and
// cannot carry markup into an HTML page or a secret into a log.
package oautherr

import (
	"errors"
	"net/http"
)

// Error codes of RFC 6749 §4.1.2.1 and §5.2, RFC 6750 §3.1, RFC 7009 §2.2.1,
// RFC 7591 §3.2.2, RFC 8628 §3.5 and RFC 8707 §2.
const (
	CodeInvalidRequest          = "invalid_request"
	CodeInvalidClient           = "invalid_client"
	CodeInvalidGrant            = "invalid_grant"
	CodeUnauthorizedClient      = "unauthorized_client"
	CodeUnsupportedGrantType    = "unsupported_grant_type"
	CodeInvalidScope            = "invalid_scope"
	CodeAccessDenied            = "access_denied"
	CodeUnsupportedResponseType = "unsupported_response_type"
	CodeServerError             = "server_error"
	CodeTemporarilyUnavailable  = "temporarily_unavailable"
	CodeUnsupportedTokenType    = "unsupported_token_type"
	CodeInvalidToken            = "invalid_token"
	CodeInsufficientScope       = "insufficient_scope"
	CodeInvalidRedirectURI      = "invalid_redirect_uri"
	CodeInvalidClientMetadata   = "invalid_client_metadata"
	CodeAuthorizationPending    = "authorization_pending"
	CodeSlowDown                = "slow_down"
	CodeExpiredToken            = "expired_token"
	CodeInvalidTarget           = "invalid_target"
	CodeTooManyRequests         = "too_many_requests"
	CodeMethodNotAllowed        = "method_not_allowed"
)

// Error is an OAuth error response. It is comparable with errors.Is by code:
// errors.Is(err, &Error{Code: "invalid_grant"}) holds for any invalid_grant.
type Error struct {
	// Code is the RFC error code ("invalid_grant").
	Code string
	// Description is a fixed, human-readable explanation.
	Description string
	// Status is the HTTP status the error is served with.
	Status int
	// Cause is the underlying error, for ErrorHandler and logs; never
	// rendered to the client.
	Cause error
}

// Error implements error as "code: description".
func (e *Error) Error() string {
	if e.Description == "" {
		return e.Code
	}
	return e.Code + ": " + e.Description
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Cause }

// Is reports whether target is an *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// WithCause returns a copy of e that wraps cause.
func (e *Error) WithCause(cause error) *Error {
	c := *e
	c.Cause = cause
	return &c
}

// New returns an error with the given code, description and status.
func New(code, description string, status int) *Error {
	return &Error{Code: code, Description: description, Status: status}
}

// InvalidRequest is a malformed request (400).
func InvalidRequest(description string) *Error {
	return New(CodeInvalidRequest, description, http.StatusBadRequest)
}

// InvalidClient is a failed client authentication (401; RFC 6749 §5.2).
func InvalidClient(description string) *Error {
	return New(CodeInvalidClient, description, http.StatusUnauthorized)
}

// InvalidGrant is an invalid, expired, revoked or misbound grant (400).
func InvalidGrant(description string) *Error {
	return New(CodeInvalidGrant, description, http.StatusBadRequest)
}

// UnauthorizedClient is a client not allowed the grant or response type (400).
func UnauthorizedClient(description string) *Error {
	return New(CodeUnauthorizedClient, description, http.StatusBadRequest)
}

// UnsupportedGrantType is a grant type the server does not enable (400).
func UnsupportedGrantType(description string) *Error {
	return New(CodeUnsupportedGrantType, description, http.StatusBadRequest)
}

// InvalidScope is a scope that is unknown or exceeds what was granted (400).
func InvalidScope(description string) *Error {
	return New(CodeInvalidScope, description, http.StatusBadRequest)
}

// InvalidTarget is an RFC 8707 resource the server will not issue for (400).
func InvalidTarget(description string) *Error {
	return New(CodeInvalidTarget, description, http.StatusBadRequest)
}

// AccessDenied is the resource owner's refusal (400 when not redirected).
func AccessDenied(description string) *Error {
	return New(CodeAccessDenied, description, http.StatusBadRequest)
}

// UnsupportedResponseType is a response_type other than "code" (400).
func UnsupportedResponseType(description string) *Error {
	return New(CodeUnsupportedResponseType, description, http.StatusBadRequest)
}

// InvalidClientMetadata is rejected RFC 7591 client metadata (400).
func InvalidClientMetadata(description string) *Error {
	return New(CodeInvalidClientMetadata, description, http.StatusBadRequest)
}

// InvalidRedirectURI is a rejected RFC 7591 redirect URI (400).
func InvalidRedirectURI(description string) *Error {
	return New(CodeInvalidRedirectURI, description, http.StatusBadRequest)
}

// ServerError hides an internal failure behind a fixed description (500).
// The cause stays available to ErrorHandler through Unwrap.
func ServerError(cause error) *Error {
	return &Error{Code: CodeServerError, Description: "internal server error", Status: http.StatusInternalServerError, Cause: cause}
}

// From converts any error into an *Error: an *Error anywhere in the chain is
// returned as is; anything else becomes a server_error wrapping it.
func From(err error) *Error {
	var oe *Error
	if errors.As(err, &oe) {
		return oe
	}
	return ServerError(err)
}
