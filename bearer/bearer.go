// Package bearer is the resource-server side of MCP authorization: an
// http.Handler middleware that accepts OAuth 2.0 bearer tokens (RFC 6750)
// only in the Authorization header, has them checked by a Verifier, enforces
// expiry, the RFC 8707 audience and the required scopes, and answers failures
// with the WWW-Authenticate challenges MCP clients rely on to discover the
// authorization server (RFC 9728 resource_metadata).
//
// The package is usable without the authorization server in this module:
// anything that can turn a token into an AuthInfo can be a Verifier. It never
// logs, stores or echoes a token.
package bearer

import (
	"context"
	"errors"
	"time"

	"github.com/mcpoauth/mcpoauth/record"
)

// AuthInfo describes a verified access token: who it was issued to, for
// what, and until when. Handlers behind RequireBearerAuth read it with
// FromContext. It never holds the raw token, so it is safe to log or pass
// around; treat it as read-only, since one value may be shared by the
// verifier's cache and concurrent requests.
type AuthInfo struct {
	// ClientID is the OAuth client the token was issued to.
	ClientID string
	// UserID is the resource owner who authorized the grant; empty for
	// client_credentials tokens, which act on the client's own behalf.
	UserID string
	// Scopes are the scopes granted to the token.
	Scopes []string
	// Resource is the canonical RFC 8707 resource indicator (audience) the
	// token is bound to.
	Resource string
	// ExpiresAt is when the token stops being valid. A zero value is
	// refused: tokens without an expiry are not accepted.
	ExpiresAt time.Time
	// GrantID identifies the grant (consent, client-credentials exchange,
	// device approval) the token descends from, so handlers can bind
	// sessions to it.
	GrantID string
	// JKT is the RFC 7638 thumbprint of the DPoP key the token is bound
	// to (RFC 9449 §6, cnf.jkt); empty for a bearer token. RequireBearerAuth
	// admits a bound token only with the DPoP scheme and a proof of that
	// key, and refuses it as a Bearer token.
	JKT string
	// Identity is who the user is at the upstream identity provider they
	// signed in with (package upstream), stored with the grant when they
	// approved it; nil for a user the application signed in itself, for
	// client_credentials tokens, and from verifiers that cannot know it
	// (JWTVerifier, IntrospectionVerifier).
	Identity *record.Identity
	// Extra carries verifier-specific claims.
	Extra map[string]any
}

// Verifier turns a presented access token into the AuthInfo it stands for.
// Implementations look the token up (by digest) or validate it
// cryptographically. They return an error wrapping ErrInvalidToken for an
// unknown, expired or revoked token; any other error means the token could
// not be checked now (503, Retry-After). Errors must not contain the token.
type Verifier interface {
	VerifyAccessToken(ctx context.Context, token string) (*AuthInfo, error)
}

// VerifierFunc adapts an ordinary function to the Verifier interface, so a
// closure can be passed as Options.Verifier.
type VerifierFunc func(ctx context.Context, token string) (*AuthInfo, error)

// VerifyAccessToken calls f(ctx, token).
func (f VerifierFunc) VerifyAccessToken(ctx context.Context, token string) (*AuthInfo, error) {
	return f(ctx, token)
}

// ErrInvalidToken is the error verifiers wrap for an unknown, expired or
// revoked token. RequireBearerAuth answers it with 401 error="invalid_token"
// (RFC 6750 §3.1); every other verifier error becomes a 503 with
// Retry-After, so that the client keeps its token and tries again.
var ErrInvalidToken = errors.New("bearer: invalid token")

// ctxKey is the private context key under which the AuthInfo is stored, so
// no other package can overwrite or forge it.
type ctxKey struct{}

// ContextWithAuthInfo returns a copy of ctx carrying info. RequireBearerAuth
// uses it; it is exported for SDK adapters and for tests of handlers that
// sit behind the middleware.
func ContextWithAuthInfo(ctx context.Context, info *AuthInfo) context.Context {
	return context.WithValue(ctx, ctxKey{}, info)
}

// FromContext returns the AuthInfo of the verified token of the current
// request, as stored by RequireBearerAuth (or ContextWithAuthInfo). The
// boolean is false when ctx carries none, which for a handler behind
// RequireBearerAuth never happens.
func FromContext(ctx context.Context) (*AuthInfo, bool) {
	info, ok := ctx.Value(ctxKey{}).(*AuthInfo)
	return info, ok && info != nil
}
