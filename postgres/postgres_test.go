package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/mcpoauth/mcpoauth"
	"github.com/mcpoauth/mcpoauth/modeltest"
)

// The environment variables that point the tests at a PostgreSQL server.
const (
	envURL     = "MCPOAUTH_POSTGRES_URL"
	envRequire = "MCPOAUTH_REQUIRE_POSTGRES"
)

// testDB is the database this test binary creates on the server named by
// MCPOAUTH_POSTGRES_URL, used by every test and dropped when they end.
// Each model gets a schema of its own in it (newTestModel), so tests are
// isolated from each other and from whatever else the server holds.
var testDB struct {
	once   sync.Once
	err    error
	admin  string          // the URL given, to create and drop the database
	name   string          // mcpoauth_test_<random>
	config *pgxpool.Config // connects to the database; copied per model
	pool   *pgxpool.Pool   // to create schemas
	seq    atomic.Int64    // numbers the schemas
}

func TestMain(m *testing.M) {
	code := m.Run()
	if err := dropTestDB(); err != nil {
		fmt.Fprintln(os.Stderr, "postgres tests:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// requirePostgres skips tb if no PostgreSQL server is configured (or fails
// it if one is required), and otherwise makes sure the test database exists.
func requirePostgres(tb testing.TB) {
	tb.Helper()
	url := os.Getenv(envURL)
	if url == "" {
		if os.Getenv(envRequire) == "1" {
			tb.Fatalf("%s=1 but %s is not set: PostgreSQL is required", envRequire, envURL)
		}
		tb.Skipf("PostgreSQL not configured: set %s=postgres://postgres@127.0.0.1:5432/test to run", envURL)
	}
	testDB.once.Do(func() { testDB.err = createTestDB(url) })
	if testDB.err != nil {
		tb.Fatalf("PostgreSQL at %s: %v", envURL, testDB.err)
	}
}

func createTestDB(url string) error {
	ctx := context.Background()
	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	name := "mcpoauth_test_" + hex.EncodeToString(suffix[:])
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return err
	}
	testDB.admin, testDB.name = url, name
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return err
	}
	cfg.ConnConfig.Database = name
	testDB.config = cfg
	testDB.pool, err = pgxpool.NewWithConfig(ctx, cfg.Copy())
	return err
}

func dropTestDB() error {
	if testDB.name == "" {
		return nil
	}
	ctx := context.Background()
	testDB.pool.Close()
	conn, err := pgx.Connect(ctx, testDB.admin)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+testDB.name+" WITH (FORCE)")
	return err
}

// newTestPool returns a pool on a fresh schema of the test database (it is
// the connections' search_path), closed when tb ends. configure may adjust
// the pool's configuration.
func newTestPool(tb testing.TB, configure ...func(*pgxpool.Config)) *pgxpool.Pool {
	tb.Helper()
	return NewSharedTestPools(tb, 1, configure...)[0]
}

// newTestModel returns a migrated Model on a fresh schema, closed when tb
// ends.
func newTestModel(tb testing.TB, opts Options) *Model {
	tb.Helper()
	return newTestModelOn(tb, newTestPool(tb), opts)
}

// newTestModelOn returns a migrated Model on pool, closed when tb ends.
func newTestModelOn(tb testing.TB, pool *pgxpool.Pool, opts Options) *Model {
	tb.Helper()
	ctx := context.Background()
	m, err := New(ctx, pool, opts)
	require.NoError(tb, err)
	tb.Cleanup(m.Close)
	require.NoError(tb, m.Migrate(ctx))
	return m
}

func TestConformance(t *testing.T) {
	requirePostgres(t)
	modeltest.Run(t, func(t *testing.T) mcpoauth.Model { return newTestModel(t, Options{}) })
}

// TestConformanceStricterDefaultIsolation runs the kit on a database whose
// transactions default to REPEATABLE READ, as some deployments configure:
// the Model must not depend on the default (its revocation check needs each
// statement to see what committed before it).
func TestConformanceStricterDefaultIsolation(t *testing.T) {
	requirePostgres(t)
	modeltest.Run(t, func(t *testing.T) mcpoauth.Model {
		return newTestModelOn(t, newTestPool(t, func(c *pgxpool.Config) {
			c.ConnConfig.RuntimeParams["default_transaction_isolation"] = "repeatable read"
		}), Options{})
	})
}
