package postgres

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/internal/sqlmodel"
)

// The first keys of the transaction-level advisory locks; the second key is
// lockKey of the grant or client ID. lockClassClient is the smaller, so that
// sorted locks put a client's before a grant's.
const (
	// lockClassGrant locks serialise RevokeGrant with every save of a token
	// or code of the grant.
	lockClassGrant = 0x6d636f67 // "mcog"
	// lockClassClient locks serialise DeleteClient with every save of a
	// token of the client (clients.go).
	lockClassClient = 0x6d636f63 // "mcoc"
)

// lockKey returns the second advisory lock key of a grant or client ID. Two
// IDs whose keys collide only wait for each other more than they need to.
func lockKey(id string) int32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return int32(h.Sum32())
}

// advisoryLock is the two keys of one transaction-level advisory lock.
type advisoryLock struct{ class, key int32 }

// advisoryLocks is a sorted (by class, then key), distinct set of advisory
// locks: client locks before grant locks. Every transaction takes its locks
// in that order, in its first statement, so two of them that lock some of
// the same cannot deadlock.
type advisoryLocks []advisoryLock

// lockKeys returns the locks of class on ids, sorted and distinct.
func lockKeys(class int32, ids ...string) advisoryLocks {
	locks := make(advisoryLocks, 0, len(ids))
	for _, id := range ids {
		locks = append(locks, advisoryLock{class, lockKey(id)})
	}
	return locks.sorted()
}

// sorted sorts the locks and drops repeats.
func (l advisoryLocks) sorted() advisoryLocks {
	slices.SortFunc(l, func(a, b advisoryLock) int {
		if c := cmp.Compare(a.class, b.class); c != 0 {
			return c
		}
		return cmp.Compare(a.key, b.key)
	})
	return slices.Compact(l)
}

// columns returns the classes and keys of the locks, in order, as
// advisoryLockSQL takes them.
func (l advisoryLocks) columns() (classes, keys []int32) {
	classes, keys = make([]int32, len(l)), make([]int32, len(l))
	for i, k := range l {
		classes[i], keys[i] = k.class, k.key
	}
	return classes, keys
}

// advisoryLockSQL takes the transaction-level advisory locks whose classes
// are $1 and keys $2. unnest yields the keys in array order, and a function
// scan evaluates the target list row by row: the locks are taken in the
// order given, which is sorted.
const advisoryLockSQL = `SELECT pg_advisory_xact_lock(c, k) FROM unnest($1::int4[], $2::int4[]) AS l(c, k)`

// lockThen runs, in tx, the statement that takes the advisory locks, then
// sql, in one round trip, and returns sql's command tag.
//
// Why it is correct: each statement of a READ COMMITTED transaction sees
// what committed before that statement started, and sql starts only once
// the locks are held. A RevokeGrant that took a lock first has committed by
// then, so sql sees its row in mcpoauth_revoked_grants; one that takes it
// after waits until this transaction has committed, so its DELETE sees the
// rows sql wrote. The same holds for a DeleteClient and the client's lock:
// a token insert that took it first is visible to the delete, and one that
// takes it after runs once the client is gone.
func lockThen(ctx context.Context, tx pgx.Tx, locks advisoryLocks, sql string, args ...any) (pgconn.CommandTag, error) {
	if len(locks) == 0 {
		return tx.Exec(ctx, sql, args...)
	}
	classes, keys := locks.columns()
	b := &pgx.Batch{}
	b.Queue(advisoryLockSQL, classes, keys)
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
	grants []string // distinct grant IDs of the tokens
	// locks are the locks of the tokens' clients and grants: every
	// transaction that inserts tokens holds them from its first statement,
	// so that DeleteClient and RevokeGrant, which take them too, see every
	// such insert committed or none begun.
	locks advisoryLocks
}

// newTokenBatch validates tokens for insertion.
func newTokenBatch(tokens []*mcpoauth.Token) (tokenBatch, error) {
	b := tokenBatch{tokens: tokens}
	if err := errs.CheckTokens(tokens); err != nil {
		return b, err
	}
	var clients []string
	for _, t := range tokens {
		if !slices.Contains(b.grants, t.GrantID) {
			b.grants = append(b.grants, t.GrantID)
		}
		if !slices.Contains(clients, t.ClientID) {
			clients = append(clients, t.ClientID)
		}
	}
	b.locks = append(lockKeys(lockClassClient, clients...), lockKeys(lockClassGrant, b.grants...)...).sorted()
	return b, nil
}

// insertChunk is the most tokens one INSERT statement carries (11
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
	b.WriteString(`INSERT INTO mcpoauth_tokens (digest, kind, client_id, user_id, grant_id, scopes, resource, issued_at, expires_at, grant_expires_at, jkt) SELECT v.* FROM (VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		p := 2 + 11*i
		fmt.Fprintf(&b, "($%d::bytea, $%d::int2, $%d::text, $%d::text, $%d::text, $%d::text[], $%d::text, $%d::timestamptz, $%d::timestamptz, $%d::timestamptz, $%d::text)",
			p, p+1, p+2, p+3, p+4, p+5, p+6, p+7, p+8, p+9, p+10)
	}
	b.WriteString(`) AS v WHERE NOT EXISTS (SELECT 1 FROM mcpoauth_revoked_grants WHERE grant_id = ANY($1::text[]))`)
	return b.String()
}

// insertTokens inserts the batch in tx, whose locks the caller holds or
// takes with the first statement (locked false). It answers ErrConflict
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
		args := make([]any, 1, 1+11*len(chunk))
		args[0] = b.grants
		for _, t := range chunk {
			args = append(args, t.Digest[:], int16(t.Kind), t.ClientID, t.UserID, t.GrantID, nonNil(t.Scopes), t.Resource, t.IssuedAt, t.ExpiresAt, t.GrantExpiresAt, t.JKT)
		}
		var keys advisoryLocks
		if !locked {
			keys, locked = b.locks, true
		}
		tag, err := lockThen(ctx, tx, keys, sql, args...)
		if err := errs.Insert(ctx, "save tokens", errs.TokenConflict, err); err != nil {
			return err
		}
		if tag.RowsAffected() != int64(len(chunk)) {
			return errs.GrantRevoked
		}
	}
	return nil
}

// revokeGrantSQL deletes the grant's tokens, codes, grant record and
// upstream vault entries and remembers the grant as revoked, until $3 or
// until the last of what it deleted would have expired, whichever is
// later; one statement, run under the grant's lock.
const revokeGrantSQL = `WITH
	t AS (DELETE FROM mcpoauth_tokens WHERE grant_id = $1 RETURNING greatest(expires_at, grant_expires_at) AS until),
	c AS (DELETE FROM mcpoauth_authorization_codes WHERE grant_id = $1 RETURNING greatest(expires_at, grant_expires_at) AS until),
	g AS (DELETE FROM mcpoauth_grants WHERE id = $1 RETURNING expires_at AS until),
	u AS (DELETE FROM mcpoauth_upstream_tokens WHERE grant_id = $1 RETURNING expires_at AS until)
INSERT INTO mcpoauth_revoked_grants AS r (grant_id, revoked_at, forget_after)
SELECT $1, $2, greatest($3::timestamptz, (SELECT max(until) FROM t), (SELECT max(until) FROM c), (SELECT max(until) FROM g), (SELECT max(until) FROM u))
ON CONFLICT (grant_id) DO UPDATE SET forget_after = greatest(r.forget_after, excluded.forget_after)`

// RevokeGrant deletes every token and authorization code whose GrantID is
// grantID, the grant record and the grant's upstream vault entries, and
// remembers the grant as revoked so that no later save brings
// a token or code of it back (such saves fail with an error wrapping
// ErrNotFound), including a save that raced this call. The grant is
// remembered for RevokedGrantRetention or until the latest ExpiresAt or
// GrantExpiresAt of what was deleted, whichever is later. An empty grantID
// matches nothing.
func (m *Model) RevokeGrant(ctx context.Context, grantID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if grantID == "" || !sqlmodel.IsStorableText(grantID) {
		// No token or code can have such a grant ID: nothing to revoke,
		// and nothing of it can be saved later.
		return nil
	}
	now := m.cfg.Clock()
	payload := idPayload(notifyGrant, grantID)
	err := m.inTx(ctx, "revoke grant", func(tx pgx.Tx) error {
		_, err := lockThen(ctx, tx, lockKeys(lockClassGrant, grantID), revokeGrantSQL, grantID, now, now.Add(RevokedGrantRetention))
		if err != nil {
			return errs.Storage(ctx, "revoke grant", err)
		}
		return notify(ctx, tx, "revoke grant", payload)
	})
	if err == nil {
		m.evict(payload)
	}
	return err
}
