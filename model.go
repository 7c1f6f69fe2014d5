package mcpoauth

import (
	"context"
	"strconv"
	"time"

	"github.com/mcpoauth/mcpoauth/internal/secret"
	"github.com/mcpoauth/mcpoauth/record"
)

// The records a Model stores. Each is the type of the same name in package
// record, where its fields are documented (go doc
// github.com/mcpoauth/mcpoauth/record.Client); the two names are one type.
type (
	// Client is a registered OAuth client.
	Client = record.Client
	// AuthorizationRequest is a validated authorization request awaiting the
	// user's decision.
	AuthorizationRequest = record.AuthorizationRequest
	// AuthorizationCode is an issued authorization code.
	AuthorizationCode = record.AuthorizationCode
	// Token is an issued access or refresh token.
	Token = record.Token
	// TokenKind tells an access token from a refresh token.
	TokenKind = record.TokenKind
	// Digest is the SHA-256 digest under which a credential is stored.
	Digest = record.Digest
	// DeviceAuthorization is an RFC 8628 device authorization awaiting, or
	// carrying, the user's decision.
	DeviceAuthorization = record.DeviceAuthorization
	// DeviceStatus is the state of a device authorization.
	DeviceStatus = record.DeviceStatus
	// DevicePoll is the polling bookkeeping of a device authorization.
	DevicePoll = record.DevicePoll
	// DeviceDecision is the user's answer to a pending device authorization.
	DeviceDecision = record.DeviceDecision
	// Identity is who a user is at an upstream identity provider.
	Identity = record.Identity
	// Grant is a user's approval of a client, stored by a GrantStore.
	Grant = record.Grant
	// UpstreamToken is a sealed entry of the upstream token vault.
	UpstreamToken = record.UpstreamToken
)

// The token kinds.
const (
	AccessToken  = record.AccessToken
	RefreshToken = record.RefreshToken
)

// The device authorization states: pending until the user decides; a
// decision is final.
const (
	DevicePending  = record.DevicePending
	DeviceApproved = record.DeviceApproved
	DeviceDenied   = record.DeviceDenied
)

// Sentinel errors a Model returns (wrapped or not); the server tests them with
// errors.Is. Any other error from a Model is a storage failure: the client gets
// server_error and ErrorHandler gets the error.
var (
	// ErrNotFound: no record matches the key, or the record belongs to another
	// client.
	ErrNotFound = record.ErrNotFound
	// ErrAlreadyUsed: the one-time credential was consumed before.
	ErrAlreadyUsed = record.ErrAlreadyUsed
	// ErrConflict: a record with the same key exists already.
	ErrConflict = record.ErrConflict
)

// Model is the storage contract of the authorization server. MemoryModel is
// the embedded default; the postgres package provides a production one; any
// other store can implement it.
//
// The contract, which modeltest.Run checks:
//
//   - Keys are SHA-256 digests. The server never passes a raw code, token,
//     secret or request id to a Model, and a Model needs none.
//   - Records passed to Save methods are owned by the Model afterwards; records
//     returned are read-only for the caller. A Model may return the stored
//     pointer itself.
//   - Expiry is the server's business: a Model may return a record past its
//     ExpiresAt, and may delete it any time after. Models should sweep expired
//     records so storage does not grow without bound.
//   - Every Consume and Rotate method is atomic: of N concurrent calls on one
//     credential exactly one succeeds. A read followed by a write is not
//     atomic; use a compare-and-set (a conditional UPDATE, DELETE ... RETURNING,
//     or one lock around both).
//   - Methods scoped to a client ID act only on records of that client and
//     answer ErrNotFound for another client's record, changing nothing. The
//     client is checked before use: another client's used code is
//     ErrNotFound, never ErrAlreadyUsed (else a stranger could get a grant
//     revoked).
//   - Saving a record whose key exists is ErrConflict.
//   - A nil record, and a record whose key digest is zero (the digest of
//     nothing: the server never makes one), are refused, and nothing
//     stored, with an error that wraps none of the sentinel errors: a
//     caller's mistake, not a taken key or a revoked grant. SaveTokens
//     refuses the whole batch.
//   - After RevokeGrant returns, no token of the grant is returned by GetToken,
//     including tokens saved by a consume or rotation that raced with it, and
//     a later save of a token or code of that grant fails with ErrNotFound
//     (the revoked grant is remembered at least until its tokens would have
//     expired).
//   - A context deadline or cancellation is honoured.
type Model interface {
	// GetClient returns the client with this client_id, or ErrNotFound.
	GetClient(ctx context.Context, clientID string) (*Client, error)

	// SaveAuthorizationRequest stores a validated authorization request under
	// req.ID until the user decides.
	SaveAuthorizationRequest(ctx context.Context, req *AuthorizationRequest) error
	// GetAuthorizationRequest returns a pending request without consuming it,
	// for the consent page; ErrNotFound if unknown or consumed.
	GetAuthorizationRequest(ctx context.Context, id Digest) (*AuthorizationRequest, error)
	// ConsumeAuthorizationRequest atomically removes and returns a pending
	// request; ErrNotFound if unknown or consumed already.
	ConsumeAuthorizationRequest(ctx context.Context, id Digest) (*AuthorizationRequest, error)

	// SaveAuthorizationCode stores an issued authorization code.
	SaveAuthorizationCode(ctx context.Context, code *AuthorizationCode) error
	// GetAuthorizationCode returns a code, consumed or not (Used tells), or
	// ErrNotFound. The server validates a redemption with it before
	// consuming, so that a bad request burns nothing.
	GetAuthorizationCode(ctx context.Context, code Digest) (*AuthorizationCode, error)
	// ConsumeAuthorizationCode atomically marks the code used and saves the
	// tokens issued for it, all or nothing. It answers ErrAlreadyUsed if the
	// code was consumed before, ErrNotFound if it is unknown or belongs to
	// another client. A consumed code is kept (Used) until it expires.
	ConsumeAuthorizationCode(ctx context.Context, code Digest, clientID string, issued ...*Token) error

	// SaveTokens stores newly issued tokens, all or nothing.
	SaveTokens(ctx context.Context, tokens ...*Token) error
	// GetToken returns an access or refresh token by digest, including a
	// rotated refresh token (RotatedAt set), or ErrNotFound. It is on the path of
	// every protected request: keep it fast.
	GetToken(ctx context.Context, token Digest) (*Token, error)
	// RotateRefreshToken atomically rotates the refresh token and saves the
	// tokens that replace it, all or nothing. A token not rotated before
	// gets RotatedAt = at. A token rotated before is rotated again (its
	// RotatedAt unchanged) only if reuseSince is not zero and its RotatedAt
	// is not before reuseSince: the reuse interval, in which a concurrent
	// refresh by the same client is not a replay. Otherwise it answers
	// ErrAlreadyUsed. It answers ErrNotFound if the token is unknown, not a
	// refresh token, or belongs to another client. A rotated token is kept
	// until it expires, so a replay can be detected. In SQL: UPDATE ... SET
	// rotated_at = COALESCE(rotated_at, $at) WHERE ... AND (rotated_at IS
	// NULL OR rotated_at >= $reuseSince), and the inserts, in one
	// transaction.
	RotateRefreshToken(ctx context.Context, token Digest, clientID string, at, reuseSince time.Time, issued ...*Token) error
	// RevokeToken deletes a token of either kind that belongs to clientID and
	// returns it; ErrNotFound (and no change) otherwise.
	RevokeToken(ctx context.Context, token Digest, clientID string) (*Token, error)
	// RevokeGrant deletes every token and authorization code whose GrantID is
	// grantID. An empty grantID matches nothing.
	RevokeGrant(ctx context.Context, grantID string) error
}

// ClientRegistrar is the optional capability a Model needs for RFC 7591
// dynamic client registration and for the server's client administration
// (RegisterClient, UpdateClient, DeleteClient, RotateClientSecret). New
// refuses dynamic registration with a Model that lacks it, unless
// DisableDynamicClientRegistration.
//
// Updating and deleting belong to this one capability, not to a sibling one
// found by a second type assertion: registering a static client again (every
// restart of every replica) is an update, and a server that hands out
// client credentials must be able to take them back (a leaked secret, a
// retired service). A Model that could register but not delete would leave
// the operator no way to end a client short of editing its storage.
//
// The contract, on top of Model's:
//
//   - RegisterClient refuses a client with an empty ID, which names no
//     client (no record belongs to no client), or with an ID that is not
//     valid UTF-8 or holds a NUL byte, which no database text column
//     stores and every lookup answers ErrNotFound for, as a save refuses a
//     zero digest: nothing stored, an error that wraps no sentinel.
//   - UpdateClient replaces the whole stored record (secret digest, secret
//     expiry, issue time, metadata) in one step: a concurrent GetClient
//     sees the old record or the new one, never a mix.
//   - DeleteClient removes the client and, in the same atomic step, every
//     record whose ClientID is the client's: tokens (used or not),
//     authorization codes (used or not), pending authorization requests,
//     and device authorizations if the Model is a DeviceStore. Records of
//     other clients are untouched.
//   - A SaveTokens of the client that races DeleteClient either lands
//     before it (and is removed by it) or returns only once GetClient
//     answers ErrNotFound for the client. The server checks the client
//     again after saving client-credentials tokens (whose save consumes
//     nothing the delete removed), so that a token saved after the delete
//     is never handed out.
type ClientRegistrar interface {
	// RegisterClient stores a new client; ErrConflict if its ID exists.
	RegisterClient(ctx context.Context, client *Client) error
	// UpdateClient replaces the stored client whose ID is client.ID with
	// client; ErrNotFound, and no change, if there is none.
	UpdateClient(ctx context.Context, client *Client) error
	// DeleteClient removes the client with this client_id and everything
	// issued to it (tokens, codes, pending requests, device
	// authorizations), atomically; ErrNotFound, and no change, if there is
	// no such client.
	DeleteClient(ctx context.Context, clientID string) error
}

// DeviceStore is the optional capability a Model needs for the RFC 8628
// device authorization grant (GrantDeviceCode). New refuses that grant with
// a Model that lacks it, naming the missing methods. MemoryModel implements
// it.
//
// The contract, on top of Model's (digest keys, records owned by the Model
// once saved and read-only once returned, context honoured):
//
//   - A device authorization is pending until ResolveDeviceAuthorization
//     decides it, once: of N concurrent resolutions exactly one succeeds.
//   - The poll bookkeeping (RecordDevicePoll) is a compare-and-set: it
//     applies only while the record is still pending and its DevicePoll is
//     the one the server read. A poll that read "pending" just before the
//     user decided must fail harmlessly, never write "pending" back (the
//     lost update that would let a denied flow be approved later). Never
//     save the whole record back; in SQL: UPDATE ... SET last_polled_at=$,
//     interval=$ WHERE device_code=$ AND client_id=$ AND status='pending'
//     AND last_polled_at IS NOT DISTINCT FROM $ AND interval=$.
//   - ConsumeDeviceAuthorization is atomic and client-scoped like
//     ConsumeAuthorizationCode: of N concurrent consumptions of one approved
//     device code exactly one succeeds, and it saves the issued tokens all
//     or nothing (DELETE ... WHERE status='approved' ... RETURNING, and the
//     token inserts, in one transaction).
//   - Methods that take a client ID answer ErrNotFound for another client's
//     record and change nothing.
//   - Both digests are unique among stored records: saving a record whose
//     device code or user code digest is taken is ErrConflict, so that a
//     user code names one authorization. A record with either digest zero
//     is refused as Model's saves refuse one. Records are removed when
//     consumed or deleted, and should be swept once expired.
type DeviceStore interface {
	// SaveDeviceAuthorization stores a new pending device authorization;
	// ErrConflict if its DeviceCodeDigest or UserCodeDigest is taken.
	SaveDeviceAuthorization(ctx context.Context, d *DeviceAuthorization) error
	// GetDeviceAuthorization returns the device authorization with this
	// device code digest, whatever its status, or ErrNotFound.
	GetDeviceAuthorization(ctx context.Context, deviceCode Digest) (*DeviceAuthorization, error)
	// GetDeviceAuthorizationByUserCode returns the device authorization with
	// this (normalised) user code digest, whatever its status, or
	// ErrNotFound. The verification page shows it to the user.
	GetDeviceAuthorizationByUserCode(ctx context.Context, userCode Digest) (*DeviceAuthorization, error)
	// ResolveDeviceAuthorization atomically turns the pending authorization
	// with this user code digest into decision.Status (approved or denied),
	// recording decision.UserID and decision.GrantExpiresAt; ErrNotFound if
	// there is no pending authorization with this user code (unknown, or
	// decided before).
	ResolveDeviceAuthorization(ctx context.Context, userCode Digest, decision DeviceDecision) error
	// RecordDevicePoll atomically replaces the poll bookkeeping of the
	// authorization with next, only if it belongs to clientID, is still
	// pending, and its DevicePoll equals seen (LastPolledAt by time.Equal,
	// Interval exactly); ErrNotFound, and no change, otherwise.
	RecordDevicePoll(ctx context.Context, deviceCode Digest, clientID string, seen, next DevicePoll) error
	// ConsumeDeviceAuthorization atomically removes the approved
	// authorization of clientID with this device code digest and saves the
	// tokens issued for it, all or nothing. It is the one method that
	// compares times: the authorization must not have expired at now, so
	// that a poll that read it just before its expiry cannot redeem it
	// after. ErrNotFound, and no change, if there is no such
	// authorization (unknown, consumed before, another client's, not
	// approved, or expired); ErrConflict if an issued token's digest is
	// taken; an error wrapping ErrNotFound if the grant was revoked.
	ConsumeDeviceAuthorization(ctx context.Context, deviceCode Digest, clientID string, now time.Time, issued ...*Token) error
	// DeleteDeviceAuthorization removes the authorization of clientID with
	// this device code digest, whatever its status; ErrNotFound, and no
	// change, if there is none. The server calls it once a denial was
	// reported to the device.
	DeleteDeviceAuthorization(ctx context.Context, deviceCode Digest, clientID string) error
}

// ClientUsageRecorder is the optional capability a Model needs for the
// server to forget dynamically registered clients nobody uses: Claude and
// other MCP clients register a new client on every fresh connection, so
// without it the clients of /register pile up for ever. The server records
// a use when it issues a token (never when it verifies one: the bearer path
// does not write), and every hour deletes the dynamically registered
// clients unused for Config.ClientIdleLifetime. A Model without it keeps
// every client; New then logs a warning while dynamic registration is on.
//
// It is a capability of its own, found by type assertion, rather than more
// methods of ClientRegistrar, so that a ClientRegistrar written before it
// keeps working. The idle period is an argument, not a Model option: the
// server's Config is the one place it is set, and a Model needs no policy
// of its own to honour it.
//
// The contract, on top of ClientRegistrar's:
//
//   - RecordClientUse never moves LastUsedAt back: a use older than the
//     stored one changes nothing (in SQL: SET last_used_at =
//     GREATEST(last_used_at, $at)).
//   - DeleteIdleClients deletes a client as DeleteClient does (the client
//     and everything issued to it, in one atomic step), and only if, when
//     deleted, it is not PreRegistered and its LastUsedAt is not zero and
//     before idleSince. A RecordClientUse that races it either lands first
//     (and the client stays) or answers ErrNotFound.
type ClientUsageRecorder interface {
	// RecordClientUse sets the LastUsedAt of the client with this
	// client_id to at, unless it is later already; ErrNotFound, and no
	// change, if there is no such client. The server calls it after
	// issuing tokens, at most once a day per client.
	RecordClientUse(ctx context.Context, clientID string, at time.Time) error
	// DeleteIdleClients deletes every client that is not PreRegistered and
	// whose LastUsedAt is not zero and before idleSince, with everything
	// issued to it (as DeleteClient), and returns how many it deleted.
	DeleteIdleClients(ctx context.Context, idleSince time.Time) (int, error)
}

// AssertionReplayStore is the optional capability that makes private_key_jwt
// client authentication (RFC 7523 §2.2, OpenID Connect Core §9) possible: it
// remembers the jti of every client assertion the server accepted until the
// assertion expires, so that one presented again is refused, on every
// replica that shares the Model. A Model without it cannot enable
// private_key_jwt: the server neither advertises nor accepts it.
//
// The contract:
//
//   - UseAssertionID records (clientID, jti) until expiresAt and returns
//     nil, or returns ErrAlreadyUsed, changing nothing, if the pair is
//     recorded already. Of N concurrent calls with one pair exactly one
//     returns nil.
//   - The same jti from two clients is two pairs.
//   - A pair may be forgotten once its expiresAt has passed (the sweep),
//     not before: the server refuses an expired assertion itself, so a
//     pair need not be compared with any clock when it is used.
//   - It stores AssertionIDDigest(clientID, jti), never the jti itself.
//
// The jwt-bearer grant (GrantJWTBearer) needs it too, and records each
// identity assertion's jti under a clientID argument made of a NUL byte,
// "id-jag:" and the identity provider's issuer, which no client ID can be (RFC 6749 Appendix A.1: client IDs are printable ASCII).
type AssertionReplayStore interface {
	UseAssertionID(ctx context.Context, clientID, jti string, expiresAt time.Time) error
}

// AssertionIDDigest is the key under which an AssertionReplayStore records
// a client's assertion id: the SHA-256 digest of clientID's length in
// decimal, a colon, clientID and jti, so that neither a leaked store nor a
// long jti costs anything, and two clients' ids never collide (the length
// fixes where clientID ends, whatever bytes either holds).
func AssertionIDDigest(clientID, jti string) Digest {
	return secret.Digest(strconv.Itoa(len(clientID)) + ":" + clientID + jti)
}

// GrantStore is the optional capability that stores grants as records
// (record.Grant): who approved which client, for what, and as whom at the
// upstream identity provider. With it, the server saves a grant when a user
// approves a client on the consent or the device page, and RequireBearerAuth
// tells tools the user's upstream identity (bearer.AuthInfo.Identity).
//
// The contract, on top of Model's:
//
//   - SaveGrant stores a new grant; ErrConflict if its ID exists, and an
//     error wrapping ErrNotFound if the grant was revoked (RevokeGrant may
//     run before the save, the approval racing a revocation).
//   - A grant with an empty ID is refused, and nothing stored, with an
//     error that wraps none of the sentinel errors: no call could name it
//     (RevokeGrant of "" matches nothing), and the server never makes one,
//     so it is a caller's mistake, not a revoked grant or a taken ID.
//   - GetGrant returns the grant, or ErrNotFound once RevokeGrant deleted
//     it, or after DeleteClient deleted its client.
//   - ListUserGrants returns every stored grant of the user (any client),
//     and ListClientGrants every stored grant of the client (any user), in
//     no particular order; none, and no error, for an unknown one. They
//     may include grants past their ExpiresAt.
//   - RecordGrantUse sets the grant's LastUsedAt to at unless it is later
//     already (in SQL: GREATEST), changing nothing else; ErrNotFound for
//     an unknown or revoked grant. The server calls it when it issues
//     tokens of the grant, never on the bearer path. Concurrent uses of
//     one grant all succeed and the latest is kept (in SQL: one UPDATE at
//     READ COMMITTED, which re-reads a row another transaction changed,
//     where a stricter isolation fails with a serialization error); one
//     racing RevokeGrant lands before it or answers ErrNotFound.
//   - A grant past its ExpiresAt may be swept.
//
// A user's grants are what remembered consent (ApproveRemembered) compares
// a new request with, and what a "connected apps" page lists
// (OAuthServer.UserGrants); a client's are what RevokeClientGrants ends.
type GrantStore interface {
	SaveGrant(ctx context.Context, g *Grant) error
	GetGrant(ctx context.Context, grantID string) (*Grant, error)
	ListUserGrants(ctx context.Context, userID string) ([]*Grant, error)
	ListClientGrants(ctx context.Context, clientID string) ([]*Grant, error)
	RecordGrantUse(ctx context.Context, grantID string, at time.Time) error
}

// UpstreamTokenStore is the optional capability that keeps the upstream
// token vault of package upstream: the upstream provider's tokens for each
// grant, sealed by the vault before they reach the Model.
//
// The contract, on top of Model's:
//
//   - SaveUpstreamToken stores a new entry; ErrConflict if its ID exists,
//     and an error wrapping ErrNotFound if its GrantID names a revoked
//     grant. An entry with an empty ID is refused as SaveGrant refuses a
//     grant with one: nothing stored, an error that wraps no sentinel.
//   - ReplaceUpstreamToken replaces the entry whose ID is t.ID only if the
//     stored Version is version (a compare-and-set), storing t as it is;
//     ErrConflict, and no change, if the stored version differs;
//     ErrNotFound if there is no entry. A replacement whose GrantID names
//     a revoked grant is a save of that grant's entry, refused as
//     SaveUpstreamToken refuses one: an error wrapping ErrNotFound, and no
//     change, whatever the stored version; one racing RevokeGrant lands
//     before it (and the entry is deleted) or is refused.
//   - ConsumeUpstreamToken atomically removes and returns the entry; of N
//     concurrent calls exactly one gets it, the others ErrNotFound.
//   - RevokeGrant deletes the entries whose GrantID is the grant's, and
//     DeleteClient those whose ClientID is the client's.
//   - An entry past its ExpiresAt may be swept.
type UpstreamTokenStore interface {
	SaveUpstreamToken(ctx context.Context, t *UpstreamToken) error
	GetUpstreamToken(ctx context.Context, id string) (*UpstreamToken, error)
	ReplaceUpstreamToken(ctx context.Context, t *UpstreamToken, version int64) error
	ConsumeUpstreamToken(ctx context.Context, id string) (*UpstreamToken, error)
}
