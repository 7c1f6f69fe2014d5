// Package postgres is an mcpoauth.Model on PostgreSQL, through a pgx/v5
// connection pool, for servers that run more than one instance or must keep
// their grants across restarts. It implements the optional capabilities
// too (mcpoauth.ClientRegistrar, mcpoauth.ClientUsageRecorder,
// mcpoauth.DeviceStore, mcpoauth.AssertionReplayStore, mcpoauth.GrantStore,
// mcpoauth.UpstreamTokenStore), and passes the modeltest conformance kit.
//
//	pool, err := pgxpool.New(ctx, "postgres://mcp@db.example.com/mcp")
//	...
//	model, err := postgres.New(ctx, pool, postgres.Options{})
//	...
//	defer model.Close()
//	if err := model.Migrate(ctx); err != nil { ... }
//	srv, err := mcpoauth.New(mcpoauth.Config{Model: model, ...})
//
// # Schema
//
// The schema is embedded in the package and applied by Migrate, which is
// explicit (New never changes the database), versioned (the table
// mcpoauth_schema_migrations records what was applied), idempotent, and
// safe to run from several replicas at once. The tables, all named
// mcpoauth_*, are created in the current schema, the first of the
// connection's search_path: to keep them apart, give the pool's connections
// a search_path (pgxpool.Config.ConnConfig.RuntimeParams["search_path"]).
//
// Every credential is stored under its SHA-256 digest, as a 32-byte bytea
// (a CHECK refuses any other length); client metadata is jsonb, scopes are
// text[], an authorization request's state is bytea (it is the client's,
// byte for byte), times are timestamptz, so they keep microseconds, not
// nanoseconds. Every lookup has an index: primary keys for the digests and
// client IDs, grant_id for RevokeGrant, expires_at for the sweeper. The one
// exception is DeleteClient, a rare administrative operation, which scans
// by client_id rather than make every token insert maintain an index;
// DeleteIdleClients scans the same way, once per batch of 100 clients.
//
// # Atomicity
//
// Each one-time consumption is one atomic statement: a pending request is
// consumed by DELETE ... RETURNING; a code or refresh token is redeemed by a
// conditional UPDATE ... WHERE NOT used, and an approved device code by a
// conditional DELETE, in the transaction that saves the tokens it issues,
// so of concurrent redemptions exactly one succeeds and a failed save leaves
// the credential unredeemed. A device authorization is decided, and its
// polls recorded, by conditional UPDATEs (compare-and-set), so a poll never
// writes over the user's decision. Nothing is read and then written.
//
// RevokeGrant and every save of a grant's tokens or codes take a
// transaction-level advisory lock on the grant and check the
// mcpoauth_revoked_grants table after taking it, so a save that races a
// revocation either lands before it (and is deleted by it) or sees it (and
// fails with ErrNotFound); grant records and upstream vault entries are
// saved the same way. DeleteClient and every save of a client's tokens
// take an advisory lock on the client the same way, so such a save either
// lands before the delete (and is deleted by it) or starts after it. Every
// statement that changes existing rows runs in a READ COMMITTED
// transaction, whatever the database's default: that reasoning needs it,
// and at a stricter level a conditional UPDATE that meets a concurrent one
// fails instead of re-checking its condition.
//
// # Expiry
//
// Expired rows are deleted by a background sweeper, in bounded batches, every
// sweep interval (Options.SweepInterval, Options.SweepBatch); Sweep runs one pass on
// demand. Lookups return expired records: the server checks expiry.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/internal/sqlmodel"
)

// Compile-time proofs that Model satisfies the storage contracts
// (DeviceStore: device.go).
var (
	_ mcpoauth.Model                = (*Model)(nil)
	_ mcpoauth.ClientRegistrar      = (*Model)(nil)
	_ mcpoauth.ClientUsageRecorder  = (*Model)(nil)
	_ mcpoauth.AssertionReplayStore = (*Model)(nil)
)

const (
	// DefaultSweepInterval is how often the sweeper runs unless
	// Options.SweepInterval says otherwise.
	DefaultSweepInterval = time.Minute
	// DefaultSweepBatch is the most rows one sweep statement deletes unless
	// Options.SweepBatch says otherwise.
	DefaultSweepBatch = 1000
	// RevokedGrantRetention is the least time a revoked grant is
	// remembered (longer if its tokens or codes would have lived longer), so
	// that a late save of one of its tokens cannot resurrect it.
	RevokedGrantRetention = 30 * 24 * time.Hour
)

// Model is an mcpoauth.Model, mcpoauth.ClientRegistrar and
// mcpoauth.DeviceStore on PostgreSQL.
// Create it with New or Open, apply the schema with Migrate, and Close it
// when done. It is safe for concurrent use, by any number of processes
// sharing the database.
type Model struct {
	pool     *pgxpool.Pool
	ownsPool bool
	cfg      sqlmodel.Sweeper

	stopSweeper context.CancelFunc
	done        chan struct{} // closed when the sweeper has exited
	closeOnce   sync.Once

	// cache is the verification cache, nil unless
	// Options.VerificationCache; its listener runs until Close.
	cache        *verificationCache
	stopListener context.CancelFunc
	listenDone   chan struct{} // closed when the listener has exited
	holdListener atomic.Bool   // tests: keep the listener from reconnecting
	listenerPID  atomic.Uint32 // the listening backend's process ID, 0 if none
}

// NoSweep, as Options.SweepInterval, runs no background sweeper: call
// Sweep yourself then (from one replica, or from a cron job), or the tables
// grow without bound.
const NoSweep time.Duration = -1

// Options configures New and Open; the zero value is the default.
type Options struct {
	// SweepInterval is how often the background sweeper deletes expired
	// rows: 0 means DefaultSweepInterval, NoSweep (any negative value) none.
	SweepInterval time.Duration
	// SweepBatch is the most rows one sweep statement deletes (0:
	// DefaultSweepBatch), which bounds how long a sweep holds row locks and
	// how much WAL one statement writes. A sweep runs statements until the
	// backlog is gone.
	SweepBatch int
	// Now is the clock (nil: time.Now) that the sweeper uses to decide what
	// expired and RevokeGrant uses to date a revocation; tests use it to
	// control time. It never makes a lookup refuse a record: expiry is the
	// server's business.
	Now func() time.Time
	// SweepErrorHandler receives the background sweeper's failures, since
	// it has no caller to return them to (nil: a warning on
	// slog.Default()). The error never carries a credential.
	SweepErrorHandler func(error)

	// VerificationCache keeps the access tokens GetToken finds in memory,
	// so that a replica answers repeated verifications of a token without
	// a round trip to the database. Off by default. Every revocation
	// (RevokeToken, RevokeGrant, DeleteClient, DeleteIdleClients: a
	// token, a grant, a replay detected, a client, a user's grants) sends
	// a PostgreSQL notification in its transaction, whether the cache is
	// on or not, and each Model with the cache keeps one connection of
	// its own (outside the pool) LISTENing for them: a revocation on any
	// replica evicts the token from every cache within milliseconds of
	// its commit, and from the revoking replica's own before the call
	// returns. While that connection is down (or silent past
	// CacheStaleness), entries older than CacheStaleness are not served;
	// once it is back the whole cache is flushed, since notifications
	// were lost. So a revoked token is accepted by another replica for at
	// most CacheStaleness after the revocation, in the worst case.
	//
	// It needs a direct session with the database: through a pooler in
	// transaction mode (PgBouncer's default) LISTEN receives nothing, and
	// tokens stay cached for up to five minutes after their revocation.
	VerificationCache bool
	// CacheSize is the most access tokens the cache holds (0:
	// DefaultCacheSize, about 30 MB at 300 bytes a token).
	CacheSize int
	// CacheStaleness bounds how long a revoked token may still be
	// accepted by another replica while notifications do not arrive (0:
	// DefaultCacheStaleness). The notification connection is checked
	// every third of it.
	CacheStaleness time.Duration
}

// New returns a Model on pool, after checking that the database answers,
// and starts its background sweeper. It does not create or change the
// schema: call Migrate for that. The pool stays the caller's: Close does not
// close it.
func New(ctx context.Context, pool *pgxpool.Pool, opts Options) (*Model, error) {
	if pool == nil {
		return nil, errors.New("postgres: nil pool")
	}
	if err := pool.Ping(ctx); err != nil {
		return nil, fmt.Errorf("postgres: ping: %w", err)
	}
	return newModel(pool, false, opts), nil
}

// Open connects a new pool to the database at url (a PostgreSQL URL or
// key=value connection string, as pgxpool.ParseConfig reads it) and returns
// a Model on it, as New does. The Model owns that pool: Close closes it.
func Open(ctx context.Context, url string, opts Options) (*Model, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		// pgx's message names the connection string's fields, never the
		// password.
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: ping: %w", err)
	}
	return newModel(pool, true, opts), nil
}

func newModel(pool *pgxpool.Pool, owns bool, opts Options) *Model {
	cfg := sqlmodel.NewSweeper("postgres", opts.SweepInterval, DefaultSweepInterval, opts.SweepBatch, DefaultSweepBatch, opts.Now, opts.SweepErrorHandler)
	m := &Model{pool: pool, ownsPool: owns, cfg: cfg, listenDone: make(chan struct{})}
	if opts.VerificationCache {
		size, staleness := DefaultCacheSize, DefaultCacheStaleness
		if opts.CacheSize > 0 {
			size = opts.CacheSize
		}
		if opts.CacheStaleness > 0 {
			staleness = opts.CacheStaleness
		}
		m.cache = newVerificationCache(size, staleness, cfg.Clock)
		lctx, stop := context.WithCancel(context.Background())
		m.stopListener = stop
		go m.listener(lctx)
	} else {
		close(m.listenDone)
	}
	m.stopSweeper, m.done = cfg.Start(m.Sweep)
	return m
}

// Pool returns the connection pool the Model uses.
func (m *Model) Pool() *pgxpool.Pool { return m.pool }

// Close stops the background sweeper, interrupting a sweep in progress,
// and the verification cache's listener, and waits for them to exit; if
// the Model was made by Open it then closes the pool. It is idempotent and
// safe to call concurrently. A Model made by New stays usable afterwards,
// only nothing sweeps it any more, and its cache, hearing no revocations,
// serves nothing older than CacheStaleness.
func (m *Model) Close() {
	m.closeOnce.Do(func() {
		m.stopSweeper()
		if m.stopListener != nil {
			m.stopListener()
		}
		<-m.done
		<-m.listenDone
		if m.ownsPool {
			m.pool.Close()
		}
	})
	<-m.done
}

// errs are the errors Model returns, built once.
var errs = sqlmodel.NewErrors("postgres", sqlmodel.Driver{NoRows: pgx.ErrNoRows, IsUniqueViolation: isUniqueViolation})

// isUniqueViolation reports whether err is PostgreSQL's unique_violation.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// isDeadlock reports whether err is PostgreSQL's deadlock_detected: it
// ended the transaction to break a cycle of lock waits.
func isDeadlock(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "40P01"
}

// readCommitted is the isolation every transaction of the Model runs at,
// whatever the database's default: each statement must see what committed
// before it started, in particular after a lock statement returns.
var readCommitted = pgx.TxOptions{IsoLevel: pgx.ReadCommitted}

// inTx runs fn in a READ COMMITTED transaction and commits it if fn returns
// nil; otherwise it rolls back and returns fn's error.
func (m *Model) inTx(ctx context.Context, op string, fn func(tx pgx.Tx) error) error {
	tx, err := m.pool.BeginTx(ctx, readCommitted)
	if err != nil {
		return errs.Storage(ctx, op, err)
	}
	if err := fn(tx); err != nil {
		// The transaction is discarded even if ROLLBACK fails (a done
		// context, a broken connection): pgx then closes the connection,
		// and the server aborts a transaction whose connection is gone.
		_ = tx.Rollback(ctx)
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return errs.Storage(ctx, op, err)
	}
	return nil
}

// execRC runs one statement that changes existing rows in a READ
// COMMITTED transaction of its own, and returns its command tag. Run on its
// own it would run at the database's default isolation, and at REPEATABLE
// READ or SERIALIZABLE a conditional UPDATE or DELETE that meets a
// concurrent change fails with a serialization error, where READ COMMITTED
// re-checks its condition against the row that was committed.
func (m *Model) execRC(ctx context.Context, op, sql string, args ...any) (pgconn.CommandTag, error) {
	var tag pgconn.CommandTag
	err := m.inTx(ctx, op, func(tx pgx.Tx) error {
		var err error
		tag, err = tx.Exec(ctx, sql, args...)
		if err != nil {
			return errs.Storage(ctx, op, err)
		}
		return nil
	})
	return tag, err
}

// execOne runs one statement as execRC does, and answers none if it
// changed no row.
func (m *Model) execOne(ctx context.Context, op string, none error, sql string, args ...any) error {
	tag, err := m.execRC(ctx, op, sql, args...)
	if err == nil && tag.RowsAffected() == 0 {
		return none
	}
	return err
}

// nonNil returns s, or an empty slice for nil: the scopes columns are NOT
// NULL, and pgx sends a nil slice as NULL.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// insert runs the INSERT of a new record, and answers conflict if a key of
// the record is taken.
func (m *Model) insert(ctx context.Context, op string, conflict error, sql string, args ...any) error {
	_, err := m.pool.Exec(ctx, sql, args...)
	return errs.Insert(ctx, op, conflict, err)
}

// redeem runs r in one transaction that holds the locks of the issued
// tokens' clients and grants from its first statement, and saves the issued
// tokens in it: all or nothing.
func (m *Model) redeem(ctx context.Context, r sqlmodel.Redemption) error {
	if err := r.Refused(ctx); err != nil {
		return err
	}
	batch, err := newTokenBatch(r.Issued)
	if err != nil {
		return err
	}
	return m.inTx(ctx, r.Op, func(tx pgx.Tx) error {
		tag, err := lockThen(ctx, tx, batch.locks, r.Update, r.Args...)
		if err != nil {
			return errs.Storage(ctx, r.Op, err)
		}
		if tag.RowsAffected() == 0 {
			return r.WhyNotRedeemed(ctx, errs, txOf(tx))
		}
		return insertTokens(ctx, tx, batch, true)
	})
}
