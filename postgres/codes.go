package postgres

import (
	"context"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/internal/sqlmodel"
)

// SaveAuthorizationCode stores an issued authorization code; ErrConflict if
// the digest is taken, and an error wrapping ErrNotFound if its grant was
// revoked.
func (m *Model) SaveAuthorizationCode(ctx context.Context, code *mcpoauth.AuthorizationCode) error {
	if err := sqlmodel.CheckSave(ctx, errs, code, func(c *mcpoauth.AuthorizationCode) bool { return c.Digest.IsZero() }); err != nil {
		return err
	}
	return m.insertLocked(ctx, "save authorization code", lockKeys(lockClassGrant, code.GrantID), errs.CodeConflict,
		`INSERT INTO mcpoauth_authorization_codes
			(digest, client_id, user_id, grant_id, redirect_uri, redirect_uri_provided, scopes, resource, code_challenge, expires_at, grant_expires_at)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11
		WHERE NOT EXISTS (SELECT 1 FROM mcpoauth_revoked_grants WHERE grant_id = $4)`,
		code.Digest[:], code.ClientID, code.UserID, code.GrantID, code.RedirectURI, code.RedirectURIProvided,
		nonNil(code.Scopes), code.Resource, code.CodeChallenge, code.ExpiresAt, code.GrantExpiresAt)
}

// GetAuthorizationCode returns a code, consumed or not (Used tells), or
// ErrNotFound.
func (m *Model) GetAuthorizationCode(ctx context.Context, code mcpoauth.Digest) (*mcpoauth.AuthorizationCode, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c := &mcpoauth.AuthorizationCode{Digest: code}
	err := m.pool.QueryRow(ctx,
		`SELECT client_id, user_id, grant_id, redirect_uri, redirect_uri_provided, scopes, resource, code_challenge, expires_at, grant_expires_at, used
		FROM mcpoauth_authorization_codes WHERE digest = $1`, code[:]).
		Scan(&c.ClientID, &c.UserID, &c.GrantID, &c.RedirectURI, &c.RedirectURIProvided, &c.Scopes, &c.Resource, &c.CodeChallenge, &c.ExpiresAt, &c.GrantExpiresAt, &c.Used)
	if err = errs.Scan(ctx, "get authorization code", errs.CodeNotFound, err); err != nil {
		return nil, err
	}
	c.ExpiresAt, c.GrantExpiresAt = c.ExpiresAt.UTC(), c.GrantExpiresAt.UTC()
	return c, nil
}

// ConsumeAuthorizationCode atomically marks the code used and saves the
// tokens issued for it, all or nothing, in one transaction: a conditional
// UPDATE ... WHERE NOT used redeems the code, so of concurrent calls exactly
// one succeeds. It answers ErrNotFound if the code is unknown or belongs to
// another client, ErrAlreadyUsed if it was consumed before, ErrConflict if
// an issued token's digest is taken, and an error wrapping ErrNotFound if an
// issued token's grant was revoked. On any error nothing changes.
func (m *Model) ConsumeAuthorizationCode(ctx context.Context, code mcpoauth.Digest, clientID string, issued ...*mcpoauth.Token) error {
	return m.redeem(ctx, sqlmodel.Redemption{
		Op:        "consume authorization code",
		ClientID:  clientID,
		Issued:    issued,
		NotFound:  errs.CodeNotFound,
		Used:      errs.CodeUsed,
		Update:    `UPDATE mcpoauth_authorization_codes SET used = true WHERE digest = $1 AND client_id = $2 AND NOT used`,
		UsedQuery: `SELECT used FROM mcpoauth_authorization_codes WHERE digest = $1 AND client_id = $2`,
		Args:      []any{code[:], clientID},
	})
}
