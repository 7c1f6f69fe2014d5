package sqlite

import (
	"context"
	"database/sql"
	"slices"
	"time"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/internal/sqlmodel"
)

const tokenColumns = `kind, client_id, user_id, grant_id, scopes, resource, issued_at, expires_at, grant_expires_at, rotated_at, jkt`

// tokenPacked is a token row as one text value: the integers in decimal
// (empty for NULL) followed by ',', then each text column as its length in
// bytes, ':' and its bytes. A lookup then returns one column, not ten:
// modernc.org/sqlite costs about 350 ns per result column, which would be
// a third of GetToken, and the text fields of the token become substrings
// of one allocation. parseToken reads it.
const tokenPacked = `kind || ',' || coalesce(issued_at, '') || ',' || coalesce(expires_at, '') || ',' ||
	coalesce(grant_expires_at, '') || ',' || coalesce(rotated_at, '') || ',' ||
	octet_length(client_id) || ':' || client_id || octet_length(user_id) || ':' || user_id ||
	octet_length(grant_id) || ':' || grant_id || octet_length(scopes) || ':' || scopes ||
	octet_length(resource) || ':' || resource || octet_length(jkt) || ':' || jkt`

const getTokenSQL = `SELECT ` + tokenPacked + ` FROM mcpoauth_tokens WHERE digest = ?`

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
	if err := errs.CheckTokens(tokens); err != nil {
		return err
	}
	return m.inTx(ctx, "save tokens", func(tx *sql.Tx) error {
		return insertTokens(ctx, tx, tokens)
	})
}

// GetToken returns an access or refresh token by digest, including a
// rotated refresh token (RotatedAt set), or ErrNotFound: one SELECT by
// primary key on a read-only connection, a statement prepared once per
// connection.
func (m *Model) GetToken(ctx context.Context, token mcpoauth.Digest) (*mcpoauth.Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return scanToken(ctx, "get token", token, m.getTokenStmt.QueryRowContext(ctx, token[:]))
}

func scanToken(ctx context.Context, op string, digest mcpoauth.Digest, row rowScanner) (*mcpoauth.Token, error) {
	var packed string
	err := row.Scan(&packed)
	if err = errs.Scan(ctx, op, errs.TokenNotFound, err); err != nil {
		return nil, err
	}
	t, err := parseToken(packed)
	if err != nil {
		return nil, errs.Storage(ctx, op, err)
	}
	t.Digest = digest
	return t, nil
}

// parseToken reads a token row packed by tokenPacked.
func parseToken(s string) (*mcpoauth.Token, error) {
	p := packedReader{s: s}
	t := &mcpoauth.Token{}
	kind := p.int()
	t.IssuedAt, t.ExpiresAt, t.GrantExpiresAt, t.RotatedAt = p.time(), p.time(), p.time(), p.time()
	t.ClientID, t.UserID, t.GrantID = p.text(), p.text(), p.text()
	scopes := p.text()
	t.Resource = p.text()
	t.JKT = p.text()
	if p.err != nil || p.s != "" {
		return nil, errs.UnexpectedResult
	}
	t.Kind = mcpoauth.TokenKind(kind.Int64)
	if !sqlmodel.ValidTokenKind(t.Kind) {
		return nil, errs.BadTokenKind
	}
	var err error
	if t.Scopes, err = decodeStrings(scopes); err != nil {
		return nil, err
	}
	return t, nil
}

// RotateRefreshToken atomically rotates the refresh token and saves the
// tokens that replace it, all or nothing, in one transaction. A conditional
// UPDATE ... SET rotated_at = coalesce(rotated_at, at) WHERE rotated_at IS
// NULL OR rotated_at >= reuseSince rotates it: of concurrent calls the
// first sets rotated_at, and the others match it again only within the
// reuse interval. It answers ErrNotFound if the token is unknown, not a
// refresh token or another client's, ErrAlreadyUsed if it was rotated
// before (and before reuseSince), ErrConflict if an issued token's digest
// is taken, and an error wrapping ErrNotFound if an issued token's grant
// was revoked. On any error nothing changes.
func (m *Model) RotateRefreshToken(ctx context.Context, token mcpoauth.Digest, clientID string, at, reuseSince time.Time, issued ...*mcpoauth.Token) error {
	// A zero reuseSince allows no reuse: NULL matches no rotated_at.
	return m.redeem(ctx, sqlmodel.Redemption{
		Op:       "rotate refresh token",
		ClientID: clientID,
		Issued:   issued,
		NotFound: errs.TokenNotFound,
		Used:     errs.TokenUsed,
		Update: `UPDATE mcpoauth_tokens SET rotated_at = coalesce(rotated_at, ?4)
			WHERE digest = ?1 AND client_id = ?2 AND kind = ?3 AND (rotated_at IS NULL OR rotated_at >= ?5)`,
		Args:      []any{token[:], clientID, int64(mcpoauth.RefreshToken), nanosOrZero(at), toNanos(reuseSince)},
		UsedQuery: `SELECT rotated_at IS NOT NULL FROM mcpoauth_tokens WHERE digest = ?1 AND client_id = ?2 AND kind = ?3`,
		UsedArgs:  []any{token[:], clientID, int64(mcpoauth.RefreshToken)},
	})
}

// RevokeToken deletes a token of either kind that belongs to clientID and
// returns it, in one DELETE ... RETURNING; ErrNotFound (and no change)
// otherwise.
func (m *Model) RevokeToken(ctx context.Context, token mcpoauth.Digest, clientID string) (*mcpoauth.Token, error) {
	if err := sqlmodel.CheckClientID(ctx, clientID, errs.TokenNotFound); err != nil {
		return nil, err
	}
	var t *mcpoauth.Token
	err := m.inTx(ctx, "revoke token", func(tx *sql.Tx) error {
		var err error
		t, err = scanToken(ctx, "revoke token", token, tx.QueryRowContext(ctx,
			`DELETE FROM mcpoauth_tokens WHERE digest = ? AND client_id = ? RETURNING `+tokenPacked, token[:], clientID))
		return err
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// insertTokens inserts tokens in tx, after checking that none of their
// grants was revoked. It answers ErrConflict for a digest that exists or
// repeats, and an error wrapping ErrNotFound if a grant was revoked;
// either way the caller must roll tx back.
func insertTokens(ctx context.Context, tx *sql.Tx, tokens []*mcpoauth.Token) error {
	const op = "save tokens"
	var grants []string
	for _, t := range tokens {
		if slices.Contains(grants, t.GrantID) {
			continue
		}
		grants = append(grants, t.GrantID)
		if err := checkNotRevoked(ctx, tx, op, t.GrantID); err != nil {
			return err
		}
	}
	for _, t := range tokens {
		_, err := tx.ExecContext(ctx, `INSERT INTO mcpoauth_tokens (digest, `+tokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)`,
			t.Digest[:], int64(t.Kind), t.ClientID, t.UserID, t.GrantID, encodeStrings(t.Scopes), t.Resource,
			toNanos(t.IssuedAt), toNanos(t.ExpiresAt), toNanos(t.GrantExpiresAt), t.JKT)
		if err := errs.Insert(ctx, op, errs.TokenConflict, err); err != nil {
			return err
		}
	}
	return nil
}

// redeem runs r's update and saves the issued tokens in one write
// transaction: all or nothing. Writes are serialised, so of concurrent
// redemptions of one credential exactly one sees it redeemable.
func (m *Model) redeem(ctx context.Context, r sqlmodel.Redemption) error {
	if err := r.Refused(ctx); err != nil {
		return err
	}
	if err := errs.CheckTokens(r.Issued); err != nil {
		return err
	}
	return m.inTx(ctx, r.Op, func(tx *sql.Tx) error {
		n, err := execCount(ctx, tx, r.Op, r.Update, r.Args...)
		if err != nil {
			return err
		}
		if n == 0 {
			return r.WhyNotRedeemed(ctx, errs, txOf(tx))
		}
		return insertTokens(ctx, tx, r.Issued)
	})
}
