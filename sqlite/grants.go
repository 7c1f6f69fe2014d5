package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/internal/sqlmodel"
)

// RevokeGrant deletes every token, authorization code, grant record and
// vault entry of grantID, and remembers the grant as revoked so that no
// later save brings one back (such saves fail with an error wrapping
// ErrNotFound), including a save that raced this call: writes are
// serialised, so that save committed before this transaction (and is
// deleted by it) or begins after it (and sees the revocation). The grant is
// remembered for RevokedGrantRetention or until the latest ExpiresAt or
// GrantExpiresAt of what was deleted, whichever is later. An empty grantID
// matches nothing.
func (m *Model) RevokeGrant(ctx context.Context, grantID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if grantID == "" || !sqlmodel.IsStorableText(grantID) {
		// No record can have such a grant ID: nothing to revoke, and
		// nothing of it can be saved later.
		return nil
	}
	const op = "revoke grant"
	now := m.cfg.Clock()
	return m.inTx(ctx, op, func(tx *sql.Tx) error {
		// The latest time a deleted token or code would have lived to.
		var until sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT max(
				(SELECT max(max(coalesce(expires_at, 0), coalesce(grant_expires_at, 0))) FROM mcpoauth_tokens WHERE grant_id = ?1),
				(SELECT max(max(coalesce(expires_at, 0), coalesce(grant_expires_at, 0))) FROM mcpoauth_authorization_codes WHERE grant_id = ?1))`,
			grantID).Scan(&until)
		if err != nil {
			return errs.Storage(ctx, op, err)
		}
		forget := nanosOrZero(now.Add(RevokedGrantRetention))
		if until.Valid && until.Int64 > forget {
			forget = until.Int64
		}
		for _, table := range []string{"mcpoauth_tokens", "mcpoauth_authorization_codes", "mcpoauth_upstream_tokens"} {
			if _, err := execCount(ctx, tx, op, `DELETE FROM `+table+` WHERE grant_id = ?`, grantID); err != nil {
				return err
			}
		}
		if _, err := execCount(ctx, tx, op, `DELETE FROM mcpoauth_grants WHERE id = ?`, grantID); err != nil {
			return err
		}
		_, err = execCount(ctx, tx, op, `INSERT INTO mcpoauth_revoked_grants (grant_id, revoked_at, forget_after) VALUES (?, ?, ?)
			ON CONFLICT (grant_id) DO UPDATE SET forget_after = max(forget_after, excluded.forget_after)`,
			grantID, nanosOrZero(now), forget)
		return err
	})
}

const grantColumns = `id, client_id, user_id, scopes, resource, created_at, expires_at, identity, last_used_at`

// SaveGrant stores a new grant record; ErrConflict if its ID exists, an
// error wrapping ErrNotFound if the grant was revoked, and
// an error, storing nothing, for an empty ID.
func (m *Model) SaveGrant(ctx context.Context, g *mcpoauth.Grant) error {
	if err := sqlmodel.CheckRecord(ctx, errs, g, func(g *mcpoauth.Grant) error { return errs.CheckID(g.ID) }); err != nil {
		return err
	}
	const op = "save grant"
	b, err := errs.IdentityColumn(ctx, op, g.Identity)
	if err != nil {
		return err
	}
	var identity any // NULL for none
	if b != nil {
		identity = string(b)
	}
	return m.insertUnlessRevoked(ctx, op, g.ID, errs.GrantConflict,
		`INSERT INTO mcpoauth_grants (`+grantColumns+`) VALUES (`+placeholders(9)+`)`,
		g.ID, g.ClientID, g.UserID, encodeStrings(g.Scopes), g.Resource, toNanos(g.CreatedAt), toNanos(g.ExpiresAt), identity, toNanos(g.LastUsedAt))
}

// GetGrant returns the grant record, or ErrNotFound.
func (m *Model) GetGrant(ctx context.Context, grantID string) (*mcpoauth.Grant, error) {
	if err := sqlmodel.CheckKey(ctx, grantID, errs.GrantNotFound); err != nil {
		return nil, err
	}
	return scanGrant(ctx, "get grant", m.r.QueryRowContext(ctx,
		`SELECT `+grantColumns+` FROM mcpoauth_grants WHERE id = ?`, grantID))
}

// ListUserGrants returns every stored grant record of the user, in no
// particular order (by creation, as it happens); none for an unknown user.
func (m *Model) ListUserGrants(ctx context.Context, userID string) ([]*mcpoauth.Grant, error) {
	return m.listGrants(ctx, "list user grants", `user_id = ?`, userID)
}

// ListClientGrants returns every stored grant record of the client, in no
// particular order; none for an unknown client.
func (m *Model) ListClientGrants(ctx context.Context, clientID string) ([]*mcpoauth.Grant, error) {
	return m.listGrants(ctx, "list client grants", `client_id = ?`, clientID)
}

// RecordGrantUse sets the grant's last_used_at to at unless it is later
// already; ErrNotFound for an unknown or revoked grant (RevokeGrant deleted
// its row).
func (m *Model) RecordGrantUse(ctx context.Context, grantID string, at time.Time) error {
	if err := sqlmodel.CheckKey(ctx, grantID, errs.GrantNotFound); err != nil {
		return err
	}
	return m.execOne(ctx, "record grant use", errs.GrantNotFound,
		`UPDATE mcpoauth_grants SET last_used_at = max(coalesce(last_used_at, ?1), ?1) WHERE id = ?2`, toNanos(at), grantID)
}

// listGrants returns the grant records that match where, a condition on
// the columns of mcpoauth_grants whose one parameter is key; none for a
// key that no record can have.
func (m *Model) listGrants(ctx context.Context, op, where, key string) ([]*mcpoauth.Grant, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !sqlmodel.IsStorableText(key) {
		return nil, nil
	}
	rows, err := m.r.QueryContext(ctx, `SELECT `+grantColumns+` FROM mcpoauth_grants WHERE `+where+` ORDER BY created_at, id`, key)
	if err != nil {
		return nil, errs.Storage(ctx, op, err)
	}
	defer rows.Close()
	var out []*mcpoauth.Grant
	for rows.Next() {
		g, err := scanGrant(ctx, op, rows)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, errs.Storage(ctx, op, err)
	}
	return out, nil
}

func scanGrant(ctx context.Context, op string, row rowScanner) (*mcpoauth.Grant, error) {
	g := &mcpoauth.Grant{}
	var (
		scopes       string
		created, exp sql.NullInt64
		identity     sql.NullString
		lastUsed     sql.NullInt64
	)
	err := row.Scan(&g.ID, &g.ClientID, &g.UserID, &scopes, &g.Resource, &created, &exp, &identity, &lastUsed)
	if err = errs.Scan(ctx, op, errs.GrantNotFound, err); err != nil {
		return nil, err
	}
	if g.Scopes, err = decodeStrings(scopes); err != nil {
		return nil, errs.Storage(ctx, op+": scopes", err)
	}
	g.CreatedAt, g.ExpiresAt, g.LastUsedAt = fromNanos(created), fromNanos(exp), fromNanos(lastUsed)
	if identity.Valid {
		if g.Identity, err = sqlmodel.ParseIdentity([]byte(identity.String)); err != nil {
			return nil, errs.Storage(ctx, op, err)
		}
	}
	return g, nil
}

const upstreamColumns = `id, grant_id, client_id, sealed, version, lease_until, expires_at`

// upstreamSelect is upstreamColumns and whether sealed is not NULL: the
// driver returns an empty blob as nil, and Sealed must come back as saved.
const upstreamSelect = upstreamColumns + `, sealed IS NOT NULL`

// upstreamArgs returns the columns of a vault entry, in upstreamColumns'
// order. A nil Sealed is NULL, so that it comes back nil, not empty.
func upstreamArgs(t *mcpoauth.UpstreamToken) []any {
	var sealed any
	if t.Sealed != nil {
		sealed = t.Sealed
	}
	return []any{t.ID, t.GrantID, t.ClientID, sealed, t.Version, toNanos(t.LeaseUntil), toNanos(t.ExpiresAt)}
}

// SaveUpstreamToken stores a new vault entry; ErrConflict if its ID exists,
// an error wrapping ErrNotFound if its grant was revoked, and
// an error, storing nothing, for an empty ID.
func (m *Model) SaveUpstreamToken(ctx context.Context, t *mcpoauth.UpstreamToken) error {
	if err := sqlmodel.CheckRecord(ctx, errs, t, func(t *mcpoauth.UpstreamToken) error { return errs.CheckID(t.ID) }); err != nil {
		return err
	}
	return m.insertUnlessRevoked(ctx, "save upstream token", t.GrantID, errs.UpstreamConflict,
		`INSERT INTO mcpoauth_upstream_tokens (`+upstreamColumns+`) VALUES (`+placeholders(7)+`)`, upstreamArgs(t)...)
}

// insertUnlessRevoked runs the INSERT query of a new record in a write
// transaction unless grantID, when not empty, was revoked: errs.GrantRevoked
// then, conflict if the record's key is taken.
func (m *Model) insertUnlessRevoked(ctx context.Context, op, grantID string, conflict error, query string, args ...any) error {
	return m.inTx(ctx, op, func(tx *sql.Tx) error {
		if err := checkNotRevoked(ctx, tx, op, grantID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, query, args...)
		return errs.Insert(ctx, op, conflict, err)
	})
}

// checkNotRevoked answers errs.GrantRevoked if grantID, when not empty, was
// revoked.
func checkNotRevoked(ctx context.Context, tx *sql.Tx, op, grantID string) error {
	if grantID == "" {
		return nil
	}
	revoked, err := isRevoked(ctx, tx, op, grantID)
	if err != nil {
		return err
	}
	if revoked {
		return errs.GrantRevoked
	}
	return nil
}

// GetUpstreamToken returns the vault entry, or ErrNotFound.
func (m *Model) GetUpstreamToken(ctx context.Context, id string) (*mcpoauth.UpstreamToken, error) {
	if err := sqlmodel.CheckKey(ctx, id, errs.UpstreamNotFound); err != nil {
		return nil, err
	}
	return scanUpstream(ctx, "get upstream token", m.r.QueryRowContext(ctx,
		`SELECT `+upstreamSelect+` FROM mcpoauth_upstream_tokens WHERE id = ?`, id))
}

// ReplaceUpstreamToken replaces the vault entry t.ID with t if its stored
// Version is version, with one conditional UPDATE (a compare-and-set):
// ErrConflict, and no change, if the version differs; ErrNotFound if there
// is no entry, and an error wrapping ErrNotFound if t binds the entry to a
// revoked grant.
func (m *Model) ReplaceUpstreamToken(ctx context.Context, t *mcpoauth.UpstreamToken, version int64) error {
	if err := sqlmodel.CheckSave(ctx, errs, t, func(*mcpoauth.UpstreamToken) bool { return false }); err != nil {
		return err
	}
	const op = "replace upstream token"
	return m.inTx(ctx, op, func(tx *sql.Tx) error {
		if err := checkNotRevoked(ctx, tx, op, t.GrantID); err != nil {
			return err
		}
		n, err := execCount(ctx, tx, op, `UPDATE mcpoauth_upstream_tokens
			SET grant_id = ?2, client_id = ?3, sealed = ?4, version = ?5, lease_until = ?6, expires_at = ?7
			WHERE id = ?1 AND version = ?8`, append(upstreamArgs(t), version)...)
		if err != nil || n == 1 {
			return err
		}
		var one int
		err = tx.QueryRowContext(ctx, `SELECT 1 FROM mcpoauth_upstream_tokens WHERE id = ?`, t.ID).Scan(&one)
		if err = errs.Scan(ctx, op, errs.UpstreamNotFound, err); err != nil {
			return err
		}
		return errs.UpstreamConflict
	})
}

// ConsumeUpstreamToken atomically removes and returns the vault entry, with
// one DELETE ... RETURNING; ErrNotFound if there is none.
func (m *Model) ConsumeUpstreamToken(ctx context.Context, id string) (*mcpoauth.UpstreamToken, error) {
	if err := sqlmodel.CheckKey(ctx, id, errs.UpstreamNotFound); err != nil {
		return nil, err
	}
	var t *mcpoauth.UpstreamToken
	err := m.inTx(ctx, "consume upstream token", func(tx *sql.Tx) error {
		var err error
		t, err = scanUpstream(ctx, "consume upstream token", tx.QueryRowContext(ctx,
			`DELETE FROM mcpoauth_upstream_tokens WHERE id = ? RETURNING `+upstreamSelect, id))
		return err
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

func scanUpstream(ctx context.Context, op string, row rowScanner) (*mcpoauth.UpstreamToken, error) {
	t := &mcpoauth.UpstreamToken{}
	var (
		sealed     []byte
		lease, exp sql.NullInt64
		hasSealed  bool
	)
	err := row.Scan(&t.ID, &t.GrantID, &t.ClientID, &sealed, &t.Version, &lease, &exp, &hasSealed)
	if err = errs.Scan(ctx, op, errs.UpstreamNotFound, err); err != nil {
		return nil, err
	}
	if hasSealed && sealed == nil {
		sealed = []byte{}
	}
	t.Sealed, t.LeaseUntil, t.ExpiresAt = sealed, fromNanos(lease), fromNanos(exp)
	return t, nil
}
