// Package audit is the vocabulary of the authorization server's audit
// events: what happened (Type), to which client, user and grant, from which
// address, and how it ended. The server hands each Event to
// Config.OnEvent; the package has no dependencies, so a log shipper or a
// SIEM adapter can import it without the server.
//
// An Event never carries a credential: no access or refresh token, code,
// client secret, PKCE verifier, device or user code, client assertion or
// pending request id appears in any field. Reason is an OAuth error code
// or fixed text written by the server, never request input.
package audit

import (
	"log/slog"
	"net/netip"
	"time"
)

// Type says what happened. The values are stable: dashboards and alerts
// may match on them.
type Type string

// Event types. Each names the fields it fills; the others are empty.
const (
	// AuthorizationApproved: a signed-in user approved a client, on the
	// consent page (GrantType authorization_code) or the device page
	// (GrantType device_code). ClientID, UserID, GrantID.
	AuthorizationApproved Type = "authorization.approved"
	// AuthorizationDenied: the user denied a client, or the application
	// refused the signed-in user (Reason access_denied), on the consent
	// or device page. ClientID, UserID when known, GrantType.
	AuthorizationDenied Type = "authorization.denied"
	// TokenIssued: the token endpoint issued tokens for an authorization
	// code, client credentials or an approved device code. ClientID,
	// UserID (empty for client_credentials), GrantID, GrantType.
	TokenIssued Type = "token.issued"
	// TokenRefreshed: a refresh token was rotated for a new pair
	// (GrantType refresh_token). ClientID, UserID, GrantID.
	TokenRefreshed Type = "token.refreshed"
	// ReplayDetected: a used authorization code, or a rotated refresh
	// token after its reuse interval, was presented again by its client;
	// the whole grant was revoked (Outcome success) or its revocation
	// failed (Outcome failure, Reason server_error). GrantType names the
	// replayed credential's grant. ClientID, UserID, GrantID.
	ReplayDetected Type = "replay.detected"
	// TokenRevoked: a client revoked one of its access tokens (RFC 7009).
	// ClientID, UserID, GrantID.
	TokenRevoked Type = "token.revoked"
	// GrantRevoked: a client revoked a refresh token, and with it its
	// whole grant (RFC 7009 §2.1). ClientID, UserID, GrantID.
	GrantRevoked Type = "grant.revoked"
	// ClientRegistered: a client was registered, at /register (IP set) or
	// by OAuthServer.RegisterClient (no IP; also when it replaced a stored
	// registration). ClientID.
	ClientRegistered Type = "client.registered"
	// ClientUpdated: OAuthServer.UpdateClient replaced a registration, or
	// RotateClientSecret gave it a new secret (Reason secret_rotated).
	// ClientID.
	ClientUpdated Type = "client.updated"
	// ClientDeleted: OAuthServer.DeleteClient deleted a client with
	// everything issued to it. ClientID.
	ClientDeleted Type = "client.deleted"
	// ClientsSwept: the idle-client sweep deleted Count dynamically
	// registered clients (the Model does not say which).
	ClientsSwept Type = "clients.swept"
	// ClientAuthenticationFailed: a client failed to authenticate at the
	// token, revocation, introspection or device endpoint. ClientID is the
	// client_id the request claimed (unverified; empty when it named
	// none), Reason the fixed description of the failure.
	ClientAuthenticationFailed Type = "client.authentication_failed"
	// RateLimited: a request was refused 429 by a per-IP rate limit.
	// Reason names the limit: the endpoint, or device_verification.
	RateLimited Type = "rate_limited"
	// MetadataDocumentFetchFailed: a client ID metadata document could not
	// be fetched (Reason fetch_failed) or was invalid (Reason
	// invalid_document). ClientID is the document's URL.
	MetadataDocumentFetchFailed Type = "client_metadata_document.fetch_failed"
)

// Types lists every event type, in the order above.
var Types = []Type{
	AuthorizationApproved, AuthorizationDenied, TokenIssued, TokenRefreshed,
	ReplayDetected, TokenRevoked, GrantRevoked, ClientRegistered,
	ClientUpdated, ClientDeleted, ClientsSwept, ClientAuthenticationFailed,
	RateLimited, MetadataDocumentFetchFailed,
}

// Outcome says how the event ended.
type Outcome string

// Outcomes.
const (
	// Success: what the event names happened.
	Success Outcome = "success"
	// Failure: it was refused or did not complete; Reason says why.
	Failure Outcome = "failure"
)

// Event is one audit record. Fields a Type does not fill are zero.
type Event struct {
	// Type says what happened.
	Type Type
	// Time is when, by the server's clock (Config.Now).
	Time time.Time
	// ClientID is the OAuth client concerned.
	ClientID string
	// UserID is the user concerned, as the application's sign-in named
	// them; empty for a client acting for itself.
	UserID string
	// GrantID identifies the grant (the consent, device approval or
	// client credentials exchange) the tokens descend from; it is an
	// identifier, not a credential.
	GrantID string
	// GrantType is the OAuth grant type concerned (authorization_code,
	// refresh_token, client_credentials, or RFC 8628's device_code URN).
	GrantType string
	// IP is the client's address as the rate limiter computes it
	// (RateLimits.TrustedProxies honoured); invalid for events that no
	// HTTP request caused (OAuthServer.DeleteClient, the sweep).
	IP netip.Addr
	// Outcome is Success or Failure.
	Outcome Outcome
	// Reason is an OAuth error code or fixed text of the server's, never
	// request input.
	Reason string
	// Count is the number of clients a ClientsSwept event deleted.
	Count int
}

// LogValue renders the event as a group of slog attributes, leaving out
// empty fields, so that slog.Any("event", e) logs it structured.
func (e Event) LogValue() slog.Value {
	attrs := make([]slog.Attr, 0, 10)
	attrs = append(attrs, slog.String("type", string(e.Type)), slog.Time("time", e.Time))
	for _, f := range []struct{ k, v string }{
		{"client_id", e.ClientID}, {"user_id", e.UserID}, {"grant_id", e.GrantID},
		{"grant_type", e.GrantType}, {"outcome", string(e.Outcome)}, {"reason", e.Reason},
	} {
		if f.v != "" {
			attrs = append(attrs, slog.String(f.k, f.v))
		}
	}
	if e.IP.IsValid() {
		attrs = append(attrs, slog.String("ip", e.IP.String()))
	}
	if e.Type == ClientsSwept {
		attrs = append(attrs, slog.Int("count", e.Count))
	}
	return slog.GroupValue(attrs...)
}
