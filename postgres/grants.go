package postgres

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mcpoauth/mcpoauth"
)

// lockClassGrant is the first key of the transaction-level advisory locks
// that serialise RevokeGrant with every save of a token or code of the
// grant; the second key is grantLockKey of the grant ID.
const lockClassGrant = 0x6d636f67 // "mcog"

// grantLockKey returns the second advisory lock key of grantID. Two grants
// whose keys collide only wait for each other more than they need to.
func grantLockKey(grantID string) int32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(grantID))
	return int32(h.Sum32())
}

// grantLocks is the sorted, distinct advisory lock keys of some grants.
// Transactions take them in that order, so two of them that lock the same
// grants cannot deadlock.
type grantLocks []int32

func lockKeys(grantIDs ...string) grantLocks {
	keys := make(grantLocks, 0, len(grantIDs))
	for _, g := range grantIDs {
		keys = append(keys, grantLockKey(g))
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// lockThen runs, in tx, the statement that takes the advisory locks of
// keys, then sql, in one round trip, and returns sql's command tag.
//
// Why it is correct: each statement of a READ COMMITTED transaction sees
// what committed before that statement started, and sql starts only once
// the locks are held. A RevokeGrant that took a lock first has committed by
// then, so sql sees its row in mcpoauth_revoked_grants; one that takes it
// after waits until this transaction has committed, so its DELETE sees the
// rows sql wrote.
func lockThen(ctx context.Context, tx pgx.Tx, keys grantLocks, sql string, args ...any) (pgconn.CommandTag, error) {
	if len(keys) == 0 {
		return tx.Exec(ctx, sql, args...)
	}
	b := &pgx.Batch{}
	// unnest yields the keys in array order, and a function scan evaluates
	// the target list row by row: the locks are taken in sorted order.
	b.Queue(`SELECT pg_advisory_xact_lock($1::int4, k) FROM unnest($2::int4[]) AS k`, lockClassGrant, []int32(keys))
	b.Queue(sql, args...)
	br := tx.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return pgconn.CommandTag{}, err
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag, err
}

// tokenBatch is a validated list of tokens to insert.
type tokenBatch struct {
	tokens []*mcpoauth.Token
	grants []string   // distinct grant IDs of the tokens
	locks  grantLocks // their lock keys
}

// newTokenBatch validates tokens for insertion.
func newTokenBatch(tokens []*mcpoauth.Token) (tokenBatch, error) {
	b := tokenBatch{tokens: tokens}
	for _, t := range tokens {
		if t == nil {
			return b, errNilRecord
		}
		if t.Digest.IsZero() {
			return b, errZeroDigest
		}
		if t.Kind != mcpoauth.AccessToken && t.Kind != mcpoauth.RefreshToken {
			return b, errBadTokenKind
		}
		if !slices.Contains(b.grants, t.GrantID) {
			b.grants = append(b.grants, t.GrantID)
		}
	}
	b.locks = lockKeys(b.grants...)
	return b, nil
}

// insertChunk is the most tokens one INSERT statement carries (10
// parameters each, below PostgreSQL's 65535).
const insertChunk = 500

// insertTokensSQL caches the INSERT statements for the usual counts: one
// token (client credentials) and two (an access and a refresh token).
var insertTokensSQL = [...]string{1: buildInsertTokensSQL(1), 2: buildInsertTokensSQL(2), 3: buildInsertTokensSQL(3)}

// buildInsertTokensSQL returns an INSERT of n tokens that inserts nothing if
// one of the grants in $1 was revoked: a single statement, run after the
// grants' locks are held (see lockThen).
func buildInsertTokensSQL(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO mcpoauth_tokens (digest, kind, client_id, user_id, grant_id, scopes, resource, issued_at, expires_at, grant_expires_at) SELECT v.* FROM (VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		p := 2 + 10*i
		fmt.Fprintf(&b, "($%d::bytea, $%d::int2, $%d::text, $%d::text, $%d::text, $%d::text[], $%d::text, $%d::timestamptz, $%d::timestamptz, $%d::timestamptz)",
			p, p+1, p+2, p+3, p+4, p+5, p+6, p+7, p+8, p+9)
	}
	b.WriteString(`) AS v WHERE NOT EXISTS (SELECT 1 FROM mcpoauth_revoked_grants WHERE grant_id = ANY($1::text[]))`)
	return b.String()
}

// insertTokens inserts the batch in tx, whose grant locks the caller holds
// or takes with the first statement (locked false). It answers ErrConflict
// for a digest that exists or repeats, and ErrNotFound if a grant was
// revoked; either way the caller must roll tx back.
func insertTokens(ctx context.Context, tx pgx.Tx, b tokenBatch, locked bool) error {
	for start := 0; start < len(b.tokens); start += insertChunk {
		chunk := b.tokens[start:min(start+insertChunk, len(b.tokens))]
		sql := ""
		if len(chunk) < len(insertTokensSQL) {
			sql = insertTokensSQL[len(chunk)]
		} else {
			sql = buildInsertTokensSQL(len(chunk))
		}
		args := make([]any, 1, 1+10*len(chunk))
		args[0] = b.grants
		for _, t := range chunk {
			args = append(args, t.Digest[:], int16(t.Kind), t.ClientID, t.UserID, t.GrantID, nonNil(t.Scopes), t.Resource, t.IssuedAt, t.ExpiresAt, t.GrantExpiresAt)
		}
		var keys grantLocks
		if !locked {
			keys, locked = b.locks, true
		}
		tag, err := lockThen(ctx, tx, keys, sql, args...)
		if isUniqueViolation(err) {
			return errTokenConflict
		}
		if err != nil {
			return storageError(ctx, "save tokens", err)
		}
		if tag.RowsAffected() != int64(len(chunk)) {
			return errGrantRevoked
		}
	}
	return nil
}

// revokeGrantSQL deletes the grant's tokens and codes and remembers the
// grant as revoked, until $3 or until the last of what it deleted would
// have expired, whichever is later; one statement, run under the grant's
// lock.
const revokeGrantSQL = `WITH
	t AS (DELETE FROM mcpoauth_tokens WHERE grant_id = $1 RETURNING greatest(expires_at, grant_expires_at) AS until),
	c AS (DELETE FROM mcpoauth_authorization_codes WHERE grant_id = $1 RETURNING greatest(expires_at, grant_expires_at) AS until)
INSERT INTO mcpoauth_revoked_grants AS r (grant_id, revoked_at, forget_after)
SELECT $1, $2, greatest($3::timestamptz, (SELECT max(until) FROM t), (SELECT max(until) FROM c))
ON CONFLICT (grant_id) DO UPDATE SET forget_after = greatest(r.forget_after, excluded.forget_after)`

// RevokeGrant deletes every token and authorization code whose GrantID is
// grantID, and remembers the grant as revoked so that no later save brings
// a token or code of it back (such saves fail with an error wrapping
// ErrNotFound), including a save that raced this call. The grant is
// remembered for RevokedGrantRetention or until the latest ExpiresAt or
// GrantExpiresAt of what was deleted, whichever is later. An empty grantID
// matches nothing.
func (m *Model) RevokeGrant(ctx context.Context, grantID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if grantID == "" || !isStorableText(grantID) {
		// No token or code can have such a grant ID: nothing to revoke,
		// and nothing of it can be saved later.
		return nil
	}
	now := m.cfg.clock()
	return m.inTx(ctx, "revoke grant", func(tx pgx.Tx) error {
		_, err := lockThen(ctx, tx, lockKeys(grantID), revokeGrantSQL, grantID, now, now.Add(RevokedGrantRetention))
		if err != nil {
			return storageError(ctx, "revoke grant", err)
		}
		return nil
	})
}
