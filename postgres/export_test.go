package postgres

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
)

// The helpers the external tests (package postgres_test) share with the
// internal ones: a fresh schema of the test database per test.

// RequirePostgres is requirePostgres.
func RequirePostgres(tb testing.TB) { requirePostgres(tb) }

// AdminDatabase returns the name of the test database and a pool on it for
// administration (it is not on any test's schema).
func AdminDatabase(tb testing.TB) (string, *pgxpool.Pool) {
	tb.Helper()
	requirePostgres(tb)
	return testDB.name, testDB.pool
}

// NewSharedTestPools returns n pools on one fresh schema of the test
// database, as n replicas of a server would have: n connection pools on
// one database. configure may adjust each pool's configuration (the
// search_path is set already). The pools are closed when tb ends.
func NewSharedTestPools(tb testing.TB, n int, configure ...func(*pgxpool.Config)) []*pgxpool.Pool {
	tb.Helper()
	requirePostgres(tb)
	ctx := context.Background()
	schema := fmt.Sprintf("m%d", testDB.seq.Add(1))
	_, err := testDB.pool.Exec(ctx, "CREATE SCHEMA "+schema)
	require.NoError(tb, err)
	pools := make([]*pgxpool.Pool, n)
	for i := range pools {
		cfg := testDB.config.Copy()
		cfg.ConnConfig.RuntimeParams["search_path"] = schema
		// Enough connections that the concurrency tests contend in the
		// database, not for the pool.
		cfg.MaxConns = 16
		for _, f := range configure {
			f(cfg)
		}
		pools[i], err = pgxpool.NewWithConfig(ctx, cfg)
		require.NoError(tb, err)
		tb.Cleanup(pools[i].Close)
	}
	return pools
}

// NewTestModelOn is newTestModelOn: a migrated Model on pool, closed when
// tb ends.
func NewTestModelOn(tb testing.TB, pool *pgxpool.Pool, opts Options) *Model {
	tb.Helper()
	return newTestModelOn(tb, pool, opts)
}

// The verification cache, seen from the tests.

// Cached reports whether the Model's verification cache holds the token.
func (m *Model) Cached(d mcpoauth.Digest) bool {
	if m.cache == nil {
		return false
	}
	m.cache.mu.RLock()
	defer m.cache.mu.RUnlock()
	_, ok := m.cache.entries[d]
	return ok
}

// Listening reports whether the cache's notification connection listens.
func (m *Model) Listening() bool { return m.cache != nil && m.cache.listening.Load() }

// ListenerPID returns the process ID of the backend of the notification
// connection, 0 if there is none.
func (m *Model) ListenerPID() uint32 { return m.listenerPID.Load() }

// HoldListener keeps the notification connection from reconnecting (true)
// or lets it (false).
func (m *Model) HoldListener(hold bool) { m.holdListener.Store(hold) }
