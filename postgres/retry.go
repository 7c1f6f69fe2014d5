package postgres

import (
	"context"
	"errors"
	"io"
	"net"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// querier runs a query that returns one row: the pool, or one of its
// connections.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

var (
	_ querier = (*pgxpool.Pool)(nil)
	_ querier = (*pgxpool.Conn)(nil)
)

// safeReadRetries is how many times safeRead runs a read again after its
// connection broke. One is enough for a replica whose idle connections all
// died together (a restart); the second covers a connection that answered
// its ping and was cut right after, as when every backend is terminated
// one by one.
const safeReadRetries = 2

// safeRead runs read, a lookup that changes nothing and so is safe to
// repeat, on the pool; if the connection it ran on broke (the server
// restarted or terminated the backend, the network cut it), it runs read
// again, at most safeReadRetries times, each on a connection that has just
// answered a ping, so that a replica whose connections died answers the
// request rather than fail it. Without a live connection (the database is
// really down) it returns the error at once.
func (m *Model) safeRead(ctx context.Context, read func(q querier) error) error {
	err := read(m.pool)
	for range safeReadRetries {
		if err == nil || !isBrokenConn(ctx, err) {
			return err
		}
		conn := m.liveConn(ctx)
		if conn == nil {
			return err
		}
		err = read(conn)
		conn.Release()
	}
	return err
}

// liveConn returns a connection of the pool that answers a ping, or nil.
// Every dead idle connection it meets is closed by its failed ping and
// dropped by the pool on release, so it tries at most as many as the pool
// holds, and one new.
func (m *Model) liveConn(ctx context.Context) *pgxpool.Conn {
	for range m.pool.Config().MaxConns + 1 {
		conn, err := m.pool.Acquire(ctx)
		if err != nil {
			return nil // no new connection either: down
		}
		if conn.Ping(ctx) == nil {
			return conn
		}
		conn.Release()
		if ctx.Err() != nil {
			return nil
		}
	}
	return nil
}

// isBrokenConn reports whether err says the connection broke, rather than
// that the statement failed: a network error, the server closing the
// connection (SQLSTATE class 08, or 57P01-57P03, the backend terminated or
// the server shutting down), or pgx finding the connection closed. A done
// context is not: the caller gave up.
func isBrokenConn(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "57P01", "57P02", "57P03":
			return true
		}
		return len(pgErr.Code) == 5 && pgErr.Code[:2] == "08"
	}
	var netErr net.Error
	return pgconn.SafeToRetry(err) || errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, pgconn.ErrConnClosed) || isConnClosed(err)
}

// isConnClosed reports whether err is pgconn's "conn closed" (a
// connection pgx closed after an earlier failure), which has no exported
// type.
func isConnClosed(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if e.Error() == "conn closed" {
			return true
		}
	}
	return false
}

// evict applies a revocation to the Model's own verification cache at
// once, without waiting for its notification to come back.
func (m *Model) evict(payloads ...string) {
	if m.cache == nil {
		return
	}
	for _, p := range payloads {
		m.cache.evict(p)
	}
}
