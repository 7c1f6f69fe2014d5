// Package sqlite is an mcpoauth.Model on a SQLite file, through
// database/sql and modernc.org/sqlite (pure Go, no cgo): the persistent
// embedded default, for a single server that must keep its clients and
// grants across restarts with no database to run. It implements every
// optional capability of the PostgreSQL model too (mcpoauth.ClientRegistrar,
// ClientUsageRecorder, DeviceStore, AssertionReplayStore, GrantStore,
// UpstreamTokenStore), and passes the modeltest conformance kit.
//
//	model, err := sqlite.Open(ctx, "/var/lib/mcp/oauth.db", sqlite.Options{})
//	...
//	defer model.Close()
//	srv, err := mcpoauth.New(mcpoauth.Config{Model: model, ...})
//
// Choose PostgreSQL (package postgres) instead when more than one server
// instance shares the grants: SQLite serialises every write through one
// file lock, and its file must be on a local disk.
//
// # Schema
//
// The schema is embedded and applied by Open, versioned (the table
// mcpoauth_schema_migrations records what was applied), in write
// transactions that take SQLite's write lock first, so two processes
// opening one file at once apply each migration once. Every credential is
// stored under its SHA-256 digest, a 32-byte blob; times are INTEGER
// nanoseconds since the Unix epoch (NULL for the zero time), so a time
// between the years 1678 and 2262 comes back to the nanosecond and later
// ones are clamped; scopes and client metadata are JSON.
//
// # Connections and settings
//
// A Model holds two connection pools on the file: one connection that
// makes every write, and a few read-only ones (Options.Readers) for the
// lookups, so a token verification never waits for a write. Every
// connection runs with journal_mode=WAL (readers and the writer do not
// block each other), busy_timeout (Options.BusyTimeout: a connection of
// another process that holds the lock is waited for, not reported as an
// error), foreign_keys=ON, and synchronous=FULL unless
// Options.Durability says otherwise: see Durability for why.
//
// # Atomicity
//
// Every method that changes rows runs in one transaction on the writer
// connection, begun with BEGIN IMMEDIATE, which takes the file's write lock
// at once: writes are serialised within the process (one connection) and
// across processes (the lock). A one-time credential is redeemed by a
// conditional UPDATE or DELETE whose changed-row count says whether this
// call won, in the transaction that saves the tokens it issues, so of
// concurrent redemptions exactly one succeeds and a failed save leaves the
// credential unredeemed. RevokeGrant deletes the grant's rows and records
// the grant in mcpoauth_revoked_grants in one transaction, and every save
// of a grant's tokens, codes, grant record or vault entries checks that
// table in its own: since the two are serialised, a save either lands
// before the revocation (and is deleted by it) or sees it (and fails with
// ErrNotFound). DeleteClient and every token save are serialised the same
// way.
//
// # Expiry and the WAL
//
// A background sweeper deletes expired rows in bounded batches, one short
// write transaction each, every Options.SweepInterval, then checkpoints the
// WAL with wal_checkpoint(TRUNCATE), so that the WAL file returns to zero
// bytes at least once a sweep interval. Between sweeps SQLite's automatic
// checkpoint (every 1000 pages written) keeps it bounded, and
// journal_size_limit truncates it to 64 MiB after a checkpoint. Lookups
// return expired records: the server checks expiry.
package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/internal/sqlmodel"
)

// Compile-time proofs that Model satisfies the storage contracts.
var (
	_ mcpoauth.Model                = (*Model)(nil)
	_ mcpoauth.ClientRegistrar      = (*Model)(nil)
	_ mcpoauth.ClientUsageRecorder  = (*Model)(nil)
	_ mcpoauth.AssertionReplayStore = (*Model)(nil)
	_ mcpoauth.DeviceStore          = (*Model)(nil)
	_ mcpoauth.GrantStore           = (*Model)(nil)
	_ mcpoauth.UpstreamTokenStore   = (*Model)(nil)
)

const (
	// DefaultSweepInterval is how often the sweeper runs unless
	// Options.SweepInterval says otherwise.
	DefaultSweepInterval = time.Minute
	// DefaultSweepBatch is the most rows one sweep transaction deletes
	// unless Options.SweepBatch says otherwise: it bounds how long a sweep
	// holds the write lock.
	DefaultSweepBatch = 1000
	// DefaultReaders is the size of the read-only connection pool unless
	// Options.Readers says otherwise.
	DefaultReaders = 4
	// DefaultBusyTimeout is how long a connection waits for the file's
	// lock held by another process unless Options.BusyTimeout says
	// otherwise.
	DefaultBusyTimeout = 5 * time.Second
	// RevokedGrantRetention is the least time a revoked grant is
	// remembered (longer if its tokens or codes would have lived longer), so
	// that a late save of one of its tokens cannot resurrect it.
	RevokedGrantRetention = 30 * 24 * time.Hour
	// journalSizeLimit is what the WAL file is truncated to after a
	// checkpoint, when it grew past it.
	journalSizeLimit = 64 << 20
)

// NoSweep, as Options.SweepInterval, runs no background sweeper: call
// Sweep yourself then, or the file grows without bound and the WAL is
// checkpointed only by SQLite's automatic checkpoints.
const NoSweep time.Duration = -1

// Durability chooses how a commit reaches the disk (PRAGMA synchronous).
type Durability int

const (
	// DurabilityFull, the default, is synchronous=FULL: every commit
	// fsyncs the WAL before it returns, so a committed grant, revocation
	// or consumed code survives a process kill, an operating system crash
	// and a power loss. It is the default because a lost commit here is
	// not only lost work: a revocation rolled back by a power cut would
	// bring a revoked grant's tokens back, and a consumed code or rotated
	// refresh token could be redeemed again. Reads pay nothing for it; each
	// write transaction pays one fsync.
	DurabilityFull Durability = iota
	// DurabilityProcess is synchronous=NORMAL: a commit is in the WAL
	// (written, not fsynced) when it returns, so it survives a kill of the
	// process, but the last commits may be lost by an operating system
	// crash or a power loss. Choose it where the disk's fsync is slow and
	// that window is acceptable.
	DurabilityProcess
)

// pragma returns the value of PRAGMA synchronous for d.
func (d Durability) pragma() string {
	if d == DurabilityProcess {
		return "NORMAL"
	}
	return "FULL"
}

// Options configures Open; the zero value is the default.
type Options struct {
	// SweepInterval is how often the background sweeper deletes expired
	// rows and checkpoints the WAL: 0 means DefaultSweepInterval, NoSweep
	// (any negative value) none.
	SweepInterval time.Duration
	// SweepBatch is the most rows one sweep transaction deletes (0:
	// DefaultSweepBatch). A sweep runs transactions until the backlog is
	// gone.
	SweepBatch int
	// Readers is the number of read-only connections (0: DefaultReaders).
	Readers int
	// BusyTimeout is how long a statement waits for the file's lock held
	// by another process before it fails (0: DefaultBusyTimeout).
	BusyTimeout time.Duration
	// Durability chooses PRAGMA synchronous; the zero value is
	// DurabilityFull.
	Durability Durability
	// Now is the clock (nil: time.Now) that the sweeper uses to decide what
	// expired and RevokeGrant uses to date a revocation; tests use it to
	// control time. It never makes a lookup refuse a record.
	Now func() time.Time
	// SweepErrorHandler receives the background sweeper's failures (nil: a
	// warning on slog.Default()). The error never carries a credential.
	SweepErrorHandler func(error)
}

// Model is an mcpoauth.Model, with every optional capability, on a SQLite
// file. Create it with Open and Close it when done. It is safe for
// concurrent use, and several processes may open the same file (each
// write then waits for the file's lock).
type Model struct {
	w *sql.DB // one connection: every write
	r *sql.DB // read-only connections: the lookups

	// Statements of the lookups on the hot path, prepared once per
	// reader connection.
	getTokenStmt  *sql.Stmt
	getClientStmt *sql.Stmt

	cfg sqlmodel.Sweeper

	stopSweeper context.CancelFunc
	done        chan struct{} // closed when the sweeper has exited
	closeOnce   sync.Once
	closeErr    error
}

// Open opens (creating it if need be) the SQLite database at path, a file
// name on a local file system, applies the embedded schema migrations, and
// starts the background sweeper. Close releases it.
func Open(ctx context.Context, path string, opts Options) (*Model, error) {
	if path == "" || strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") || path == ":memory:" {
		return nil, fmt.Errorf("sqlite: open %q: want the path of a file, without '?' or '#'", path)
	}
	busy := cmp.Or(opts.BusyTimeout, DefaultBusyTimeout)
	if busy < 0 {
		busy = 0
	}
	readers := cmp.Or(opts.Readers, DefaultReaders)
	if readers < 1 {
		readers = 1
	}
	w, err := openDB(ctx, dsn(path, busy, opts.Durability, false), 1, busy)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := migrate(ctx, w); err != nil {
		_ = w.Close()
		return nil, err
	}
	r, err := openDB(ctx, dsn(path, busy, opts.Durability, true), readers, busy)
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	m := &Model{w: w, r: r}
	if err := m.prepare(ctx); err != nil {
		_ = r.Close()
		_ = w.Close()
		return nil, err
	}
	m.start(opts)
	return m, nil
}

// dsn returns the connection string of modernc.org/sqlite for path: the
// pragmas every connection runs when it opens, and BEGIN IMMEDIATE for
// transactions. The driver runs busy_timeout first, so that switching the
// file to WAL waits for another process rather than failing.
func dsn(path string, busy time.Duration, d Durability, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(busy.Milliseconds(), 10)+")")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous("+d.pragma()+")")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Add("_pragma", "journal_size_limit("+strconv.Itoa(journalSizeLimit)+")")
	if readOnly {
		// A reader can never take the write lock by mistake.
		q.Add("_pragma", "query_only(ON)")
	} else {
		q.Set("_txlock", "immediate")
	}
	return path + "?" + q.Encode()
}

// openDB opens a pool of at most n connections and checks that one opens.
// Connections are kept open: each holds its prepared statements and page
// cache.
//
// Opening retries, for up to busy, while the file is locked: a connection
// that switches a new file to WAL while another process does the same can
// get SQLITE_BUSY at once, without SQLite calling its busy handler (the
// mode change needs an exclusive lock, which SQLite does not wait for), so
// busy_timeout alone does not cover processes that start together.
func openDB(ctx context.Context, dsn string, n int, busy time.Duration) (*sql.DB, error) {
	deadline := time.Now().Add(busy)
	wait := time.Millisecond
	for {
		db, err := sql.Open("sqlite", dsn)
		if err != nil {
			return nil, err
		}
		db.SetMaxOpenConns(n)
		db.SetMaxIdleConns(n)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
		err = db.PingContext(ctx)
		if err == nil {
			return db, nil
		}
		_ = db.Close()
		if !isBusy(err) || time.Now().Add(wait).After(deadline) {
			return nil, err
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// isBusy reports whether err is SQLite's SQLITE_BUSY (the file is locked by
// another connection), with any extended code.
func isBusy(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_BUSY
}

// prepare prepares the hot-path lookups on the reader pool.
func (m *Model) prepare(ctx context.Context) error {
	var err error
	if m.getTokenStmt, err = m.r.PrepareContext(ctx, getTokenSQL); err != nil {
		return errs.Storage(ctx, "prepare get token", err)
	}
	if m.getClientStmt, err = m.r.PrepareContext(ctx, getClientSQL); err != nil {
		return errs.Storage(ctx, "prepare get client", err)
	}
	return nil
}

// start applies the defaults of opts and starts the sweeper.
func (m *Model) start(opts Options) {
	m.cfg = sqlmodel.NewSweeper("sqlite", opts.SweepInterval, DefaultSweepInterval, opts.SweepBatch, DefaultSweepBatch, opts.Now, opts.SweepErrorHandler)
	m.stopSweeper, m.done = m.cfg.Start(m.Sweep)
}

// Close stops the background sweeper, interrupting a sweep in progress,
// waits for it to exit, and closes the connections; the last connection to
// close checkpoints the WAL into the database file. It is idempotent and
// safe to call concurrently; the Model is unusable afterwards.
func (m *Model) Close() error {
	m.closeOnce.Do(func() {
		m.stopSweeper()
		<-m.done
		m.closeErr = errors.Join(m.getTokenStmt.Close(), m.getClientStmt.Close(), m.r.Close(), m.w.Close())
	})
	return m.closeErr
}

// errs are the errors Model returns, built once.
var errs = sqlmodel.NewErrors("sqlite", sqlmodel.Driver{NoRows: sql.ErrNoRows, IsUniqueViolation: isUniqueViolation})

// isUniqueViolation reports whether err is SQLite's primary key or unique
// constraint violation (extended result codes; a CHECK or NOT NULL
// violation is not one).
func isUniqueViolation(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	return e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}

// inTx runs fn in a write transaction (BEGIN IMMEDIATE, on the writer
// connection) and commits it if fn returns nil; otherwise it rolls back and
// returns fn's error.
func (m *Model) inTx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tx, err := m.w.BeginTx(ctx, nil)
	if err != nil {
		return errs.Storage(ctx, op, err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return errs.Storage(ctx, op, err)
	}
	return nil
}

// exec runs one statement in a write transaction of its own and returns
// how many rows it changed.
func (m *Model) exec(ctx context.Context, op, query string, args ...any) (int64, error) {
	var n int64
	err := m.inTx(ctx, op, func(tx *sql.Tx) error {
		var err error
		n, err = execCount(ctx, tx, op, query, args...)
		return err
	})
	return n, err
}

// execOne runs one statement as exec does, and answers none if it
// changed no row.
func (m *Model) execOne(ctx context.Context, op string, none error, query string, args ...any) error {
	n, err := m.exec(ctx, op, query, args...)
	if err == nil && n == 0 {
		return none
	}
	return err
}

// execCount runs one statement in tx and returns how many rows it changed.
func execCount(ctx context.Context, tx *sql.Tx, op, query string, args ...any) (int64, error) {
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, errs.Storage(ctx, op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, errs.Storage(ctx, op, err)
	}
	return n, nil
}

// insert runs the INSERT of a new record in a transaction of its own, and
// answers conflict if a key of the record is taken.
func (m *Model) insert(ctx context.Context, op string, conflict error, query string, args ...any) error {
	return m.inTx(ctx, op, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, query, args...)
		return errs.Insert(ctx, op, conflict, err)
	})
}

// rowScanner is what *sql.Row and *sql.Rows have in common.
type rowScanner interface {
	Scan(dest ...any) error
}

// isRevoked reports, in tx, whether grantID was revoked.
func isRevoked(ctx context.Context, tx *sql.Tx, op, grantID string) (bool, error) {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM mcpoauth_revoked_grants WHERE grant_id = ?`, grantID).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, errs.Storage(ctx, op, err)
	}
	return true, nil
}
