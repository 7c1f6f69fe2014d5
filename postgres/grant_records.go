package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/internal/sqlmodel"
)

// Compile-time proofs that Model keeps grant records and the upstream
// token vault.
var (
	_ mcpoauth.GrantStore         = (*Model)(nil)
	_ mcpoauth.UpstreamTokenStore = (*Model)(nil)
)

// grantLocks returns the advisory locks a save of a record of clientID and
// grantID takes (either may be empty: no lock for it), the locks
// DeleteClient and RevokeGrant take, so that the save commits before them
// (and is deleted) or runs after them (and, for the grant, finds it in
// mcpoauth_revoked_grants).
func grantLocks(clientID, grantID string) advisoryLocks {
	var locks advisoryLocks
	if clientID != "" {
		locks = append(locks, lockKeys(lockClassClient, clientID)...)
	}
	if grantID != "" {
		locks = append(locks, lockKeys(lockClassGrant, grantID)...)
	}
	return locks.sorted()
}

// insertLocked runs, in a READ COMMITTED transaction, the INSERT ... SELECT
// ... WHERE NOT EXISTS (a revoked grant) of a new record once locks are
// held (see lockThen): conflict if its key is taken, errs.GrantRevoked if it
// inserted nothing.
func (m *Model) insertLocked(ctx context.Context, op string, locks advisoryLocks, conflict error, sql string, args ...any) error {
	return m.inTx(ctx, op, func(tx pgx.Tx) error {
		tag, err := lockThen(ctx, tx, locks, sql, args...)
		if err := errs.Insert(ctx, op, conflict, err); err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return errs.GrantRevoked
		}
		return nil
	})
}

const grantColumns = `id, client_id, user_id, scopes, resource, created_at, expires_at, identity, last_used_at`

// SaveGrant stores a new grant record: ErrConflict if its ID exists, an
// error wrapping ErrNotFound if the grant was revoked. The INSERT runs
// under the advisory locks of the grant and its client and inserts nothing
// if mcpoauth_revoked_grants lists the grant, so a save racing RevokeGrant
// lands before it (and is deleted) or sees it.
func (m *Model) SaveGrant(ctx context.Context, g *mcpoauth.Grant) error {
	if err := sqlmodel.CheckRecord(ctx, errs, g, func(g *mcpoauth.Grant) error { return errs.CheckID(g.ID) }); err != nil {
		return err
	}
	identity, err := errs.IdentityColumn(ctx, "save grant", g.Identity)
	if err != nil {
		return err
	}
	return m.insertLocked(ctx, "save grant", grantLocks(g.ClientID, g.ID), errs.GrantConflict,
		`INSERT INTO mcpoauth_grants (`+grantColumns+`)
		SELECT $1::text, $2::text, $3::text, $4::text[], $5::text, $6::timestamptz, $7::timestamptz, $8::jsonb, $9::timestamptz
		WHERE NOT EXISTS (SELECT 1 FROM mcpoauth_revoked_grants WHERE grant_id = $1::text)`,
		g.ID, g.ClientID, g.UserID, nonNil(g.Scopes), g.Resource, g.CreatedAt, g.ExpiresAt, identity, toNullTime(g.LastUsedAt))
}

// GetGrant returns the grant record, or ErrNotFound.
func (m *Model) GetGrant(ctx context.Context, grantID string) (*mcpoauth.Grant, error) {
	if err := sqlmodel.CheckKey(ctx, grantID, errs.GrantNotFound); err != nil {
		return nil, err
	}
	// The bearer path reads a grant's identity through here (once per
	// grant per replica): a read safe to repeat, retried on a broken
	// connection like GetToken.
	var g *mcpoauth.Grant
	err := m.safeRead(ctx, func(q querier) (err error) {
		g, err = scanGrant(q.QueryRow(ctx, `SELECT `+grantColumns+` FROM mcpoauth_grants WHERE id = $1`, grantID))
		return err
	})
	if err = errs.Scan(ctx, "get grant", errs.GrantNotFound, err); err != nil {
		return nil, err
	}
	return g, nil
}

// ListUserGrants returns the user's grant records (any client, expired or
// not), in no particular order; none for an unknown user. The index
// mcpoauth_grants_user_id serves it.
func (m *Model) ListUserGrants(ctx context.Context, userID string) ([]*mcpoauth.Grant, error) {
	return m.listGrants(ctx, "list user grants", `SELECT `+grantColumns+` FROM mcpoauth_grants WHERE user_id = $1`, userID)
}

// ListClientGrants returns the client's grant records (any user, expired or
// not), in no particular order; none for an unknown client. The index
// mcpoauth_grants_client_id serves it.
func (m *Model) ListClientGrants(ctx context.Context, clientID string) ([]*mcpoauth.Grant, error) {
	return m.listGrants(ctx, "list client grants", `SELECT `+grantColumns+` FROM mcpoauth_grants WHERE client_id = $1`, clientID)
}

// listGrants runs a query of grant rows by one text key.
func (m *Model) listGrants(ctx context.Context, op, sql, key string) ([]*mcpoauth.Grant, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !sqlmodel.IsStorableText(key) {
		return nil, nil
	}
	rows, err := m.pool.Query(ctx, sql, key)
	if err != nil {
		return nil, errs.Storage(ctx, op, err)
	}
	grants, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*mcpoauth.Grant, error) { return scanGrant(row) })
	if err != nil {
		return nil, errs.Storage(ctx, op, err)
	}
	return grants, nil
}

// RecordGrantUse sets the grant's last_used_at to at unless it is later
// already (GREATEST ignores a NULL); ErrNotFound for an unknown or revoked
// grant (RevokeGrant deleted its row). The UPDATE runs at READ COMMITTED
// whatever the database's default (execOne): a concurrent use or
// revocation of the grant makes it wait and re-read the committed row,
// where REPEATABLE READ would fail it with a serialization error, losing
// the later use or answering a storage error for a revoked grant.
func (m *Model) RecordGrantUse(ctx context.Context, grantID string, at time.Time) error {
	if err := sqlmodel.CheckKey(ctx, grantID, errs.GrantNotFound); err != nil {
		return err
	}
	return m.execOne(ctx, "record grant use", errs.GrantNotFound,
		`UPDATE mcpoauth_grants SET last_used_at = GREATEST(last_used_at, $2) WHERE id = $1`, grantID, at)
}

// scanGrant reads a row of grantColumns.
func scanGrant(row pgx.Row) (*mcpoauth.Grant, error) {
	g := &mcpoauth.Grant{}
	var identity []byte
	var lastUsed *time.Time
	if err := row.Scan(&g.ID, &g.ClientID, &g.UserID, &g.Scopes, &g.Resource, &g.CreatedAt, &g.ExpiresAt, &identity, &lastUsed); err != nil {
		return nil, err
	}
	g.CreatedAt, g.ExpiresAt, g.LastUsedAt = g.CreatedAt.UTC(), g.ExpiresAt.UTC(), fromNullTime(lastUsed)
	var err error
	if g.Identity, err = sqlmodel.ParseIdentity(identity); err != nil {
		return nil, err
	}
	return g, nil
}

const upstreamColumns = `id, grant_id, client_id, sealed, version, lease_until, expires_at`

// SaveUpstreamToken stores a new vault entry: ErrConflict if its ID
// exists, an error wrapping ErrNotFound if its grant was revoked. Like
// SaveGrant, it inserts under the advisory locks of the entry's grant and
// client, if it has them, and only if the grant is not revoked.
func (m *Model) SaveUpstreamToken(ctx context.Context, t *mcpoauth.UpstreamToken) error {
	if err := sqlmodel.CheckRecord(ctx, errs, t, func(t *mcpoauth.UpstreamToken) error { return errs.CheckID(t.ID) }); err != nil {
		return err
	}
	return m.insertLocked(ctx, "save upstream token", grantLocks(t.ClientID, t.GrantID), errs.UpstreamConflict,
		`INSERT INTO mcpoauth_upstream_tokens (`+upstreamColumns+`)
		SELECT $1::text, $2::text, $3::text, $4::bytea, $5::int8, $6::timestamptz, $7::timestamptz
		WHERE $2::text IS NULL OR NOT EXISTS (SELECT 1 FROM mcpoauth_revoked_grants WHERE grant_id = $2::text)`,
		upstreamArgs(t)...)
}

// upstreamArgs returns the columns of upstreamColumns for t: an empty
// grant or client ID and a zero lease are NULL.
func upstreamArgs(t *mcpoauth.UpstreamToken) []any {
	sealed := t.Sealed
	if sealed == nil {
		sealed = []byte{} // the column is NOT NULL, and pgx sends nil as NULL
	}
	return []any{t.ID, nullText(t.GrantID), nullText(t.ClientID), sealed, t.Version, toNullTime(t.LeaseUntil), t.ExpiresAt}
}

// nullText maps "" to NULL.
func nullText(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// GetUpstreamToken returns the vault entry, or ErrNotFound.
func (m *Model) GetUpstreamToken(ctx context.Context, id string) (*mcpoauth.UpstreamToken, error) {
	if err := sqlmodel.CheckKey(ctx, id, errs.UpstreamNotFound); err != nil {
		return nil, err
	}
	return scanUpstreamToken(ctx, "get upstream token",
		m.pool.QueryRow(ctx, `SELECT `+upstreamColumns+` FROM mcpoauth_upstream_tokens WHERE id = $1`, id))
}

// replaceUpstreamSQL replaces the entry $1 with the columns $1 to $7 if
// its version is $8, unless $2 names a revoked grant. Run once the locks
// of the entry's new grant and client are held (see lockThen), as
// SaveUpstreamToken's INSERT is: a RevokeGrant of that grant then either
// committed before it (and the UPDATE sees the revocation) or waits until
// it committed (and deletes the entry it bound). A concurrent replacement
// makes the UPDATE wait and re-check the version (READ COMMITTED), so
// exactly one of replicas that expect the same version wins.
const replaceUpstreamSQL = `UPDATE mcpoauth_upstream_tokens SET grant_id = $2, client_id = $3, sealed = $4, version = $5, lease_until = $6, expires_at = $7
	WHERE id = $1 AND version = $8
	AND ($2::text IS NULL OR NOT EXISTS (SELECT 1 FROM mcpoauth_revoked_grants WHERE grant_id = $2::text))`

// replaceFailedSQL tells, after replaceUpstreamSQL changed nothing, why:
// whether the grant $2 was revoked (checked first: the locks still held
// keep the answer the UPDATE saw) and whether the entry $1 exists.
const replaceFailedSQL = `SELECT
	$2::text IS NOT NULL AND EXISTS (SELECT 1 FROM mcpoauth_revoked_grants WHERE grant_id = $2::text),
	EXISTS (SELECT 1 FROM mcpoauth_upstream_tokens WHERE id = $1::text)`

// ReplaceUpstreamToken replaces the vault entry t.ID with t if its stored
// Version is version (a compare-and-set): ErrConflict, and no change, if it
// is not; ErrNotFound if there is no entry; an error wrapping ErrNotFound,
// and no change, whatever the version, if t binds the entry to a revoked
// grant (a replacement is then a save of that grant's entry).
func (m *Model) ReplaceUpstreamToken(ctx context.Context, t *mcpoauth.UpstreamToken, version int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if t == nil {
		return errs.NilRecord
	}
	if !sqlmodel.IsStorableText(t.ID) {
		return errs.UpstreamNotFound
	}
	const op = "replace upstream token"
	args := upstreamArgs(t)
	return m.inTx(ctx, op, func(tx pgx.Tx) error {
		tag, err := lockThen(ctx, tx, grantLocks(t.ClientID, t.GrantID), replaceUpstreamSQL, append(args, version)...)
		if err != nil {
			return errs.Storage(ctx, op, err)
		}
		if tag.RowsAffected() == 1 {
			return nil
		}
		var revoked, exists bool
		if err := tx.QueryRow(ctx, replaceFailedSQL, args[0], args[1]).Scan(&revoked, &exists); err != nil {
			return errs.Storage(ctx, op, err)
		}
		switch {
		case revoked:
			return errs.GrantRevoked
		case exists:
			return errs.UpstreamConflict
		}
		return errs.UpstreamNotFound
	})
}

// ConsumeUpstreamToken removes and returns the vault entry, or ErrNotFound:
// one DELETE ... RETURNING, so of concurrent calls exactly one gets it.
func (m *Model) ConsumeUpstreamToken(ctx context.Context, id string) (*mcpoauth.UpstreamToken, error) {
	if err := sqlmodel.CheckKey(ctx, id, errs.UpstreamNotFound); err != nil {
		return nil, err
	}
	const op = "consume upstream token"
	var t *mcpoauth.UpstreamToken
	err := m.inTx(ctx, op, func(tx pgx.Tx) error {
		var err error
		t, err = scanUpstreamToken(ctx, op, tx.QueryRow(ctx,
			`DELETE FROM mcpoauth_upstream_tokens WHERE id = $1 RETURNING `+upstreamColumns, id))
		return err
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// scanUpstreamToken reads a row of upstreamColumns: ErrNotFound for none.
func scanUpstreamToken(ctx context.Context, op string, row pgx.Row) (*mcpoauth.UpstreamToken, error) {
	t := &mcpoauth.UpstreamToken{}
	var grantID, clientID *string
	var lease *time.Time
	err := row.Scan(&t.ID, &grantID, &clientID, &t.Sealed, &t.Version, &lease, &t.ExpiresAt)
	if err = errs.Scan(ctx, op, errs.UpstreamNotFound, err); err != nil {
		return nil, err
	}
	if grantID != nil {
		t.GrantID = *grantID
	}
	if clientID != nil {
		t.ClientID = *clientID
	}
	t.LeaseUntil, t.ExpiresAt = fromNullTime(lease), t.ExpiresAt.UTC()
	return t, nil
}
