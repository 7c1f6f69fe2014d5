package sqlite

import (
	"context"
	"fmt"
	"time"
)

// sweepTargets are the tables the sweeper deletes from, with the primary
// key and the column that says when a row may go. Clients are not swept
// here: the server deletes idle ones (DeleteIdleClients) with the idle
// period of its Config.
var sweepTargets = []struct{ table, key, until string }{
	{"mcpoauth_authorization_requests", "id", "expires_at"},
	{"mcpoauth_authorization_codes", "digest", "expires_at"},
	{"mcpoauth_tokens", "digest", "expires_at"},
	{"mcpoauth_device_authorizations", "device_code_digest", "expires_at"},
	{"mcpoauth_revoked_grants", "grant_id", "forget_after"},
	{"mcpoauth_assertion_ids", "digest", "expires_at"},
	{"mcpoauth_grants", "id", "expires_at"},
	{"mcpoauth_upstream_tokens", "id", "expires_at"},
}

// sweepSQL returns the statement that deletes at most $2 rows of a target
// whose time is before $1, found through the target's index on that time.
func sweepSQL(table, key, until string) string {
	return fmt.Sprintf(`DELETE FROM %[1]s WHERE %[2]s IN (SELECT %[2]s FROM %[1]s WHERE %[3]s < ?1 LIMIT ?2)`, table, key, until)
}

// Sweep deletes every pending request, authorization code (used or not),
// token (used or not), device authorization (decided or not), client
// assertion id, grant record and vault entry whose ExpiresAt is before
// now, and forgets the revoked grants whose retention ended before now,
// then checkpoints the WAL (Checkpoint), and returns how many rows it
// deleted. Each statement deletes at most the sweep batch
// (Options.SweepBatch) in a write transaction of its own, so the write
// lock is held briefly; Sweep runs them until nothing is left or ctx is
// done. The background sweeper calls it with the clock's time; call it
// yourself if you disabled that (Options.SweepInterval).
func (m *Model) Sweep(ctx context.Context, now time.Time) (int64, error) {
	var total int64
	for _, target := range sweepTargets {
		query := sweepSQL(target.table, target.key, target.until)
		for {
			n, err := m.exec(ctx, "sweep "+target.table, query, nanosOrZero(now), m.cfg.sweepBatch)
			if err != nil {
				return total, err
			}
			total += n
			if n < int64(m.cfg.sweepBatch) {
				break
			}
		}
	}
	return total, m.Checkpoint(ctx)
}

// Checkpoint copies the WAL into the database file and truncates the WAL
// to zero bytes (PRAGMA wal_checkpoint(TRUNCATE)) on the writer
// connection, so the WAL stays bounded whatever SQLite's automatic
// checkpoints managed. It waits for readers that use the WAL (up to the
// busy timeout); with readers of another process still in it, it copies
// what it can and the next one finishes the job. The sweeper calls it
// after every sweep.
func (m *Model) Checkpoint(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var busy, logFrames, checkpointed int
	err := m.w.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logFrames, &checkpointed)
	if err != nil {
		return errs.Storage(ctx, "checkpoint", err)
	}
	return nil
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
