// Package record defines the records the authorization server stores
// through its Model, and the sentinel errors a Model returns. A Model author
// reads their fields here; the root package names each one too
// (mcpoauth.Client is record.Client), so code that implements a Model may
// use either name and never needs to convert.
//
// No record ever holds a raw credential: codes, tokens, secrets and pending
// request ids are stored as SHA-256 digests (see Digest), so a leaked database
// yields nothing that can be presented to the server.
package record

import (
	"encoding/hex"
	"errors"
	"time"

	"github.com/mcpoauth/mcpoauth/metadata"
)

// Sentinel errors a Model returns. Callers test them with errors.Is; a Model may
// wrap them with context.
var (
	// ErrNotFound means no record matches (unknown, deleted, or scoped to
	// another client).
	ErrNotFound = errors.New("mcpoauth: record not found")
	// ErrAlreadyUsed means a one-time credential (authorization code, refresh
	// token) was consumed before. The server learns the grant to revoke from
	// the record it read before consuming.
	ErrAlreadyUsed = errors.New("mcpoauth: credential already used")
	// ErrConflict means a record with the same key already exists.
	ErrConflict = errors.New("mcpoauth: record already exists")
)

// Digest is the SHA-256 digest of a credential (code, token, client secret,
// pending request id). Models key records by it; the raw value never reaches
// storage.
type Digest [32]byte

// String returns the digest in lowercase hex. A digest is not a secret, but it
// is still an identifier: log it only where a record must be correlated.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// IsZero reports whether the digest is unset (all zero bytes).
func (d Digest) IsZero() bool { return d == Digest{} }

// Client is a registered OAuth client: its RFC 7591 metadata plus what the
// server issued. A public client (token_endpoint_auth_method "none") has a zero
// SecretDigest.
type Client struct {
	// ID is the client_id.
	ID string
	// SecretDigest is the SHA-256 digest of the client secret; zero for a
	// public client.
	SecretDigest Digest
	// SecretExpiresAt is when the secret stops being accepted; zero means never.
	SecretExpiresAt time.Time
	// IssuedAt is when the client_id was issued.
	IssuedAt time.Time
	// LastUsedAt is when a token was last issued to the client, to the day:
	// the server sets it to IssuedAt at registration and records a use
	// (mcpoauth.ClientUsageRecorder) only once it is a day old, so that issuing
	// tokens does not write the client every time. A dynamically registered
	// client unused for mcpoauth.Config.ClientIdleLifetime is deleted. Zero means
	// unknown: such a client is never deleted for idleness.
	LastUsedAt time.Time
	// Metadata is the client's registered metadata, after the server applied
	// RFC 7591 defaults.
	Metadata metadata.ClientMetadata
	// PreRegistered marks a client the operator registered
	// (OAuthServer.RegisterClient): a static client, vetted by whoever wrote
	// its configuration. A client that registered itself at /register is
	// not, and neither is a client ID metadata document's. Only a
	// pre-registered client's redirect URI receives errors found before the
	// user acted; any other client's are shown on the server's error page,
	// so that the server is no open redirector (RFC 9700 §4.11.2).
	PreRegistered bool
	// AuthMethodDefaulted records that the registration named no
	// token_endpoint_auth_method: the server recorded client_secret_basic
	// (RFC 7591 §2) and accepts client_secret_post as well, since clients in
	// the wild send their secret in the body. A client that named a method
	// must use it.
	AuthMethodDefaulted bool
}

// IsPublic reports whether the client does not authenticate: it has no
// secret, and does not sign assertions (token_endpoint_auth_method
// private_key_jwt, RFC 7523 §2.2).
func (c *Client) IsPublic() bool {
	return c.SecretDigest.IsZero() && c.Metadata.TokenEndpointAuthMethod != "private_key_jwt"
}

// HasGrantType reports whether the client registered the grant type.
func (c *Client) HasGrantType(grantType string) bool {
	for _, g := range c.Metadata.GrantTypes {
		if g == grantType {
			return true
		}
	}
	return false
}

// AuthorizationRequest is an authorization request that passed validation at
// /authorize and waits for the user's decision on the consent page. It is
// consumed exactly once, by the approval or the denial.
type AuthorizationRequest struct {
	// ID is the digest of the opaque request id carried by the consent URL.
	ID Digest
	// BrowserDigest is the digest of the browser-binding cookie set by
	// /authorize: the decision must come from the same browser.
	BrowserDigest Digest
	ClientID      string
	// RedirectURI is the redirect URI the response goes to (resolved when the
	// request omitted it).
	RedirectURI string
	// RedirectURIProvided records whether the request named redirect_uri; if so
	// the token request must repeat it (OAuth 2.1 §10.2, RFC 6749 §4.1.3).
	RedirectURIProvided bool
	Scopes              []string
	// Resource is the canonical RFC 8707 resource the tokens will be bound to.
	Resource      string
	State         string
	CodeChallenge string
	ExpiresAt     time.Time
	// PromptConsent records that the request's prompt parameter asked for
	// the user to be asked (consent, login or select_account; OpenID
	// Connect Core §3.1.2.1): remembered consent does not apply to it.
	PromptConsent bool
}

// AuthorizationCode is an issued authorization code. Models keep a consumed
// code (with Used set) until it expires, so that a replay can be recognised
// and the grant revoked.
type AuthorizationCode struct {
	// Digest is the SHA-256 digest of the code.
	Digest              Digest
	ClientID            string
	UserID              string
	GrantID             string
	RedirectURI         string
	RedirectURIProvided bool
	Scopes              []string
	Resource            string
	CodeChallenge       string
	ExpiresAt           time.Time
	// GrantExpiresAt caps the lifetime of every token of the grant: refresh
	// tokens are never rotated past it.
	GrantExpiresAt time.Time
	// Used is set once the code was redeemed.
	Used bool
}

// TokenKind tells an access token from a refresh token.
type TokenKind uint8

// The token kinds.
const (
	AccessToken TokenKind = iota + 1
	RefreshToken
)

// String names the kind as RFC 7009's token_type_hint does.
func (k TokenKind) String() string {
	switch k {
	case AccessToken:
		return "access_token"
	case RefreshToken:
		return "refresh_token"
	}
	return "unknown"
}

// Token is an issued access or refresh token. Records returned by a Model are
// shared and must be treated as read-only.
type Token struct {
	// Digest is the SHA-256 digest of the token.
	Digest   Digest
	Kind     TokenKind
	ClientID string
	// UserID is empty for tokens that act for no user (client credentials).
	UserID string
	// GrantID names the grant (consent, client-credentials exchange, device
	// approval) the token descends from; never empty.
	GrantID  string
	Scopes   []string
	Resource string
	// JKT is the RFC 7638 SHA-256 thumbprint (base64url) of the DPoP key
	// the token is bound to (RFC 9449 §6: cnf.jkt); empty for a token that
	// is not bound. A bound access token is accepted only with a proof of
	// that key, and a bound refresh token is rotated only with one.
	JKT       string
	IssuedAt  time.Time
	ExpiresAt time.Time
	// GrantExpiresAt is the absolute end of the grant; rotation never
	// extends a refresh token past it.
	GrantExpiresAt time.Time
	// RotatedAt is when a refresh token was first rotated; zero while it
	// was not. A rotated token is kept until it expires, so that a replay
	// can be recognised (and, within the reuse interval, a concurrent
	// refresh forgiven).
	RotatedAt time.Time
}

// Rotated reports whether the token is a refresh token rotated before.
func (t *Token) Rotated() bool { return !t.RotatedAt.IsZero() }

// DeviceStatus is the state of an RFC 8628 device authorization: pending
// until the user approves or denies it on the verification page.
type DeviceStatus uint8

// The device authorization states. A pending authorization is decided once;
// a decision is final.
const (
	DevicePending DeviceStatus = iota + 1
	DeviceApproved
	DeviceDenied
)

// String names the status.
func (s DeviceStatus) String() string {
	switch s {
	case DevicePending:
		return "pending"
	case DeviceApproved:
		return "approved"
	case DeviceDenied:
		return "denied"
	}
	return "unknown"
}

// DevicePoll is the polling bookkeeping of a device authorization: when the
// device last polled the token endpoint, and the interval it must keep
// (RFC 8628 §3.5: slow_down raises it by five seconds for this and every
// later poll). The server updates it with a compare-and-set, so a poll can
// never overwrite the user's decision.
type DevicePoll struct {
	// LastPolledAt is when the device last polled; zero before its first poll.
	LastPolledAt time.Time
	// Interval is the least time the device must wait between polls.
	Interval time.Duration
}

// DeviceDecision is the user's answer to a pending device authorization.
type DeviceDecision struct {
	// Status is DeviceApproved or DeviceDenied.
	Status DeviceStatus
	// UserID is the signed-in user who decided.
	UserID string
	// GrantExpiresAt is the absolute end of the grant an approval starts;
	// zero for a denial.
	GrantExpiresAt time.Time
}

// DeviceAuthorization is an RFC 8628 device authorization: created at the
// device authorization endpoint, decided by the user on the verification
// page, and consumed by the device's successful poll. Neither code is
// stored: both are kept as digests (the user code is a credential too,
// since whoever holds it can approve).
type DeviceAuthorization struct {
	// DeviceCodeDigest is the SHA-256 digest of the device_code.
	DeviceCodeDigest Digest
	// UserCodeDigest is the SHA-256 digest of the normalised user_code
	// (eight uppercase letters, no dash).
	UserCodeDigest Digest
	ClientID       string
	Scopes         []string
	// Resource is the canonical RFC 8707 resource the tokens will be bound to.
	Resource string
	// GrantID names the grant an approval starts; every token issued for
	// this authorization carries it.
	GrantID string
	Status  DeviceStatus
	// UserID is the user who decided; empty while pending.
	UserID string
	DevicePoll
	// ExpiresAt ends the authorization, decided or not (RFC 8628 §3.2
	// expires_in).
	ExpiresAt time.Time
	// GrantExpiresAt caps the lifetime of every token of the grant; set by
	// the approval.
	GrantExpiresAt time.Time
}

// Identity is who a user is at an upstream identity provider (OpenID
// Connect or plain OAuth 2 sign-in, package upstream): stored with the
// grant the user approved, so that tools learn it from the access token
// (bearer.AuthInfo.Identity) on every request and after every refresh.
type Identity struct {
	// Issuer and Subject together identify the user at the provider
	// (OpenID Connect Core §5.7: the only stable identifier).
	Issuer  string `json:"iss"`
	Subject string `json:"sub"`
	Email   string `json:"email,omitempty"`
	Name    string `json:"name,omitempty"`
	// Claims are further claims of the provider the application chose to
	// keep (upstream.Options.Claims); values are JSON values.
	Claims map[string]any `json:"claims,omitempty"`
}

// Grant is a user's approval of a client (on the consent page or the device
// page), stored when it is made, so that who approved it, and as whom at the
// upstream provider, can be read later from any of its tokens' GrantID.
// Only LastUsedAt changes once a grant is saved; RevokeGrant deletes one.
type Grant struct {
	// ID is the GrantID of every code and token the grant issues.
	ID       string
	ClientID string
	UserID   string
	Scopes   []string
	// Resource is the canonical RFC 8707 resource its tokens are bound to.
	Resource  string
	CreatedAt time.Time
	// ExpiresAt is the absolute end of the grant (GrantExpiresAt of its
	// tokens): a Model may delete the grant after it.
	ExpiresAt time.Time
	// LastUsedAt is when tokens of the grant were last issued (a code
	// redeemed, a refresh, a device poll); zero before the first. It is
	// the one field that changes after the grant is saved
	// (GrantStore.RecordGrantUse).
	LastUsedAt time.Time
	// Identity is the user at the upstream provider; nil when the
	// application signs users in itself.
	Identity *Identity
}

// UpstreamToken is an entry of the upstream token vault (package upstream):
// the tokens an upstream provider issued for a user, sealed (AES-256-GCM)
// before they reach the Model, so storage never holds them in the clear. An
// entry belongs first to a sign-in session and then, once the user approves
// a client, to that grant; it is deleted with the grant.
type UpstreamToken struct {
	// ID is the entry's key, chosen by the vault.
	ID string
	// GrantID and ClientID are set once the entry belongs to a grant:
	// RevokeGrant and DeleteClient delete it then.
	GrantID  string
	ClientID string
	// Sealed is the ciphertext; the Model stores it as it is.
	Sealed []byte
	// Version grows by one with every replacement, for compare-and-set
	// between replicas.
	Version int64
	// LeaseUntil is set while a replica refreshes the tokens upstream, so
	// that the others wait for its result instead of refreshing too.
	LeaseUntil time.Time
	// ExpiresAt is when the entry may be deleted (the session's or the
	// grant's end).
	ExpiresAt time.Time
}
