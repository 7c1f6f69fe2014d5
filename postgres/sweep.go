package postgres

import (
	"context"
	"fmt"
	"time"
)

// sweepTargets are the tables the sweeper deletes from, with the primary
// key and the column that says when a row may go. Clients are never swept.
var sweepTargets = []struct{ table, key, until string }{
	{"mcpoauth_authorization_requests", "id", "expires_at"},
	{"mcpoauth_authorization_codes", "digest", "expires_at"},
	{"mcpoauth_tokens", "digest", "expires_at"},
	{"mcpoauth_device_authorizations", "device_code_digest", "expires_at"},
	{"mcpoauth_revoked_grants", "grant_id", "forget_after"},
}

// sweepSQL returns the statement that deletes at most $2 rows of a target
// whose time is before $1. Rows another transaction has locked (a row being
// consumed or revoked right now) are skipped, so the sweeper never waits
// for one, and never takes part in a deadlock.
func sweepSQL(table, key, until string) string {
	return fmt.Sprintf(`DELETE FROM %[1]s WHERE %[2]s IN (SELECT %[2]s FROM %[1]s WHERE %[3]s < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`, table, key, until)
}

// Sweep deletes every pending request, authorization code (used or not),
// token (used or not) and device authorization (decided or not) whose
// ExpiresAt is before now, and forgets the
// revoked grants whose retention ended before now, and returns how many
// rows it deleted. Each statement deletes at most the sweep batch
// (Options.SweepBatch) and commits on its own; Sweep runs them until nothing
// is left or ctx is done. Rows locked by a transaction in progress are left
// for the next sweep. The background sweeper calls it with the clock's time;
// call it yourself if you disabled that (Options.SweepInterval).
func (m *Model) Sweep(ctx context.Context, now time.Time) (int64, error) {
	var total int64
	for _, target := range sweepTargets {
		sql := sweepSQL(target.table, target.key, target.until)
		for {
			if err := ctx.Err(); err != nil {
				return total, err
			}
			tag, err := m.execRC(ctx, "sweep "+target.table, sql, now, m.cfg.sweepBatch)
			if err != nil {
				return total, err
			}
			total += tag.RowsAffected()
			if tag.RowsAffected() < int64(m.cfg.sweepBatch) {
				break
			}
		}
	}
	return total, nil
}

// sweeper runs Sweep every sweep interval until Close, and reports its
// failures to the sweep error handler.
func (m *Model) sweeper(ctx context.Context) {
	defer close(m.done)
	ticker := time.NewTicker(m.cfg.sweepInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			if _, err := m.Sweep(ctx, m.cfg.clock()); err != nil && ctx.Err() == nil {
				m.cfg.sweepError(err)
			}
		}
	}
}
