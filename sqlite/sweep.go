package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/mcpoauth/mcpoauth/internal/sqlmodel"
)

// sweepSQL returns the statement that deletes at most $2 rows of a target
// whose time is before $1, found through the target's index on that time.
func sweepSQL(t sqlmodel.SweepTarget) string {
	return fmt.Sprintf(`DELETE FROM %[1]s WHERE %[2]s IN (SELECT %[2]s FROM %[1]s WHERE %[3]s < ?1 LIMIT ?2)`, t.Table, t.Key, t.Until)
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
	total, err := m.cfg.Sweep(ctx, func(target sqlmodel.SweepTarget) (int64, error) {
		return m.exec(ctx, "sweep "+target.Table, sweepSQL(target), nanosOrZero(now), m.cfg.Batch)
	})
	if err != nil {
		return total, err
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
