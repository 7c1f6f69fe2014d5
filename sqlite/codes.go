package sqlite

import (
	"context"
	"database/sql"

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
	return m.insertUnlessRevoked(ctx, "save authorization code", code.GrantID, errs.CodeConflict,
		`INSERT INTO mcpoauth_authorization_codes
			(digest, client_id, user_id, grant_id, redirect_uri, redirect_uri_provided, scopes, resource, code_challenge, expires_at, grant_expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		code.Digest[:], code.ClientID, code.UserID, code.GrantID, code.RedirectURI, boolInt(code.RedirectURIProvided),
		encodeStrings(code.Scopes), code.Resource, code.CodeChallenge, toNanos(code.ExpiresAt), toNanos(code.GrantExpiresAt))
}

// GetAuthorizationCode returns a code, consumed or not (Used tells), or
// ErrNotFound.
func (m *Model) GetAuthorizationCode(ctx context.Context, code mcpoauth.Digest) (*mcpoauth.AuthorizationCode, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c := &mcpoauth.AuthorizationCode{Digest: code}
	var (
		scopes        string
		exp, grantExp sql.NullInt64
	)
	err := m.r.QueryRowContext(ctx,
		`SELECT client_id, user_id, grant_id, redirect_uri, redirect_uri_provided, scopes, resource, code_challenge, expires_at, grant_expires_at, used
		FROM mcpoauth_authorization_codes WHERE digest = ?`, code[:]).
		Scan(&c.ClientID, &c.UserID, &c.GrantID, &c.RedirectURI, &c.RedirectURIProvided, &scopes, &c.Resource, &c.CodeChallenge, &exp, &grantExp, &c.Used)
	if err = errs.Scan(ctx, "get authorization code", errs.CodeNotFound, err); err != nil {
		return nil, err
	}
	if c.Scopes, err = decodeStrings(scopes); err != nil {
		return nil, errs.Storage(ctx, "get authorization code: scopes", err)
	}
	c.ExpiresAt, c.GrantExpiresAt = fromNanos(exp), fromNanos(grantExp)
	return c, nil
}

// ConsumeAuthorizationCode atomically marks the code used and saves the
// tokens issued for it, all or nothing, in one transaction: a conditional
// UPDATE ... WHERE used = 0 redeems the code, so of concurrent calls
// exactly one succeeds. It answers ErrNotFound if the code is unknown or
// belongs to another client, ErrAlreadyUsed if it was consumed before,
// ErrConflict if an issued token's digest is taken, and an error wrapping
// ErrNotFound if an issued token's grant was revoked. On any error nothing
// changes.
func (m *Model) ConsumeAuthorizationCode(ctx context.Context, code mcpoauth.Digest, clientID string, issued ...*mcpoauth.Token) error {
	return m.redeem(ctx, sqlmodel.Redemption{
		Op:        "consume authorization code",
		ClientID:  clientID,
		Issued:    issued,
		NotFound:  errs.CodeNotFound,
		Used:      errs.CodeUsed,
		Update:    `UPDATE mcpoauth_authorization_codes SET used = 1 WHERE digest = ? AND client_id = ? AND used = 0`,
		UsedQuery: `SELECT used FROM mcpoauth_authorization_codes WHERE digest = ? AND client_id = ?`,
		Args:      []any{code[:], clientID},
	})
}
