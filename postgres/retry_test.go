package postgres

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
)

// TestSafeReadRetries drives safeRead with a read that fails the first
// times it runs, and checks safeReadRetries = 2: after a broken connection
// the read runs again, at most twice, each time on a connection of the pool
// that answers a ping; an error that is not a broken connection, or one
// after the caller gave up, is returned at once.
func TestSafeReadRetries(t *testing.T) {
	m := newTestModel(t, Options{})
	// 57P01 admin_shutdown: what the server answers on a connection whose
	// backend was terminated (pg_terminate_backend).
	broken := &pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}
	notBroken := &pgconn.PgError{Code: "42P01", Message: "relation does not exist"}
	done, cancel := context.WithCancel(t.Context())
	cancel()

	for _, tc := range []struct {
		name      string
		ctx       context.Context
		err       error // what the read fails with
		failures  int   // how many times it fails before it succeeds
		wantCalls int
		wantErr   error // nil: safeRead succeeds
	}{
		{"one broken connection is retried", t.Context(), broken, 1, 2, nil},
		{"a second broken connection is retried again", t.Context(), broken, 2, 3, nil},
		{"a third broken connection is returned after two retries", t.Context(), broken, 3, 3, broken},
		{"an error that is not a broken connection is returned at once", t.Context(), notBroken, 1, 1, notBroken},
		{"a done context is returned at once", done, broken, 1, 1, broken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// What each read ran on, checked once safeRead returns: a
			// failed assertion inside the read would leave safeRead's
			// connection unreleased.
			var ran []querier
			var pings []error
			err := m.safeRead(tc.ctx, func(q querier) error {
				ran = append(ran, q)
				if conn, ok := q.(*pgxpool.Conn); ok {
					pings = append(pings, conn.Ping(tc.ctx))
				}
				if len(ran) <= tc.failures {
					return tc.err
				}
				return nil
			})
			require.Len(t, ran, tc.wantCalls, "reads run")
			require.Same(t, m.pool, ran[0], "the first read runs on the pool")
			for i, q := range ran[1:] {
				_, ok := q.(*pgxpool.Conn)
				require.True(t, ok, "retry %d runs on a connection of its own, got %T", i+1, q)
				require.NoError(t, pings[i], "retry %d runs on a connection that answers a ping", i+1)
			}
			if tc.wantErr == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tc.wantErr)
			}
		})
	}
}
