package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mcpoauth/mcpoauth/internal/sqlmodel"
)

// sweepSQL returns the statement that deletes at most $2 rows of a target
// whose time is before $1. Rows another transaction has locked (a row being
// consumed or revoked right now) are skipped, so the sweeper never waits
// for one, and never takes part in a deadlock.
func sweepSQL(t sqlmodel.SweepTarget) string {
	return fmt.Sprintf(`DELETE FROM %[1]s WHERE %[2]s IN (SELECT %[2]s FROM %[1]s WHERE %[3]s < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`, t.Table, t.Key, t.Until)
}

// Sweep deletes every pending request, authorization code (used or not),
// token (used or not), device authorization (decided or not), client
// assertion id, grant record and upstream vault entry whose ExpiresAt is
// before now, and forgets the
// revoked grants whose retention ended before now, and returns how many
// rows it deleted. Each statement deletes at most the sweep batch
// (Options.SweepBatch) and commits on its own; Sweep runs them until nothing
// is left or ctx is done. Rows locked by a transaction in progress are left
// for the next sweep. The background sweeper calls it with the clock's time;
// call it yourself if you disabled that (Options.SweepInterval).
func (m *Model) Sweep(ctx context.Context, now time.Time) (int64, error) {
	return m.cfg.Sweep(ctx, func(target sqlmodel.SweepTarget) (int64, error) {
		tag, err := m.execRC(ctx, "sweep "+target.Table, sweepSQL(target), now, m.cfg.Batch)
		return tag.RowsAffected(), err
	})
}

// idleClientBatch is the most clients one transaction of DeleteIdleClients
// deletes: it holds an advisory lock per client, and PostgreSQL's lock
// table is shared and small.
const idleClientBatch = 100

// idleClientsSQL lists candidates: dynamically registered clients (not
// pre-registered) last used before $1 (NULL, unknown, is never before).
// The partial index mcpoauth_clients_last_used_at serves it.
const idleClientsSQL = `SELECT id FROM mcpoauth_clients WHERE NOT pre_registered AND last_used_at < $1 ORDER BY last_used_at LIMIT $2`

// lockIdleClientsSQL locks the rows of the candidates $1 that are still
// idle at $2, once their advisory locks are held: a RecordClientUse that
// committed since the candidates were read has taken its client out, and
// one that comes later waits for the delete and finds no client. Rows
// another transaction has locked are skipped, for the next sweep.
const lockIdleClientsSQL = `SELECT id FROM mcpoauth_clients WHERE id = ANY($1::text[]) AND NOT pre_registered AND last_used_at < $2 FOR UPDATE SKIP LOCKED`

// DeleteIdleClients deletes every client that is not pre-registered and
// whose last_used_at is before idleSince, with everything issued to it, as
// DeleteClient does (the same statement, on a batch of clients), and
// returns how many it deleted. Each batch of at most 100 clients is one
// transaction, which holds the clients' advisory locks, so a token save of
// one of them lands before (and is deleted) or after (and finds the client
// gone); it runs batches until none is left or ctx is done.
func (m *Model) DeleteIdleClients(ctx context.Context, idleSince time.Time) (int, error) {
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		var candidates, deleted int
		var err error
		for range deleteClientAttempts {
			candidates, deleted, err = m.deleteIdleClientBatch(ctx, idleSince)
			if !isDeadlock(err) {
				break
			}
		}
		if err != nil {
			return total, err
		}
		total += deleted
		if candidates < idleClientBatch || deleted == 0 {
			return total, nil
		}
	}
}

// deleteIdleClientBatch deletes one batch of idle clients in one
// transaction, and returns how many candidates it found and how many it
// deleted.
func (m *Model) deleteIdleClientBatch(ctx context.Context, idleSince time.Time) (candidates, deleted int, err error) {
	const op = "delete idle clients"
	var payloads []string
	err = m.inTx(ctx, op, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, idleClientsSQL, idleSince, idleClientBatch)
		if err != nil {
			return errs.Storage(ctx, op, err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return errs.Storage(ctx, op, err)
		}
		candidates = len(ids)
		if candidates == 0 {
			return nil
		}
		classes, keys := lockKeys(lockClassClient, ids...).columns()
		if _, err := tx.Exec(ctx, advisoryLockSQL, classes, keys); err != nil {
			return errs.Storage(ctx, op, err)
		}
		if rows, err = tx.Query(ctx, lockIdleClientsSQL, ids, idleSince); err != nil {
			return errs.Storage(ctx, op, err)
		}
		if ids, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return errs.Storage(ctx, op, err)
		}
		if len(ids) == 0 {
			return nil
		}
		tag, err := tx.Exec(ctx, deleteClientSQL, ids)
		if err != nil {
			return errs.Storage(ctx, op, err)
		}
		deleted = int(tag.RowsAffected())
		payloads = make([]string, len(ids))
		for i, id := range ids {
			payloads[i] = idPayload(notifyClient, id)
		}
		return notify(ctx, tx, op, payloads...)
	})
	if err == nil {
		m.evict(payloads...)
	}
	return candidates, deleted, err
}
