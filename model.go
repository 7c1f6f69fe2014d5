package mcpoauth

import (
	"context"

	"github.com/mcpoauth/mcpoauth/internal/record"
)

// The records a Model stores. They are aliases of the internal record types, so
// a Model written against this package and the server share one definition.
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
)

// The token kinds.
const (
	AccessToken  = record.AccessToken
	RefreshToken = record.RefreshToken
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
	// rotated refresh token (Used set), or ErrNotFound. It is on the path of
	// every protected request: keep it fast.
	GetToken(ctx context.Context, token Digest) (*Token, error)
	// RotateRefreshToken atomically marks the refresh token used and saves the
	// tokens that replace it, all or nothing. It answers ErrAlreadyUsed if the
	// token was rotated before, ErrNotFound if it is unknown, not a refresh
	// token, or belongs to another client. A rotated token is kept (Used)
	// until it expires, so a replay can be detected.
	RotateRefreshToken(ctx context.Context, token Digest, clientID string, issued ...*Token) error
	// RevokeToken deletes a token of either kind that belongs to clientID and
	// returns it; ErrNotFound (and no change) otherwise.
	RevokeToken(ctx context.Context, token Digest, clientID string) (*Token, error)
	// RevokeGrant deletes every token and authorization code whose GrantID is
	// grantID. An empty grantID matches nothing.
	RevokeGrant(ctx context.Context, grantID string) error
}

// ClientRegistrar is the optional capability a Model needs for RFC 7591
// dynamic client registration and for RegisterClient. New refuses
// DynamicClientRegistration with a Model that lacks it.
type ClientRegistrar interface {
	// RegisterClient stores a new client; ErrConflict if its ID exists.
	RegisterClient(ctx context.Context, client *Client) error
}
