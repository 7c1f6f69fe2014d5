package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/internal/sqlmodel"
)

const tokenColumns = `kind, client_id, user_id, grant_id, scopes, resource, issued_at, expires_at, grant_expires_at, rotated_at, jkt`

// SaveTokens stores newly issued tokens, all or nothing, in one
// transaction: ErrConflict if a digest is taken (or repeated), an error
// wrapping ErrNotFound if a token's grant was revoked.
func (m *Model) SaveTokens(ctx context.Context, tokens ...*mcpoauth.Token) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(tokens) == 0 {
		return nil
	}
	batch, err := newTokenBatch(tokens)
	if err != nil {
		return err
	}
	return m.inTx(ctx, "save tokens", func(tx pgx.Tx) error {
		return insertTokens(ctx, tx, batch, false)
	})
}

// GetToken returns an access or refresh token by digest, including a
// rotated refresh token (RotatedAt set), or ErrNotFound: one SELECT by primary
// key, a statement pgx prepares once per connection. With
// Options.VerificationCache an access token found before is answered from
// memory. If the connection breaks, the SELECT runs again on another
// (safeRead).
func (m *Model) GetToken(ctx context.Context, token mcpoauth.Digest) (*mcpoauth.Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var epoch uint64
	var readAt time.Duration
	if m.cache != nil {
		if t, ok := m.cache.get(token); ok {
			return t, nil
		}
		// Before the SELECT: the entry is as old as the read's start, so
		// that a revocation committed during a slow read (or its retry)
		// is never served past the staleness bound.
		epoch, readAt = m.cache.epoch.Load(), mono()
	}
	var t *mcpoauth.Token
	err := m.safeRead(ctx, func(q querier) error {
		var err error
		t, err = scanToken(ctx, "get token", token, q.QueryRow(ctx,
			`SELECT `+tokenColumns+` FROM mcpoauth_tokens WHERE digest = $1`, token[:]))
		return err
	})
	if err != nil {
		return nil, err
	}
	if m.cache != nil {
		m.cache.put(t, epoch, readAt)
	}
	return t, nil
}

func scanToken(ctx context.Context, op string, digest mcpoauth.Digest, row pgx.Row) (*mcpoauth.Token, error) {
	t := &mcpoauth.Token{Digest: digest}
	var kind int16
	var rotated *time.Time
	err := row.Scan(&kind, &t.ClientID, &t.UserID, &t.GrantID, &t.Scopes, &t.Resource, &t.IssuedAt, &t.ExpiresAt, &t.GrantExpiresAt, &rotated, &t.JKT)
	if err = errs.Scan(ctx, op, errs.TokenNotFound, err); err != nil {
		return nil, err
	}
	t.Kind = mcpoauth.TokenKind(kind)
	if !sqlmodel.ValidTokenKind(t.Kind) {
		return nil, errs.BadTokenKind
	}
	t.IssuedAt, t.ExpiresAt, t.GrantExpiresAt, t.RotatedAt = t.IssuedAt.UTC(), t.ExpiresAt.UTC(), t.GrantExpiresAt.UTC(), fromNullTime(rotated)
	return t, nil
}

// RotateRefreshToken atomically rotates the refresh token and saves the
// tokens that replace it, all or nothing, in one transaction. A conditional
// UPDATE ... SET rotated_at = COALESCE(rotated_at, at) WHERE rotated_at IS
// NULL OR rotated_at >= reuseSince rotates it: of concurrent first
// rotations one sets rotated_at and the others, within the reuse interval,
// match it too; outside it, only one. It answers ErrNotFound if the token is
// unknown, not a refresh token or another client's, ErrAlreadyUsed if it
// was rotated before (and before reuseSince), ErrConflict if an issued
// token's digest is taken, and an error wrapping ErrNotFound if an issued
// token's grant was revoked. On any error nothing changes.
func (m *Model) RotateRefreshToken(ctx context.Context, token mcpoauth.Digest, clientID string, at, reuseSince time.Time, issued ...*mcpoauth.Token) error {
	return m.redeem(ctx, sqlmodel.Redemption{
		Op:       "rotate refresh token",
		ClientID: clientID,
		Issued:   issued,
		NotFound: errs.TokenNotFound,
		Used:     errs.TokenUsed,
		Update: `UPDATE mcpoauth_tokens SET used = true, rotated_at = COALESCE(rotated_at, $4)
			WHERE digest = $1 AND client_id = $2 AND kind = $3 AND (rotated_at IS NULL OR rotated_at >= $5::timestamptz)`,
		Args:      []any{token[:], clientID, int16(mcpoauth.RefreshToken), at, toNullTime(reuseSince)},
		UsedQuery: `SELECT rotated_at IS NOT NULL FROM mcpoauth_tokens WHERE digest = $1 AND client_id = $2 AND kind = $3`,
		UsedArgs:  []any{token[:], clientID, int16(mcpoauth.RefreshToken)},
	})
}

// RevokeToken deletes a token of either kind that belongs to clientID and
// returns it, in one DELETE ... RETURNING (in a READ COMMITTED transaction,
// see execRC); ErrNotFound (and no change) otherwise.
func (m *Model) RevokeToken(ctx context.Context, token mcpoauth.Digest, clientID string) (*mcpoauth.Token, error) {
	if err := sqlmodel.CheckClientID(ctx, clientID, errs.TokenNotFound); err != nil {
		return nil, err
	}
	var t *mcpoauth.Token
	err := m.inTx(ctx, "revoke token", func(tx pgx.Tx) error {
		var err error
		t, err = scanToken(ctx, "revoke token", token, tx.QueryRow(ctx,
			`DELETE FROM mcpoauth_tokens WHERE digest = $1 AND client_id = $2 RETURNING `+tokenColumns, token[:], clientID))
		if err != nil || t.Kind != mcpoauth.AccessToken {
			return err // refresh tokens are never cached
		}
		return notify(ctx, tx, "revoke token", tokenPayload(token))
	})
	if err != nil {
		return nil, err
	}
	m.evict(tokenPayload(token))
	return t, nil
}
